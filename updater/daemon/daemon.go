// Package daemon is the actor of the update state machine: it owns the
// state, does the I/O of each phase (check, stage, reboot, verify, roll
// back) and then makes exactly one transition of updater/state. Commands
// from the D-Bus API arrive on a channel and run between ticks, so the
// state has one writer.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/state"
	"github.com/speedia/host/updater/strategy"
)

// Rebooter schedules reboots (logind).
type Rebooter interface {
	ScheduleReboot(ctx context.Context, at time.Time, wall string) error
	CancelReboot(ctx context.Context) (bool, error)
	ScheduledReboot(ctx context.Context) (time.Time, bool, error)
}

// Presence says who would be hurt by a reboot now: block inhibitors and
// logged-in users (as the settings ask), as admin-readable reasons (none:
// go ahead).
type Presence interface {
	RebootBlockers(ctx context.Context, s PresenceSettings) ([]string, error)
}

// PresenceSettings says which blockers count ([reboot] respect_*).
type PresenceSettings struct {
	Inhibitors bool
	Users      bool
}

// Gate is the health gate after boot: failures names what failed.
type Gate interface {
	Verify(ctx context.Context, s GateSettings) (failures []string, err error)
}

// GateSettings is what the health gate checks ([health]).
type GateSettings struct {
	CriticalUnits []string
	Dir           string
	Timeout       time.Duration
}

// ContainerSettings is how the containers are handled ([containers]); the
// container adapter reads them from the View at each operation.
type ContainerSettings struct {
	Socket      string
	Settle      time.Duration
	Timeout     time.Duration
	Parallel    int
	Keep        time.Duration
	AutoUpgrade bool
	// Patching inside containers: the default policy, rollback points
	// kept, the wait for a package lock.
	Patch            string
	PatchKeep        int
	PatchLockTimeout time.Duration
}

// Observer hears about every published change (metrics, D-Bus signals).
type Observer interface {
	Changed(v View, phaseChanged bool)
	Progress(line string)
}

// Settings are the configuration in force, built from the whole config in
// one place (cmd/speedia-updated) and delivered only through New and
// SetSettings. The keys that need a restart are config.RestartKeys.
type Settings struct {
	CheckInterval time.Duration
	CheckJitter   time.Duration
	Strategy      strategy.Strategy
	RebootDelay   time.Duration // wall-message warning before a scheduled reboot
	WallMessage   string
	Postpone      time.Duration // max wait for blockers before rebooting anyway
	MaxAttempts   int           // boots of a new snapshot before giving up
	Keep          int           // snapshots to keep at cleanup
	Presence      PresenceSettings
	Health        GateSettings
	Containers    ContainerSettings
	ConfigError   string // why the settings in force are not the files on disk
	// RestartNeeded lists the keys (config.RestartKeys) whose value on
	// disk differs from the one the daemon started with.
	RestartNeeded []string
}

// Daemon is the update actor. Fill the fields, then Run.
type Daemon struct {
	Engine   snapshot.Engine
	SyncEtc  func(ctx context.Context) error // carries /etc edits into the pending snapshot; nil: the engine does it
	Store    Store
	Rebooter Rebooter
	Presence Presence
	Gate     Gate
	Lock     strategy.Lock
	Workload Workload // nil: no containers to stop and bring back
	Markers  Markers
	Clock    Clock
	Rand     func() float64 // in [0,1)
	BootID   string         // this boot
	Log      *slog.Logger
	Observer Observer

	settings Settings
	st       *state.State
	booted   int
	cmds     chan command
	// calm: after a refused transition, no tick before then (a refused
	// transition changes nothing, so an immediate re-tick would repeat it).
	calm time.Time

	mu   sync.Mutex
	view View
}

// View is the published, read-only picture of the daemon for the API.
type View struct {
	State       state.State // a copy
	Booted      int
	Strategy    string
	ConfigError string
	Settings    Settings // in force
}

// Busy reports whether a check or staging is running.
func (v View) Busy() bool {
	p := v.State.Phase()
	return p == state.Checking || p == state.Staging
}

// New prepares a daemon with its settings; Run starts it.
func New(d *Daemon, s Settings) *Daemon {
	d.settings = s
	d.cmds = make(chan command)
	if d.Clock == nil {
		d.Clock = RealClock{}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return d
}

// View returns the current published view.
func (d *Daemon) View() View {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.view
}

// Run loads the state, resumes where it was and serves until ctx ends.
// ready is called once the state is loaded and resumed.
func (d *Daemon) Run(ctx context.Context, ready func()) error {
	st, err := d.Store.Load()
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	d.st = st
	if err := d.refreshBooted(ctx); err != nil {
		return err
	}
	if err := d.resume(ctx); err != nil {
		d.refused(err)
	}
	d.blessBooted(ctx)
	d.publish(true)
	if ready != nil {
		ready()
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		before := d.st.Phase()
		if d.Clock.Now().Before(d.calm) {
			// nothing: a transition was refused a moment ago
		} else if err := d.tick(ctx); err != nil {
			d.refused(err)
		}
		d.publish(before != d.st.Phase())
		if d.st.Phase() != before {
			continue // a change re-ticks at once
		}
		wake := d.nextWake()
		c, stop := d.Clock.At(wake)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case cmd := <-d.cmds:
			stop()
			before := d.st.Phase()
			v, err := cmd.do(ctx)
			d.publish(before != d.st.Phase()) // callers see the result in the view at once
			cmd.reply <- result{v, err}
		case <-c:
			stop()
		}
	}
}

func (d *Daemon) refreshBooted(ctx context.Context) error {
	list, err := d.Engine.List(ctx)
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if b, ok := snapshot.Booted(list); ok {
		d.booted = b.Number
	}
	// A host that never verified an update: what booted is good, unless
	// it is the snapshot under test.
	if g, ok := snapshot.LastGood(list); ok {
		d.st.KnowGood(g.Number)
	} else if d.st.PendingSnapshot() != d.booted {
		d.st.KnowGood(d.booted)
	}
	return nil
}

// blessBooted takes the boot counter off the snapshot the host runs when
// it is the last good one and no update is on trial: a fresh image's
// snapshot 1 starts out counted, and nothing else would bless it, so
// ordinary reboots would count it down to "bad". It is what
// systemd-bless-boot does after a good boot; blessing twice changes nothing.
func (d *Daemon) blessBooted(ctx context.Context) {
	if d.booted == 0 || d.booted != d.st.Track().LastGood {
		return
	}
	switch d.st.Phase() {
	case state.Rebooting, state.Verifying, state.RollingBack:
		return // the update's own path decides what to bless
	}
	if err := d.Engine.MarkGood(ctx, d.booted); err != nil {
		d.Log.Warn("bless the running snapshot's boot entry", "snapshot", d.booted, "err", err)
	}
}

// resume turns what happened while the daemon was not running (a reboot, a
// kill mid-phase) into transitions.
func (d *Daemon) resume(ctx context.Context) error {
	now := d.Clock.Now()
	trial := d.st.Trial()
	pending := d.st.PendingSnapshot()
	switch d.st.Phase() {
	case state.Checking, state.Staging:
		// Neither can resume (the engine deletes an unfinished snapshot
		// at its next run); go back and check again at once.
		return d.st.Interrupted(now)
	case state.Rebooting:
		if trial.BootID == d.BootID {
			return nil // killed while waiting for the reboot; the tick re-checks logind
		}
		if pending != 0 && d.booted == pending {
			return d.st.BootedPending(now, d.BootID)
		}
		return d.fail(fmt.Sprintf("snapshot %d did not boot; the host came up on snapshot %d", pending, d.booted))
	case state.Verifying:
		if trial.BootID == d.BootID {
			return nil // killed mid-verify: the tick runs the gate again
		}
		if pending != 0 && d.booted == pending {
			if trial.Attempts >= d.maxAttempts() {
				return d.fail(fmt.Sprintf("snapshot %d rebooted %d times before it was verified", d.booted, trial.Attempts))
			}
			return d.st.BootedPending(now, d.BootID)
		}
		return d.fail(fmt.Sprintf("snapshot %d stopped booting; the host came up on snapshot %d", pending, d.booted))
	}
	return nil
}

func (d *Daemon) maxAttempts() int {
	if d.settings.MaxAttempts < 1 {
		return 1
	}
	return d.settings.MaxAttempts
}

// refused reports a transition the state machine refused: the tick ended
// there, nothing more was done, and the admin sees why. The next tick
// waits a little, since the same tick would be refused again.
func (d *Daemon) refused(err error) {
	msg := "internal error: the update state machine refused a step: " + err.Error()
	d.Log.Error(msg, "phase", string(d.st.Phase()))
	d.st.SetError(msg)
	d.calm = d.Clock.Now().Add(strategy.PostponeStep)
}

// publish saves the state and updates the view; a save error is kept in
// LastError (the daemon goes on: the host stays safe on its snapshots).
func (d *Daemon) publish(phaseChanged bool) {
	if err := d.Store.Save(d.st); err != nil {
		d.Log.Error("save state", "err", err)
	}
	p := d.st.Phase()
	d.Markers.Set(d.st.PendingSnapshot() != 0 && (p == state.Pending || p == state.Rebooting))
	v := View{State: d.st.Clone(), Booted: d.booted, ConfigError: d.settings.ConfigError, Settings: d.settings}
	if d.settings.Strategy != nil {
		v.Strategy = d.settings.Strategy.Name()
	}
	d.mu.Lock()
	d.view = v
	d.mu.Unlock()
	if d.Observer != nil {
		d.Observer.Changed(v, phaseChanged)
	}
}

// Record appends r to the history, stamped with the time and boot; the
// container adapter records its events through it. Appends are whole
// lines with O_APPEND, so it may run beside the daemon's own.
func (d *Daemon) Record(r history.Record) { d.record(r) }

func (d *Daemon) record(r history.Record) {
	if r.Time.IsZero() {
		r.Time = d.Clock.Now()
	}
	if r.BootID == "" {
		r.BootID = d.BootID
	}
	if err := d.Store.Append(r); err != nil {
		d.Log.Error("append history", "err", err)
	}
}

// event logs a key event with its journald MESSAGE_ID.
func (d *Daemon) event(id, msg string, args ...any) {
	d.Log.Info(msg, append([]any{"message_id", id}, args...)...)
}

// nextWake is the earliest instant something is due.
func (d *Daemon) nextWake() time.Time {
	now := d.Clock.Now()
	wake := d.st.Checks().Next
	if wake.IsZero() {
		wake = now.Add(d.settings.CheckInterval)
	}
	consider := func(t time.Time) {
		if !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	at := d.st.Plan().At
	if d.st.Phase() == state.Pending {
		consider(at)
	}
	if d.st.Phase() == state.Rebooting && !at.IsZero() {
		consider(d.rebootOverdue())
		if d.workloadDue(at) {
			consider(at)
		}
	}
	if h := d.st.Hold(); h != nil && !h.Until.IsZero() {
		consider(h.Until)
	}
	if wake.Before(d.calm) {
		wake = d.calm
	}
	if wake.Before(now) {
		wake = now
	}
	return wake
}

// rebootOverdue is when a reboot handed to logind should have happened:
// logind reboots; if it did not within a grace period, look again.
func (d *Daemon) rebootOverdue() time.Time {
	return d.st.Plan().At.Add(d.settings.RebootDelay + 5*time.Minute)
}

func (d *Daemon) scheduleNextCheck(now time.Time) {
	jitter := time.Duration(0)
	if d.Rand != nil && d.settings.CheckJitter > 0 {
		jitter = time.Duration(d.Rand() * float64(d.settings.CheckJitter))
	}
	d.st.ScheduleCheck(now.Add(d.settings.CheckInterval + jitter))
}

// fail sends the pending update to rolling-back, towards the last good snapshot.
func (d *Daemon) fail(reason string) error {
	to := d.st.Track().LastGood
	if to == 0 || to == d.st.PendingSnapshot() {
		to = d.booted
	}
	if err := d.st.Failed(d.Clock.Now(), to, reason); err != nil {
		return err
	}
	d.Log.Warn("update failed; rolling back", "snapshot", d.st.PendingSnapshot(), "to", to, "reason", reason)
	return nil
}

func (d *Daemon) random() float64 {
	if d.Rand == nil {
		return 0
	}
	return d.Rand()
}
