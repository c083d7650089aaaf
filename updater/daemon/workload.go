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
	return d.Workload != nil && d.st.Phase == state.Rebooting && d.st.BootID == d.BootID &&
		!d.st.WorkloadStopped && !now.Before(d.st.RebootAt)
}

// stopWorkload stops the containers at the reboot moment, then reboots at
// once. If they do not stop, the reboot is called off, they run again and
// the reboot is planned again later.
func (d *Daemon) stopWorkload(ctx context.Context, now time.Time) {
	if d.st.Workload == nil {
		inv, err := d.Workload.Inventory(ctx)
		if err != nil {
			d.abortReboot(ctx, now, "taking the container inventory", err)
			return
		}
		// Saved before stopping: a daemon killed halfway still knows what
		// ran (a second inventory would miss what it stopped).
		d.st.Workload = inv
		d.publish(false)
	}
	d.progress("stopping containers")
	if err := d.Workload.Stop(ctx, d.st.Workload); err != nil {
		d.restoreWorkload(ctx, "the reboot was called off")
		d.abortReboot(ctx, now, "stopping containers", err)
		return
	}
	d.st.WorkloadStopped = true
	d.publish(false)
	if err := d.Rebooter.ScheduleReboot(ctx, d.Clock.Now(), d.settings.WallMessage); err != nil {
		// logind's first schedule (stopBudget later) still stands.
		d.st.LastError = "rebooting right after stopping the containers: " + err.Error()
		d.Log.Warn("could not move the reboot forward; logind reboots at the scheduled time", "err", err)
	}
}

// abortReboot cancels the logind reboot and plans it again later.
func (d *Daemon) abortReboot(ctx context.Context, now time.Time, step string, err error) {
	if _, cerr := d.Rebooter.CancelReboot(ctx); cerr != nil {
		d.Log.Error("cancelling the reboot in logind", "err", cerr)
	}
	d.st.LastError = fmt.Sprintf("before reboot, %s: %v", step, err)
	d.Log.Error("pre-reboot step failed; trying again later", "step", step, "err", err)
	d.must(d.st.RebootAborted(now.Add(retryAfter), fmt.Sprintf("retrying: %s failed", step)))
	if p := d.st.Pending; p != nil {
		d.record(history.Record{Event: history.RebootCancelled, Snapshot: p.Snapshot, Update: p.ID, Detail: d.st.LastError})
	}
}

// startWorkload brings back the containers stopped before the reboot and
// returns the critical ones that did not come back.
func (d *Daemon) startWorkload(ctx context.Context) []string {
	if d.Workload == nil || d.st.Workload == nil {
		return nil
	}
	d.progress("starting containers")
	critical, err := d.Workload.Start(ctx, d.st.Workload)
	if err != nil {
		d.st.LastError = "starting containers: " + err.Error()
		d.Log.Error("starting containers", "err", err)
	}
	return critical
}

// restoreWorkload brings the containers back when no update reboot will
// follow (cancelled, rolled back, given up) and forgets the inventory.
func (d *Daemon) restoreWorkload(ctx context.Context, why string) {
	if d.st.Workload == nil {
		return
	}
	if critical := d.startWorkload(ctx); len(critical) > 0 {
		msg := "containers did not come back (" + why + "): " + strings.Join(critical, "; ")
		d.st.LastError = msg
		d.event(msgid.ContainersFailed, msg)
	}
	d.clearWorkload()
}

func (d *Daemon) clearWorkload() {
	d.st.Workload, d.st.WorkloadStopped = nil, false
}

// stopWorkloadForRollback stops the containers started on the failed
// snapshot before the rollback reboot; best effort.
func (d *Daemon) stopWorkloadForRollback(ctx context.Context) {
	if d.Workload == nil || d.st.Workload == nil {
		return
	}
	if err := d.Workload.Stop(ctx, d.st.Workload); err != nil {
		d.Log.Warn("stopping containers before the rollback reboot", "err", err)
	}
}

func (d *Daemon) progress(line string) {
	if d.Observer != nil {
		d.Observer.Progress(line)
	}
}
