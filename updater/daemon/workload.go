package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/msgid"
	"github.com/speedia/host/updater/state"
)

// Workload is what the host runs for its users (the Podman containers):
// stopped in order right before an update reboot, brought back after it.
type Workload interface {
	// Inventory describes what runs now; the daemon keeps it opaque.
	Inventory(ctx context.Context) (json.RawMessage, error)
	// Stop stops what inv lists; on error some may still run.
	Stop(ctx context.Context, inv json.RawMessage) error
	// Start brings back what inv lists. critical names what did not come
	// back and must (it fails the health gate); the rest is only logged.
	Start(ctx context.Context, inv json.RawMessage) (critical []string, err error)
}

// stopBudget: logind is told to reboot this long after the planned moment,
// so a daemon that dies while stopping containers still gets the host
// rebooted; normally the daemon reboots as soon as they are stopped.
const stopBudget = 10 * time.Minute

// workloadDue: the planned reboot moment has come and the containers
// still run.
func (d *Daemon) workloadDue(now time.Time) bool {
	return d.Workload != nil && d.st.Phase() == state.Rebooting && d.st.Trial().BootID == d.BootID &&
		!d.st.Workload().Stopped && !now.Before(d.st.Plan().At)
}

// stopWorkload stops the containers at the reboot moment, then reboots at
// once. If they do not stop, the reboot is called off, they run again and
// the reboot is planned again later.
func (d *Daemon) stopWorkload(ctx context.Context, now time.Time) error {
	inv := d.st.Workload().Inventory
	if inv == nil {
		var err error
		if inv, err = d.Workload.Inventory(ctx); err != nil {
			return d.abortReboot(ctx, now, nil, "taking the container inventory", err)
		}
		// Saved before stopping: a daemon killed halfway still knows what
		// ran (a second inventory would miss what it stopped). Taking it
		// is a transition of its own; the next tick stops.
		return d.st.WorkloadTaken(inv)
	}
	d.progress("stopping containers")
	if err := d.Workload.Stop(ctx, inv); err != nil {
		return d.abortReboot(ctx, now, inv, "stopping containers", err)
	}
	if err := d.st.WorkloadStopped(); err != nil {
		return err
	}
	if err := d.Rebooter.ScheduleReboot(ctx, d.Clock.Now(), d.settings.WallMessage); err != nil {
		// logind's first schedule (stopBudget later) still stands.
		d.st.SetError("rebooting right after stopping the containers: " + err.Error())
		d.Log.Warn("could not move the reboot forward; logind reboots at the scheduled time", "err", err)
	}
	return nil
}

// abortReboot cancels the logind reboot, brings back what inv lists, and
// plans the reboot again later.
func (d *Daemon) abortReboot(ctx context.Context, now time.Time, inv json.RawMessage, step string, err error) error {
	if _, cerr := d.Rebooter.CancelReboot(ctx); cerr != nil {
		d.Log.Error("cancelling the reboot in logind", "err", cerr)
	}
	failure := fmt.Sprintf("before reboot, %s: %v", step, err)
	d.Log.Error("pre-reboot step failed; trying again later", "step", step, "err", err)
	p := d.st.Pending()
	if terr := d.st.RebootAborted(now.Add(retryAfter), fmt.Sprintf("retrying: %s failed", step), failure); terr != nil {
		return terr
	}
	d.restoreWorkload(ctx, inv, "the reboot was called off")
	d.st.SetError(failure)
	if p != nil {
		d.record(history.Record{Event: history.RebootCancelled, Snapshot: p.Snapshot, Update: p.ID, Detail: failure})
	}
	return nil
}

// startWorkload brings back the containers that inv lists and returns the
// critical ones that did not come back.
func (d *Daemon) startWorkload(ctx context.Context, inv json.RawMessage) []string {
	if d.Workload == nil || inv == nil {
		return nil
	}
	d.progress("starting containers")
	critical, err := d.Workload.Start(ctx, inv)
	if err != nil {
		d.st.SetError("starting containers: " + err.Error())
		d.Log.Error("starting containers", "err", err)
	}
	return critical
}

// restoreWorkload brings the containers back when no update reboot will
// follow (cancelled, rolled back, given up); the transition that led here
// already forgot the inventory, so the caller passes it.
func (d *Daemon) restoreWorkload(ctx context.Context, inv json.RawMessage, why string) {
	if critical := d.startWorkload(ctx, inv); len(critical) > 0 {
		msg := "containers did not come back (" + why + "): " + strings.Join(critical, "; ")
		d.st.SetError(msg)
		d.event(msgid.ContainersFailed, msg)
	}
}

// stopWorkloadForRollback stops the containers started on the failed
// snapshot before the rollback reboot; best effort.
func (d *Daemon) stopWorkloadForRollback(ctx context.Context, inv json.RawMessage) {
	if d.Workload == nil || inv == nil {
		return
	}
	if err := d.Workload.Stop(ctx, inv); err != nil {
		d.Log.Warn("stopping containers before the rollback reboot", "err", err)
	}
}

func (d *Daemon) progress(line string) {
	if d.Observer != nil {
		d.Observer.Progress(line)
	}
}
