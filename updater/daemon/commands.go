package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/state"
)

// command is one request from the API, run by the loop between ticks.
type command struct {
	do    func(ctx context.Context) (any, error)
	reply chan result
}

type result struct {
	v   any
	err error
}

// call runs do on the loop and waits for its result.
func (d *Daemon) call(ctx context.Context, do func(ctx context.Context) (any, error)) (any, error) {
	c := command{do: do, reply: make(chan result, 1)}
	select {
	case d.cmds <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// notBusy refuses state-changing requests while a check or staging runs,
// instead of queueing them behind minutes of apt.
func (d *Daemon) notBusy() error {
	if v := d.View(); v.Busy() {
		return fmt.Errorf("%w: %s is running", errkind.Busy, v.State.Phase())
	}
	return nil
}

// Check looks for updates now, like a scheduled check (a hold stops the
// staging). Returns how many packages an update changes.
func (d *Daemon) Check(ctx context.Context) (int, error) {
	if err := d.notBusy(); err != nil {
		return 0, err
	}
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if p := d.st.Phase(); p != state.Idle && p != state.Pending {
			return 0, fmt.Errorf("%w: the host is %s", errkind.Busy, p)
		}
		changes, _, err := d.check(ctx, false)
		if perr := d.planNow(ctx); perr != nil {
			return len(changes), perr
		}
		return len(changes), err
	})
	n, _ := v.(int)
	return n, err
}

// Apply stages all available updates now, hold or not. Returns the pending
// snapshot.
func (d *Daemon) Apply(ctx context.Context) (int, error) {
	if err := d.notBusy(); err != nil {
		return 0, err
	}
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if p := d.st.Phase(); p != state.Idle && p != state.Pending {
			return 0, fmt.Errorf("%w: the host is %s", errkind.Busy, p)
		}
		_, n, err := d.check(ctx, true)
		if perr := d.planNow(ctx); perr != nil {
			return n, perr
		}
		return n, err
	})
	n, _ := v.(int)
	return n, err
}

// planNow makes the reboot plan for a just-staged update before the
// caller gets its answer, so the status it reads next is current.
func (d *Daemon) planNow(ctx context.Context) error {
	if d.st.Phase() != state.Pending {
		return nil
	}
	return d.planOrReboot(ctx, d.Clock.Now())
}

// Reboot schedules the reboot into the pending snapshot: when is "now",
// "next-window" or an RFC 3339 time. Returns the planned time.
func (d *Daemon) Reboot(ctx context.Context, when string) (time.Time, error) {
	if err := d.notBusy(); err != nil {
		return time.Time{}, err
	}
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		now := d.Clock.Now()
		if d.st.Phase() == state.Rebooting {
			return time.Time{}, fmt.Errorf("%w: a reboot is already scheduled for %s; cancel it first", errkind.Busy, d.st.Plan().At.Format(time.RFC3339))
		}
		if d.st.Phase() != state.Pending || d.st.Pending() == nil {
			return time.Time{}, fmt.Errorf("%w: no update is staged", errkind.NothingToDo)
		}
		var at time.Time // zero: next window
		switch when {
		case "now", "":
			at = now
		case "next-window":
		default:
			t, err := time.Parse(time.RFC3339, when)
			if err != nil {
				return time.Time{}, fmt.Errorf("%w: %q is not \"now\", \"next-window\" or an RFC 3339 time", errkind.Invalid, when)
			}
			at = t
		}
		if err := d.st.AdminReboot(at); err != nil {
			return time.Time{}, err
		}
		if err := d.planOrReboot(ctx, now); err != nil {
			return time.Time{}, err
		}
		if plan := d.st.Plan(); d.st.Phase() == state.Pending && plan.At.IsZero() {
			return time.Time{}, fmt.Errorf("%w: %s", errkind.NothingToDo, plan.Reason)
		}
		return d.st.Plan().At, nil
	})
	t, _ := v.(time.Time)
	return t, err
}

// CancelReboot cancels the planned or scheduled reboot.
func (d *Daemon) CancelReboot(ctx context.Context) error {
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		switch {
		case d.st.Phase() == state.Rebooting:
			if _, err := d.Rebooter.CancelReboot(ctx); err != nil {
				return nil, fmt.Errorf("cancel the reboot in logind: %w", err)
			}
		case d.st.Phase() == state.Pending && !d.st.Plan().At.IsZero():
		default:
			return nil, fmt.Errorf("%w: no reboot is planned", errkind.NothingToDo)
		}
		p := d.st.Pending()
		inv := d.st.Workload().Inventory
		if err := d.st.CancelReboot(); err != nil {
			return nil, err
		}
		d.restoreWorkload(ctx, inv, "the reboot was cancelled")
		d.releaseLock(ctx, p)
		d.record(history.Record{Event: history.RebootCancelled, Snapshot: p.Snapshot, Update: p.ID})
		return nil, nil
	})
	return err
}

// Rollback makes snapshot n (0: the last known good, or the previous one
// when that is what runs) the next boot, dropping a pending update; when
// is "" (no reboot) or "now". Returns the chosen snapshot.
func (d *Daemon) Rollback(ctx context.Context, n int, when string) (int, error) {
	if err := d.notBusy(); err != nil {
		return 0, err
	}
	if when != "" && when != "now" {
		return 0, fmt.Errorf("%w: rollback reboots \"now\" or not at all (\"\"), not %q", errkind.Invalid, when)
	}
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if p := d.st.Phase(); p != state.Idle && p != state.Pending {
			return 0, fmt.Errorf("%w: the host is %s", errkind.Busy, p)
		}
		target := n
		switch good := d.st.Track().LastGood; {
		case target != 0:
		case d.st.PendingSnapshot() != 0:
			target = d.booted // drop the pending update, keep what runs
		case good != 0 && good != d.booted:
			target = good
		}
		// Rebooting now stops the containers the way an update reboot
		// does, before anything changes; they come back after the boot.
		var stopped json.RawMessage
		if when == "now" && d.Workload != nil {
			inv, err := d.Workload.Inventory(ctx)
			if err != nil {
				return 0, fmt.Errorf("taking the container inventory before the reboot: %w", err)
			}
			d.progress("stopping containers")
			if err := d.Workload.Stop(ctx, inv); err != nil {
				d.restoreWorkload(ctx, inv, "the rollback reboot was called off")
				return 0, fmt.Errorf("stopping containers before the reboot (nothing changed): %w", err)
			}
			stopped = inv
		}
		s, err := d.Engine.Rollback(ctx, target)
		if err != nil {
			d.restoreWorkload(ctx, stopped, "the rollback failed")
			if isNotFound(err) {
				return 0, fmt.Errorf("%w: %w", errkind.NotFound, err)
			}
			return 0, err
		}
		dropped := d.st.PendingSnapshot()
		if err := d.st.AdminRollback(stopped, d.BootID); err != nil {
			return 0, err
		}
		detail := "by the admin"
		if dropped != 0 {
			detail += fmt.Sprintf("; dropped pending snapshot %d", dropped)
		}
		d.record(history.Record{Event: history.RolledBack, Snapshot: d.booted, To: s.Number, Detail: detail})
		if when == "now" {
			if err := d.Rebooter.ScheduleReboot(ctx, d.Clock.Now(), d.settings.WallMessage); err != nil {
				d.restoreWorkload(ctx, stopped, "the reboot failed")
				if stopped != nil {
					if terr := d.st.WorkloadBack(); terr != nil {
						return s.Number, terr
					}
				}
				return s.Number, fmt.Errorf("snapshot %d boots next, but the reboot failed: %w", s.Number, err)
			}
		}
		return s.Number, nil
	})
	c, _ := v.(int)
	return c, err
}

// Hold pauses automatic staging and reboots (until zero: until Unhold).
func (d *Daemon) Hold(ctx context.Context, reason string, until time.Time) error {
	if reason == "" {
		reason = "held by the admin"
	}
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if !until.IsZero() && !until.After(d.Clock.Now()) {
			return nil, fmt.Errorf("%w: the hold would end in the past (%s)", errkind.Invalid, until.Format(time.RFC3339))
		}
		d.st.SetHold(state.Hold{Reason: reason, Until: until})
		r := history.Record{Event: history.Held, Detail: reason}
		if !until.IsZero() {
			r.At = &until
		}
		d.record(r)
		return nil, nil
	})
	return err
}

// Unhold lifts a hold.
func (d *Daemon) Unhold(ctx context.Context) error {
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if d.st.Hold() == nil {
			return nil, fmt.Errorf("%w: updates are not held", errkind.NothingToDo)
		}
		d.st.Unhold()
		d.record(history.Record{Event: history.Unheld})
		return nil, nil
	})
	return err
}

// ClearBad allows a package set marked bad again ("" = all); the next
// check may stage it.
func (d *Daemon) ClearBad(ctx context.Context, id string) error {
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		if !d.st.ClearBad(id) {
			if id == "" {
				return nil, fmt.Errorf("%w: no update is marked bad", errkind.NothingToDo)
			}
			return nil, fmt.Errorf("%w: no bad update %q", errkind.NotFound, id)
		}
		d.st.ScheduleCheck(d.Clock.Now()) // look again at once
		d.record(history.Record{Event: history.BadCleared, Update: id})
		return nil, nil
	})
	return err
}

// SetSettings replaces the settings in force (a config reload); plans are
// made again at the next tick.
func (d *Daemon) SetSettings(ctx context.Context, s Settings) error {
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		old := d.settings
		d.settings = s
		if old.CheckInterval != s.CheckInterval || old.CheckJitter != s.CheckJitter {
			last := d.st.Checks().Last
			d.scheduleNextCheck(last)
			if last.IsZero() {
				d.st.ScheduleCheck(d.Clock.Now())
			}
		}
		return nil, nil
	})
	return err
}

// History returns the newest limit records (0 = all).
func (d *Daemon) History(limit int) ([]history.Record, error) { return d.Store.History(limit) }

// Snapshots lists the root snapshots.
func (d *Daemon) Snapshots(ctx context.Context) ([]snapshot.Snapshot, error) {
	return d.Engine.List(ctx)
}

func isNotFound(err error) bool { return errors.Is(err, errkind.NotFound) }
