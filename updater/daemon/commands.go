package daemon

import (
	"context"
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
		return fmt.Errorf("%w: %s is running", errkind.Busy, v.State.Phase)
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
		if p := d.st.Phase; p != state.Idle && p != state.Pending {
			return 0, fmt.Errorf("%w: the host is %s", errkind.Busy, p)
		}
		changes, _, err := d.check(ctx, false)
		d.planNow(ctx)
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
		if p := d.st.Phase; p != state.Idle && p != state.Pending {
			return 0, fmt.Errorf("%w: the host is %s", errkind.Busy, p)
		}
		_, n, err := d.check(ctx, true)
		d.planNow(ctx)
		return n, err
	})
	n, _ := v.(int)
	return n, err
}

// planNow makes the reboot plan for a just-staged update before the
// caller gets its answer, so the status it reads next is current.
func (d *Daemon) planNow(ctx context.Context) {
	if d.st.Phase == state.Pending {
		d.planOrReboot(ctx, d.Clock.Now())
	}
}

// Reboot schedules the reboot into the pending snapshot: when is "now",
// "next-window" or an RFC 3339 time. Returns the planned time.
func (d *Daemon) Reboot(ctx context.Context, when string) (time.Time, error) {
	if err := d.notBusy(); err != nil {
		return time.Time{}, err
	}
	v, err := d.call(ctx, func(ctx context.Context) (any, error) {
		now := d.Clock.Now()
		if d.st.Phase == state.Rebooting {
			return time.Time{}, fmt.Errorf("%w: a reboot is already scheduled for %s; cancel it first", errkind.Busy, d.st.RebootAt.Format(time.RFC3339))
		}
		if d.st.Phase != state.Pending || d.st.Pending == nil {
			return time.Time{}, fmt.Errorf("%w: no update is staged", errkind.NothingToDo)
		}
		p := d.st.Pending
		switch when {
		case "now", "":
			p.AdminAt, p.Cancelled = now, false
		case "next-window":
			p.AdminAt, p.Cancelled = time.Time{}, false
		default:
			t, err := time.Parse(time.RFC3339, when)
			if err != nil {
				return time.Time{}, fmt.Errorf("%w: %q is not \"now\", \"next-window\" or an RFC 3339 time", errkind.Invalid, when)
			}
			p.AdminAt, p.Cancelled = t, false
		}
		d.st.PostponedSince = time.Time{}
		d.planOrReboot(ctx, now)
		if d.st.Phase == state.Pending && d.st.RebootAt.IsZero() {
			return time.Time{}, fmt.Errorf("%w: %s", errkind.NothingToDo, d.st.RebootReason)
		}
		return d.st.RebootAt, nil
	})
	t, _ := v.(time.Time)
	return t, err
}

// CancelReboot cancels the planned or scheduled reboot.
func (d *Daemon) CancelReboot(ctx context.Context) error {
	_, err := d.call(ctx, func(ctx context.Context) (any, error) {
		switch {
		case d.st.Phase == state.Rebooting:
			if _, err := d.Rebooter.CancelReboot(ctx); err != nil {
				return nil, fmt.Errorf("cancel the reboot in logind: %w", err)
			}
		case d.st.Phase == state.Pending && !d.st.RebootAt.IsZero():
		default:
			return nil, fmt.Errorf("%w: no reboot is planned", errkind.NothingToDo)
		}
		p := d.st.Pending
		if err := d.st.CancelReboot(); err != nil {
			return nil, err
		}
		d.restoreWorkload(ctx, "the reboot was cancelled")
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
		if p := d.st.Phase; p != state.Idle && p != state.Pending {
			return 0, fmt.Errorf("%w: the host is %s", errkind.Busy, p)
		}
		target := n
		switch {
		case target != 0:
		case d.st.Pending != nil:
			target = d.booted // drop the pending update, keep what runs
		case d.st.LastGood != 0 && d.st.LastGood != d.booted:
			target = d.st.LastGood
		}
		s, err := d.Engine.Rollback(ctx, target)
		if err != nil {
			if isNotFound(err) {
				return 0, fmt.Errorf("%w: %v", errkind.NotFound, err)
			}
			return 0, err
		}
		dropped := d.pendingNumber()
		if err := d.st.AdminRollback(); err != nil {
			return 0, err
		}
		detail := "by the admin"
		if dropped != 0 {
			detail += fmt.Sprintf("; dropped pending snapshot %d", dropped)
		}
		d.record(history.Record{Event: history.RolledBack, Snapshot: d.booted, To: s.Number, Detail: detail})
		if when == "now" {
			if err := d.Rebooter.ScheduleReboot(ctx, d.Clock.Now(), d.settings.WallMessage); err != nil {
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
		if d.st.Hold == nil {
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
		d.st.NextCheck = d.Clock.Now() // look again at once
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
			d.scheduleNextCheck(d.st.LastCheck)
			if d.st.LastCheck.IsZero() {
				d.st.NextCheck = d.Clock.Now()
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
