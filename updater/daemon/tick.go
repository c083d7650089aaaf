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

// tick does what is due in the current phase: its I/O, then one transition
// of the state machine (a check may stage, which is its own phase). A
// transition the state machine refuses ends the tick with that error.
func (d *Daemon) tick(ctx context.Context) error {
	now := d.Clock.Now()
	d.st.ExpireHold(now)
	switch d.st.Phase() {
	case state.Idle:
		if w := d.st.Workload(); w.Stopped && d.st.Trial().BootID != d.BootID {
			// Stopped for the admin's rollback reboot, which happened.
			d.restoreWorkload(ctx, w.Inventory, "after the admin's rollback")
			return d.st.WorkloadBack()
		}
		if !now.Before(d.st.Checks().Next) {
			return refused(d.check(ctx, false))
		}
	case state.Pending:
		if next := d.st.Checks().Next; !next.IsZero() && !now.Before(next) {
			return refused(d.check(ctx, false))
		}
		return d.planOrReboot(ctx, now)
	case state.Rebooting:
		if d.workloadDue(now) {
			return d.stopWorkload(ctx, now)
		}
		return d.tickRebooting(ctx, now)
	case state.Verifying:
		return d.verify(ctx)
	case state.RollingBack:
		return d.rollBack(ctx, now)
	}
	return nil
}

// refused keeps, of what a check returns, only a refused transition: the
// check's own outcome (nothing new, failed, bad) is in the state already.
func refused(_ []pkgver.Change, _ int, err error) error {
	if errors.Is(err, state.ErrTransition) {
		return err
	}
	return nil
}

// check looks for updates and stages them unless they are known, bad or
// held. admin: asked by the admin's Apply (a hold does not stop it).
// Returns what an update would change and the staged snapshot, if any.
func (d *Daemon) check(ctx context.Context, admin bool) ([]pkgver.Change, int, error) {
	now := d.Clock.Now()
	if err := d.st.StartCheck(now); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errkind.Busy, err)
	}
	d.publish(true)
	changes, err := d.Engine.Check(ctx)
	d.scheduleNextCheck(d.Clock.Now())
	now = d.Clock.Now()
	if errors.Is(err, errkind.NothingToDo) {
		changes, err = nil, nil
	}
	if err != nil {
		if terr := d.st.CheckDone(now, "", err); terr != nil {
			return nil, 0, terr
		}
		d.Log.Warn("update check failed", "err", err)
		return nil, 0, err
	}
	if len(changes) == 0 {
		if err := d.st.CheckDone(now, "no updates", nil); err != nil {
			return nil, 0, err
		}
		return nil, 0, errkind.NothingToDo
	}
	id := state.UpdateID(changes)
	summary := state.ChangeSummary(changes)
	switch p := d.st.Pending(); {
	case p != nil && p.ID == id:
		if err := d.st.CheckDone(now, fmt.Sprintf("no newer updates; snapshot %d is pending", p.Snapshot), nil); err != nil {
			return nil, 0, err
		}
		return changes, p.Snapshot, nil
	case d.st.IsBad(id):
		result := fmt.Sprintf("update %s (%s) failed after boot before; not staged again until 'speedia-update clear-bad %s'", id, summary, id)
		if d.st.Checks().Result != result {
			d.record(history.Record{Event: history.Skipped, Update: id, Changes: changes, Detail: "marked bad"})
		}
		if err := d.st.CheckDone(now, result, nil); err != nil {
			return nil, 0, err
		}
		return changes, 0, fmt.Errorf("%w: %s", errkind.Bad, result)
	case d.st.Held(now) && !admin:
		result := fmt.Sprintf("%d updates held back: %s", len(changes), d.st.Hold().Reason)
		if err := d.st.CheckDone(now, result, nil); err != nil {
			return nil, 0, err
		}
		return changes, 0, nil
	}
	d.record(history.Record{Event: history.Checked, Update: id, Changes: changes})
	n, err := d.stage(ctx, id)
	return changes, n, err
}

func (d *Daemon) stage(ctx context.Context, id string) (int, error) {
	if err := d.st.StartStaging(d.Clock.Now()); err != nil {
		return 0, err
	}
	d.publish(true)
	log := &lineWriter{emit: d.progress}
	res, err := d.Engine.Stage(ctx, snapshot.StageOptions{Description: "speedia-updated: update " + id, Log: log})
	log.Flush()
	now := d.Clock.Now()
	if err != nil {
		if terr := d.st.StageFailed(now, err); terr != nil {
			return 0, terr
		}
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
	replaced := d.st.PendingSnapshot()
	if err := d.st.Staged(now, u); err != nil {
		return 0, err
	}
	detail := ""
	if replaced != 0 {
		detail = fmt.Sprintf("replaces pending snapshot %d", replaced)
	}
	d.event(msgid.Staged, "update staged into snapshot "+fmt.Sprint(u.Snapshot), "snapshot", u.Snapshot, "update", id, "changes", state.ChangeSummary(u.Changes))
	d.record(history.Record{Event: history.Staged, Snapshot: u.Snapshot, Update: id, Changes: u.Changes, Detail: detail})
	return u.Snapshot, nil
}

// planInput is what the reboot decision depends on, from the state and
// the settings in force.
func (d *Daemon) planInput(now time.Time) strategy.PlanInput {
	p, plan := d.st.Pending(), d.st.Plan()
	in := strategy.PlanInput{
		Now: now, Strategy: d.settings.Strategy, LastReboot: d.st.Track().LastReboot,
		Offset: p.Offset, AdminAt: p.AdminAt, Cancelled: p.Cancelled,
		Held: d.st.Held(now), Planned: plan.At, PlannedReason: plan.Reason,
		RetryAt: plan.RetryAt, PostponedSince: plan.PostponedSince, Postpone: d.settings.Postpone,
	}
	if in.Held {
		in.HoldReason = d.st.Hold().Reason
	}
	return in
}

// planOrReboot decides when the pending update reboots (strategy.PlanReboot,
// asking logind for blockers only once the reboot is due) and carries the
// decision out with one transition.
func (d *Daemon) planOrReboot(ctx context.Context, now time.Time) error {
	in := d.planInput(now)
	plan := strategy.PlanReboot(in)
	if plan.Action == strategy.Reboot && !plan.Admin && d.Presence != nil {
		blockers, err := d.Presence.RebootBlockers(ctx, d.settings.Presence)
		if err != nil {
			d.Log.Warn("cannot tell who is logged in or inhibiting; rebooting anyway", "err", err)
		}
		in.Blockers = blockers
		plan = strategy.PlanReboot(in)
	}
	p := d.st.Pending()
	if plan.Announce {
		at := plan.At
		d.event(msgid.RebootScheduled, "reboot into snapshot "+fmt.Sprint(p.Snapshot)+" planned for "+at.Format(time.RFC3339),
			"snapshot", p.Snapshot, "at", at.Format(time.RFC3339), "reason", plan.Reason)
		d.record(history.Record{Event: history.RebootScheduled, Snapshot: p.Snapshot, Update: p.ID, At: &at, Detail: plan.Reason})
	}
	switch plan.Action {
	case strategy.Postpone:
		return d.st.Postponed(now, plan.At, plan.Reason)
	case strategy.Reboot:
		if len(plan.Overridden) > 0 {
			d.Log.Warn("rebooting despite blockers: the postpone limit is reached", "blockers", strings.Join(plan.Overridden, "; "))
		}
		return d.reboot(ctx, now, plan)
	}
	return d.st.PlanReboot(plan.At, plan.Reason)
}

// reboot runs the pre-reboot steps and hands the reboot to logind. The
// reboot lock is taken here, after the decision, because taking it is a
// side effect; a step that fails plans the reboot again later.
func (d *Daemon) reboot(ctx context.Context, now time.Time, plan strategy.RebootPlan) error {
	p := d.st.Pending()
	retry := func(step string, err error) error {
		d.Log.Error("pre-reboot step failed; trying again later", "step", step, "err", err)
		return d.st.RetryLater(now.Add(retryAfter), fmt.Sprintf("retrying: %s failed", step), fmt.Sprintf("before reboot, %s: %v", step, err))
	}
	if d.SyncEtc != nil {
		if err := d.SyncEtc(ctx); err != nil {
			return retry("carrying /etc", err)
		}
	}
	if d.Lock != nil {
		if err := d.Lock.Acquire(ctx, lockHolder(p)); err != nil {
			return retry("reboot lock", err)
		}
	}
	at := now.Add(d.settings.RebootDelay)
	if plan.Admin {
		at = now
	}
	logindAt := at
	if d.Workload != nil {
		// The containers are stopped at `at` (stopWorkload), which then
		// reboots at once; logind's own time is only the fallback.
		logindAt = at.Add(stopBudget)
	}
	if err := d.Rebooter.ScheduleReboot(ctx, logindAt, d.settings.WallMessage); err != nil {
		return retry("scheduling the reboot", err)
	}
	if err := d.st.RebootScheduled(at, plan.Reason, d.BootID); err != nil {
		return err
	}
	d.event(msgid.Rebooting, "rebooting into snapshot "+fmt.Sprint(p.Snapshot), "snapshot", p.Snapshot, "at", at.Format(time.RFC3339))
	d.record(history.Record{Event: history.Rebooting, Snapshot: p.Snapshot, Update: p.ID, At: &at})
	return nil
}

func lockHolder(p *state.Update) string { return "update-" + p.ID }

// tickRebooting runs when the reboot is overdue in the boot that scheduled
// it: logind lost or dropped it, so schedule it again.
func (d *Daemon) tickRebooting(ctx context.Context, now time.Time) error {
	if now.Before(d.rebootOverdue()) {
		return nil
	}
	if _, ok, err := d.Rebooter.ScheduledReboot(ctx); err == nil && ok {
		return nil
	}
	d.Log.Warn("the scheduled reboot did not happen; scheduling it again")
	failure := ""
	if err := d.Rebooter.ScheduleReboot(ctx, now, d.settings.WallMessage); err != nil {
		failure = "rescheduling the reboot: " + err.Error()
	}
	return d.st.Rescheduled(now, failure)
}

// verify runs the health gate on the freshly booted snapshot.
func (d *Daemon) verify(ctx context.Context) error {
	p := d.st.Pending()
	failures, err := d.Gate.Verify(ctx, d.settings.Health)
	if ctx.Err() != nil {
		return nil // stopping: verify again after restart
	}
	if err != nil {
		failures = append(failures, err.Error())
	}
	if len(failures) == 0 {
		failures = d.startWorkload(ctx, d.st.Workload().Inventory)
		if ctx.Err() != nil {
			return nil
		}
	}
	if len(failures) > 0 {
		reason := "health check failed: " + strings.Join(failures, "; ")
		if err := d.fail(reason); err != nil {
			return err
		}
		d.record(history.Record{Event: history.HealthFailed, Snapshot: p.Snapshot, To: d.st.Trial().RollbackTo, Update: p.ID, Detail: reason})
		return nil
	}
	if err := d.Engine.MarkGood(ctx, p.Snapshot); err != nil {
		d.st.SetError(fmt.Sprintf("marking snapshot %d good: %v", p.Snapshot, err))
		d.Log.Error("mark good", "snapshot", p.Snapshot, "err", err)
		return nil // the next tick tries again
	}
	if err := d.st.Verified(d.Clock.Now()); err != nil {
		return err
	}
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
	return nil
}

// rollBack brings the host back to the rollback target, bounded.
func (d *Daemon) rollBack(ctx context.Context, now time.Time) error {
	p := d.st.Pending()
	trial := d.st.Trial()
	to := trial.RollbackTo
	inv := d.st.Workload().Inventory
	if d.booted == to {
		if err := d.ensureDefault(ctx, to); err != nil {
			d.st.SetError(err.Error())
			return nil
		}
		// Making it the default again can give its boot entry a counter;
		// unblessed, ordinary reboots would count the good snapshot down.
		if err := d.Engine.MarkGood(ctx, to); err != nil {
			d.Log.Warn("bless the rollback target", "snapshot", to, "err", err)
		}
		failed := d.st.PendingSnapshot()
		if err := d.st.RolledBack(now); err != nil {
			return err
		}
		d.restoreWorkload(ctx, inv, "after the rollback")
		if p != nil {
			d.releaseLock(ctx, p)
		}
		d.event(msgid.RolledBack, fmt.Sprintf("snapshot %d failed; the host runs snapshot %d again", failed, to),
			"snapshot", failed, "to", to, "reason", trial.Failure)
		d.record(history.Record{Event: history.RolledBack, Snapshot: failed, To: to, Detail: "back on the last good snapshot"})
		return nil
	}
	if trial.BootID == d.BootID {
		return d.tickRebooting(ctx, now)
	}
	giveUp := func(reason string) error {
		if err := d.st.GaveUp(now, reason); err != nil {
			return err
		}
		d.restoreWorkload(ctx, inv, "the host stays on snapshot "+fmt.Sprint(d.booted))
		d.event(msgid.GaveUp, reason, "snapshot", d.booted, "to", to)
		d.record(history.Record{Event: history.GaveUp, Snapshot: d.booted, To: to, Detail: reason})
		return nil
	}
	if trial.Attempts >= d.maxAttempts() {
		return giveUp(fmt.Sprintf("snapshot %d did not come back after %d attempts; staying on snapshot %d", to, trial.Attempts, d.booted))
	}
	if _, err := d.Engine.Rollback(ctx, to); err != nil {
		return giveUp(fmt.Sprintf("cannot make snapshot %d the next boot: %v", to, err))
	}
	d.stopWorkloadForRollback(ctx, inv)
	if err := d.Rebooter.ScheduleReboot(ctx, now, "Speedia host: the update failed its health checks; rolling back"); err != nil {
		d.st.SetError("scheduling the rollback reboot: " + err.Error())
		return nil
	}
	if err := d.st.RollbackRebooting(now, d.BootID); err != nil {
		return err
	}
	d.record(history.Record{Event: history.Rebooting, Snapshot: to, Detail: "rolling back"})
	return nil
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
