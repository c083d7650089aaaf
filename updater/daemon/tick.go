package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/msgid"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/state"
	"github.com/speedia/host/updater/strategy"
)

// retryAfter is how long a failed pre-reboot step waits before trying again.
const retryAfter = 5 * time.Minute

// postponeStep is how often a reboot held back by blockers looks again.
const postponeStep = time.Minute

// tick does what is due in the current phase, with at most one transition
// of the state machine (a check may stage, which is its own phase).
func (d *Daemon) tick(ctx context.Context) {
	now := d.Clock.Now()
	d.st.Held(now) // drops an expired hold
	switch d.st.Phase {
	case state.Idle:
		if !now.Before(d.st.NextCheck) {
			d.check(ctx, false)
		}
	case state.Pending:
		if !d.st.NextCheck.IsZero() && !now.Before(d.st.NextCheck) {
			d.check(ctx, false)
			return
		}
		d.planOrReboot(ctx, now)
	case state.Rebooting:
		if d.workloadDue(now) {
			d.stopWorkload(ctx, now)
			return
		}
		d.tickRebooting(ctx, now)
	case state.Verifying:
		d.verify(ctx)
	case state.RollingBack:
		d.rollBack(ctx, now)
	}
}

// check looks for updates and stages them unless they are known, bad or
// held. admin: asked by the admin's Apply (a hold does not stop it).
// Returns what an update would change and the staged snapshot, if any.
func (d *Daemon) check(ctx context.Context, admin bool) ([]pkgver.Change, int, error) {
	now := d.Clock.Now()
	if err := d.st.StartCheck(now); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errkind.Busy, err)
	}
	d.publish(true)
	changes, err := d.Engine.Check(ctx)
	d.scheduleNextCheck(d.Clock.Now())
	now = d.Clock.Now()
	if errors.Is(err, errkind.NothingToDo) {
		changes, err = nil, nil
	}
	if err != nil {
		d.must(d.st.CheckDone(now, "", err))
		d.Log.Warn("update check failed", "err", err)
		return nil, 0, err
	}
	if len(changes) == 0 {
		d.must(d.st.CheckDone(now, "no updates", nil))
		return nil, 0, errkind.NothingToDo
	}
	id := state.UpdateID(changes)
	summary := state.ChangeSummary(changes)
	switch {
	case d.st.Pending != nil && d.st.Pending.ID == id:
		d.must(d.st.CheckDone(now, fmt.Sprintf("no newer updates; snapshot %d is pending", d.st.Pending.Snapshot), nil))
		return changes, d.st.Pending.Snapshot, nil
	case d.st.IsBad(id):
		result := fmt.Sprintf("update %s (%s) failed after boot before; not staged again until 'speedia-update clear-bad %s'", id, summary, id)
		if d.st.LastCheckResult != result {
			d.record(history.Record{Event: history.Skipped, Update: id, Changes: changes, Detail: "marked bad"})
		}
		d.must(d.st.CheckDone(now, result, nil))
		return changes, 0, fmt.Errorf("%w: %s", errkind.Bad, result)
	case d.st.Held(now) && !admin:
		result := fmt.Sprintf("%d updates held back: %s", len(changes), d.st.Hold.Reason)
		d.must(d.st.CheckDone(now, result, nil))
		return changes, 0, nil
	}
	d.record(history.Record{Event: history.Checked, Update: id, Changes: changes})
	n, err := d.stage(ctx, id)
	return changes, n, err
}

func (d *Daemon) stage(ctx context.Context, id string) (int, error) {
	d.must(d.st.StartStaging(d.Clock.Now()))
	d.publish(true)
	log := &lineWriter{emit: d.progress}
	res, err := d.Engine.Stage(ctx, snapshot.StageOptions{Description: "speedia-updated: update " + id, Log: log})
	log.Flush()
	now := d.Clock.Now()
	if err != nil {
		d.must(d.st.StageFailed(now, err))
		d.event(msgid.StageFailed, "staging the update failed; nothing changed", "update", id, "reason", err.Error())
		d.record(history.Record{Event: history.StageFailed, Update: id, Detail: err.Error()})
		return 0, err
	}
	u := state.Update{
		ID:            id,
		Snapshot:      res.Snapshot.Number,
		Changes:       res.Changes,
		KernelChanged: res.KernelChanged,
		StagedAt:      now,
		Offset:        d.random(),
	}
	replaced := d.pendingNumber()
	d.must(d.st.Staged(now, u))
	detail := ""
	if replaced != 0 {
		detail = fmt.Sprintf("replaces pending snapshot %d", replaced)
	}
	d.event(msgid.Staged, "update staged into snapshot "+fmt.Sprint(u.Snapshot), "snapshot", u.Snapshot, "update", id, "changes", state.ChangeSummary(u.Changes))
	d.record(history.Record{Event: history.Staged, Snapshot: u.Snapshot, Update: id, Changes: u.Changes, Detail: detail})
	return u.Snapshot, nil
}

// planOrReboot decides when the pending update reboots and, when due, reboots.
func (d *Daemon) planOrReboot(ctx context.Context, now time.Time) {
	p := d.st.Pending
	var at time.Time
	var reason string
	switch {
	case !p.AdminAt.IsZero():
		at, reason = p.AdminAt, "requested by the admin"
	case p.Cancelled:
		d.must(d.st.Plan(time.Time{}, "reboot cancelled by the admin; run 'speedia-update reboot' to schedule it"))
		return
	case d.st.Held(now):
		d.must(d.st.Plan(time.Time{}, "held: "+d.st.Hold.Reason))
		return
	case d.settings.Strategy == nil:
		d.must(d.st.Plan(time.Time{}, "no reboot strategy configured"))
		return
	default:
		dec := d.settings.Strategy.Decide(strategy.Input{Now: now, LastReboot: d.st.LastReboot, Offset: p.Offset})
		if dec.Never {
			d.must(d.st.Plan(time.Time{}, dec.Reason))
			return
		}
		at, reason = dec.At, dec.Reason
	}
	if at.Before(d.st.RetryAt) {
		at, reason = d.st.RetryAt, "retrying after a failed step before the reboot (see the last error)"
	}
	if d.st.PostponedSince.IsZero() && (!at.Equal(d.st.RebootAt) || reason != d.st.RebootReason) {
		d.must(d.st.Plan(at, reason))
		d.event(msgid.RebootScheduled, "reboot into snapshot "+fmt.Sprint(p.Snapshot)+" planned for "+at.Format(time.RFC3339),
			"snapshot", p.Snapshot, "at", at.Format(time.RFC3339), "reason", reason)
		d.record(history.Record{Event: history.RebootScheduled, Snapshot: p.Snapshot, Update: p.ID, At: &at, Detail: reason})
	}
	if now.Before(d.st.RebootAt) {
		return
	}
	admin := !p.AdminAt.IsZero()
	if !admin && d.Presence != nil {
		blockers, err := d.Presence.RebootBlockers(ctx)
		if err != nil {
			d.Log.Warn("cannot tell who is logged in or inhibiting; rebooting anyway", "err", err)
		}
		if len(blockers) > 0 {
			if d.st.PostponedSince.IsZero() {
				d.st.PostponedSince = now
			}
			if now.Sub(d.st.PostponedSince) < d.settings.Postpone {
				wait := min(postponeStep, d.st.PostponedSince.Add(d.settings.Postpone).Sub(now))
				d.must(d.st.Plan(now.Add(wait), "postponed: "+strings.Join(blockers, "; ")))
				return
			}
			d.Log.Warn("rebooting despite blockers: the postpone limit is reached", "blockers", strings.Join(blockers, "; "))
		}
	}
	d.reboot(ctx, now, admin)
}

// reboot runs the pre-reboot steps and hands the reboot to logind.
func (d *Daemon) reboot(ctx context.Context, now time.Time, admin bool) {
	p := d.st.Pending
	retry := func(step string, err error) {
		d.st.LastError = fmt.Sprintf("before reboot, %s: %v", step, err)
		d.Log.Error("pre-reboot step failed; trying again later", "step", step, "err", err)
		d.must(d.st.Plan(now.Add(retryAfter), fmt.Sprintf("retrying: %s failed", step)))
		d.st.RetryAt = now.Add(retryAfter)
	}
	if d.SyncEtc != nil {
		if err := d.SyncEtc(ctx); err != nil {
			retry("carrying /etc", err)
			return
		}
	}
	for _, h := range d.Hooks {
		if err := h.BeforeReboot(ctx); err != nil {
			retry(h.Name(), err)
			return
		}
	}
	if d.Lock != nil {
		if err := d.Lock.Acquire(ctx, lockHolder(p)); err != nil {
			retry("reboot lock", err)
			return
		}
	}
	at := now.Add(d.settings.RebootDelay)
	if admin {
		at = now
	}
	logindAt := at
	if d.Workload != nil {
		// The containers are stopped at `at` (stopWorkload), which then
		// reboots at once; logind's own time is only the fallback.
		logindAt = at.Add(stopBudget)
	}
	if err := d.Rebooter.ScheduleReboot(ctx, logindAt, d.settings.WallMessage); err != nil {
		retry("scheduling the reboot", err)
		return
	}
	d.must(d.st.RebootScheduled(at, d.BootID))
	d.clearWorkload()
	d.event(msgid.Rebooting, "rebooting into snapshot "+fmt.Sprint(p.Snapshot), "snapshot", p.Snapshot, "at", at.Format(time.RFC3339))
	d.record(history.Record{Event: history.Rebooting, Snapshot: p.Snapshot, Update: p.ID, At: &at})
}

func lockHolder(p *state.Update) string { return "update-" + p.ID }

// tickRebooting runs when the reboot is overdue in the boot that scheduled
// it: logind lost or dropped it, so schedule it again.
func (d *Daemon) tickRebooting(ctx context.Context, now time.Time) {
	if now.Before(d.rebootOverdue()) {
		return
	}
	if _, ok, err := d.Rebooter.ScheduledReboot(ctx); err == nil && ok {
		return
	}
	d.Log.Warn("the scheduled reboot did not happen; scheduling it again")
	if err := d.Rebooter.ScheduleReboot(ctx, now, d.settings.WallMessage); err != nil {
		d.st.LastError = "rescheduling the reboot: " + err.Error()
	}
	d.st.RebootAt = now
}

// verify runs the health gate on the freshly booted snapshot.
func (d *Daemon) verify(ctx context.Context) {
	p := d.st.Pending
	failures, err := d.Gate.Verify(ctx)
	if ctx.Err() != nil {
		return // stopping: verify again after restart
	}
	if err != nil {
		failures = append(failures, err.Error())
	}
	if len(failures) == 0 {
		failures = d.startWorkload(ctx)
		if ctx.Err() != nil {
			return
		}
	}
	if len(failures) > 0 {
		reason := "health check failed: " + strings.Join(failures, "; ")
		d.fail(ctx, reason)
		d.record(history.Record{Event: history.HealthFailed, Snapshot: p.Snapshot, To: d.st.RollbackTo, Update: p.ID, Detail: reason})
		return
	}
	if err := d.Engine.MarkGood(ctx, p.Snapshot); err != nil {
		d.st.LastError = fmt.Sprintf("marking snapshot %d good: %v", p.Snapshot, err)
		d.Log.Error("mark good", "snapshot", p.Snapshot, "err", err)
		return // the next tick tries again
	}
	now := d.Clock.Now()
	d.must(d.st.Verified(now))
	d.clearWorkload()
	d.releaseLock(ctx, p)
	d.event(msgid.Verified, "snapshot "+fmt.Sprint(p.Snapshot)+" booted and is healthy", "snapshot", p.Snapshot, "update", p.ID)
	d.record(history.Record{Event: history.Verified, Snapshot: p.Snapshot, Update: p.ID, Changes: p.Changes})
	if d.settings.Keep > 0 {
		if deleted, err := d.Engine.Cleanup(ctx, d.settings.Keep); err != nil {
			d.Log.Warn("snapshot cleanup", "err", err)
		} else if len(deleted) > 0 {
			d.Log.Info("deleted old snapshots", "snapshots", fmt.Sprint(deleted))
		}
	}
}

// rollBack brings the host back to the rollback target, bounded.
func (d *Daemon) rollBack(ctx context.Context, now time.Time) {
	p := d.st.Pending
	to := d.st.RollbackTo
	if d.booted == to {
		if err := d.ensureDefault(ctx, to); err != nil {
			d.st.LastError = err.Error()
			return
		}
		// Making it the default again can give its boot entry a counter;
		// unblessed, ordinary reboots would count the good snapshot down.
		if err := d.Engine.MarkGood(ctx, to); err != nil {
			d.Log.Warn("bless the rollback target", "snapshot", to, "err", err)
		}
		failed := d.pendingNumber()
		d.must(d.st.RolledBack(now))
		d.restoreWorkload(ctx, "after the rollback")
		if p != nil {
			d.releaseLock(ctx, p)
		}
		d.event(msgid.RolledBack, fmt.Sprintf("snapshot %d failed; the host runs snapshot %d again", failed, to),
			"snapshot", failed, "to", to, "reason", d.st.Failure)
		d.record(history.Record{Event: history.RolledBack, Snapshot: failed, To: to, Detail: "back on the last good snapshot"})
		return
	}
	if d.st.BootID == d.BootID {
		d.tickRebooting(ctx, now)
		return
	}
	if d.st.Attempts >= d.maxAttempts() {
		reason := fmt.Sprintf("snapshot %d did not come back after %d attempts; staying on snapshot %d", to, d.st.Attempts, d.booted)
		d.must(d.st.GaveUp(now, reason))
		d.restoreWorkload(ctx, "the host stays on snapshot "+fmt.Sprint(d.booted))
		d.event(msgid.GaveUp, reason, "snapshot", d.booted, "to", to)
		d.record(history.Record{Event: history.GaveUp, Snapshot: d.booted, To: to, Detail: reason})
		return
	}
	if _, err := d.Engine.Rollback(ctx, to); err != nil {
		reason := fmt.Sprintf("cannot make snapshot %d the next boot: %v", to, err)
		d.must(d.st.GaveUp(now, reason))
		d.restoreWorkload(ctx, "the host stays on snapshot "+fmt.Sprint(d.booted))
		d.event(msgid.GaveUp, reason, "snapshot", d.booted, "to", to)
		d.record(history.Record{Event: history.GaveUp, Snapshot: d.booted, To: to, Detail: reason})
		return
	}
	d.stopWorkloadForRollback(ctx)
	if err := d.Rebooter.ScheduleReboot(ctx, now, "Speedia host: the update failed its health checks; rolling back"); err != nil {
		d.st.LastError = "scheduling the rollback reboot: " + err.Error()
		return
	}
	d.must(d.st.RollbackRebooting(d.BootID))
	d.st.RebootAt = now
	d.record(history.Record{Event: history.Rebooting, Snapshot: to, Detail: "rolling back"})
}

// ensureDefault makes n the next boot when it is not already.
func (d *Daemon) ensureDefault(ctx context.Context, n int) error {
	list, err := d.Engine.List(ctx)
	if err != nil {
		return err
	}
	if s, ok := snapshot.Find(list, n); ok && s.Default {
		return nil
	}
	if _, err := d.Engine.Rollback(ctx, n); err != nil {
		return fmt.Errorf("making snapshot %d the next boot: %w", n, err)
	}
	return nil
}

func (d *Daemon) releaseLock(ctx context.Context, p *state.Update) {
	if d.Lock == nil || p == nil {
		return
	}
	if err := d.Lock.Release(ctx, lockHolder(p)); err != nil {
		d.Log.Warn("release reboot lock", "err", err)
	}
}

// lineWriter turns a byte stream into lines.
type lineWriter struct {
	buf  bytes.Buffer
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.emit(strings.TrimRight(line, "\r\n"))
	}
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}
