// Package containers is the daemon's side of container care: it runs the
// speedia-containers helper (the one program that links Podman's bindings)
// for each operation and speaks its JSON protocol. Keeping the bindings out
// of the daemon keeps the idle daemon small.
package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/daemon"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/metrics"
	"github.com/speedia/host/updater/msgid"
	"github.com/speedia/host/updater/state"
)

// The protocol's types are the API's.
type (
	Upgrade       = client.ContainerUpgrade
	Run           = client.ContainerRun
	Result        = client.ContainerResult
	SavedData     = client.SavedData
	KeptRestart   = client.KeptRestart
	WritableLayer = client.WritableLayer
	PatchStatus   = client.ContainerPatchStatus
	Patch         = client.ContainerPatch
)

// kinds are the error kinds a reply can carry, by their name on the wire.
var kinds = map[string]*errkind.Kind{"usage": errkind.Usage, "not-found": errkind.NotFound, "nothing": errkind.NothingToDo,
	"refused": errkind.Refused, "bad": errkind.Bad, "busy": errkind.Busy}

// Reply is the helper's answer to one operation.
type Reply struct {
	Inventory json.RawMessage `json:"inventory,omitempty"`
	Run       *Run            `json:"run,omitempty"`
	Critical  []string        `json:"critical,omitempty"`
	Upgrade   *Upgrade        `json:"upgrade,omitempty"`
	Upgrades  []Upgrade       `json:"upgrades,omitempty"`
	Patches   []PatchStatus   `json:"patches,omitempty"`
	Patch     *Patch          `json:"patch,omitempty"`
	Error     string          `json:"error,omitempty"`
	Kind      string          `json:"kind,omitempty"` // a key of kinds
}

// Failure is a reply that carries only err.
func Failure(err error) Reply {
	var r Reply
	r.SetError(err)
	return r
}

// SetError records err (nil: nothing) and its kind.
func (r *Reply) SetError(err error) {
	if err == nil {
		return
	}
	r.Error = err.Error()
	for k, e := range kinds {
		if errors.Is(err, e) {
			r.Kind = k
		}
	}
}

// Err is the reply's error, wrapping its kind. A usage error of the helper
// is the daemon's caller's invalid argument.
func (r Reply) Err() error {
	if r.Error == "" {
		return nil
	}
	k := kinds[r.Kind]
	switch {
	case k == errkind.Usage:
		return fmt.Errorf("%w: %s", errkind.Invalid, r.Error)
	case k != nil:
		return fmt.Errorf("%w: %s", k, r.Error)
	}
	return errors.New(r.Error)
}

// Exec runs the helper. It is the daemon's Workload and the D-Bus API's
// container backend. The helper's flags come from the settings in force
// (the daemon's View) at each call, so a reload changes them.
type Exec struct {
	Helper string             // path of speedia-containers
	Dir    string             // the helper's state: upgrade records, data snapshots
	View   func() daemon.View // the daemon's state and settings, to stay out of reboots
	Log    *slog.Logger
	// Record appends to the update history (nil: none).
	Record func(history.Record)
	// Metrics get what checks and patches found (nil: none).
	Metrics PatchMetrics

	mu        sync.Mutex
	last      *Run
	lastCheck time.Time
	busyAuto  bool
}

func (x *Exec) call(ctx context.Context, stdin []byte, args ...string) (Reply, error) {
	s := x.View().Settings.Containers
	flags := []string{"-socket", s.Socket, "-dir", x.Dir, "-settle", s.Settle.String(), "-timeout", s.Timeout.String(),
		"-parallel", fmt.Sprint(s.Parallel), "-keep", s.Keep.String()}
	if s.Patch != "" { // patching settings (zero in tests that do not set them)
		flags = append(flags, "-patch-policy", s.Patch, "-patch-keep", fmt.Sprint(s.PatchKeep), "-lock-timeout", s.PatchLockTimeout.String())
	}
	cmd := exec.CommandContext(ctx, x.Helper, append(flags, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stderr = os.Stderr // the daemon's journal
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	var r Reply
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		if err == nil {
			err = jerr
		}
		return r, fmt.Errorf("%s %s: %w", x.Helper, opName(args), err)
	}
	return r, nil
}

// PatchMetrics is what the metrics take of container patching
// (*metrics.Metrics).
type PatchMetrics interface {
	SetContainerPatches([]metrics.ContainerPatch)
	SetContainerPatch(metrics.ContainerPatch)
	ContainerPatchFailed(name string)
}

func patchMetric(s PatchStatus) metrics.ContainerPatch {
	c := metrics.ContainerPatch{Name: s.Name, Pending: len(s.Pending), Security: s.Security}
	if s.Last != nil && s.Last.Step == "done" {
		c.LastPatched = s.Last.At
	}
	return c
}

// opName is the operation among the helper's arguments, past its flags.
func opName(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

// noPodman: without the socket there is no Podman service, so no
// containers to care for (a socket-activated service has its socket).
func (x *Exec) noPodman() bool {
	_, err := os.Stat(x.View().Settings.Containers.Socket)
	return errors.Is(err, fs.ErrNotExist)
}

// Inventory lists the running containers (empty without Podman).
func (x *Exec) Inventory(ctx context.Context) (json.RawMessage, error) {
	if x.noPodman() {
		return json.RawMessage(`{"containers":[]}`), nil
	}
	r, err := x.call(ctx, nil, "inventory")
	if err != nil {
		return nil, err
	}
	return r.Inventory, r.Err()
}

func empty(inv json.RawMessage) bool {
	var v struct {
		Containers []json.RawMessage `json:"containers"`
	}
	return json.Unmarshal(inv, &v) == nil && len(v.Containers) == 0
}

// Stop stops the inventory's containers in order.
func (x *Exec) Stop(ctx context.Context, inv json.RawMessage) error {
	if empty(inv) {
		return nil
	}
	r, err := x.call(ctx, inv, "stop")
	if err != nil {
		return err
	}
	x.remember(r.Run)
	return r.Err()
}

// Start brings the inventory's containers back and returns the critical
// ones that did not come back.
func (x *Exec) Start(ctx context.Context, inv json.RawMessage) ([]string, error) {
	if empty(inv) {
		return nil, nil
	}
	r, err := x.call(ctx, inv, "start")
	if err != nil {
		return []string{"containers: " + err.Error()}, err
	}
	x.remember(r.Run)
	return r.Critical, r.Err()
}

func (x *Exec) remember(run *Run) {
	if run == nil {
		return
	}
	for _, r := range run.Results {
		if r.OK {
			x.Log.Info("container "+r.Action, "container", r.Name, "took", r.Took.Round(time.Millisecond))
		} else {
			x.Log.Warn("container "+run.What+" failed", "container", r.Name, "critical", r.Critical, "err", r.Error)
		}
	}
	x.mu.Lock()
	x.last = run
	x.mu.Unlock()
}

// busy refuses container changes between an update reboot's stop and the
// containers' return.
func (x *Exec) busy() error {
	switch p := x.View().State.Phase(); p {
	case state.Rebooting, state.Verifying, state.RollingBack:
		return fmt.Errorf("%w: the host is %s; try again once it is idle", errkind.Busy, p)
	}
	return nil
}

func (x *Exec) upgradeCall(ctx context.Context, args ...string) (any, error) {
	if err := x.busy(); err != nil {
		return nil, err
	}
	r, err := x.call(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return r.Upgrade, nil
}

// Upgrade hard-upgrades container name to image; force upgrades one with
// files in its writable layer too.
func (x *Exec) Upgrade(ctx context.Context, name, image string, force bool) (any, error) {
	if force {
		return x.upgradeCall(ctx, "-force", "upgrade", name, image)
	}
	return x.upgradeCall(ctx, "upgrade", name, image)
}

// Rollback undoes the last patch or kept upgrade of name.
func (x *Exec) Rollback(ctx context.Context, name string) (any, error) {
	if err := x.busy(); err != nil {
		return nil, err
	}
	r, err := x.call(ctx, nil, "rollback", name)
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if r.Patch != nil {
		if x.Record != nil {
			x.Record(history.Record{Event: history.ContainerRolledBack, Container: name, Update: r.Patch.SetID,
				Detail: "rollback point " + r.Patch.Image + " runs again"})
		}
		return client.ContainerRollback{Patch: r.Patch}, nil
	}
	return client.ContainerRollback{ContainerUpgrade: r.Upgrade}, nil
}

// Check reports on the named containers (none: all); refresh asks their
// package managers what is pending.
func (x *Exec) Check(ctx context.Context, names []string, refresh bool) (any, error) {
	if err := x.busy(); err != nil {
		return nil, err
	}
	op := "status"
	if refresh {
		op = "check"
	}
	r, err := x.call(ctx, nil, append([]string{op}, names...)...)
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if r.Patches == nil {
		r.Patches = []PatchStatus{}
	}
	if x.Metrics != nil && refresh {
		var cps []metrics.ContainerPatch
		for _, s := range r.Patches {
			if s.Checked {
				cps = append(cps, patchMetric(s))
			}
		}
		if len(names) == 0 {
			x.Metrics.SetContainerPatches(cps)
		} else {
			for _, c := range cps {
				x.Metrics.SetContainerPatch(c)
			}
		}
	}
	return r.Patches, nil
}

// Patch upgrades the packages inside container name, with a rollback
// point; dryRun only lists what would be upgraded.
func (x *Exec) Patch(ctx context.Context, name string, dryRun, securityOnly bool) (any, error) {
	if err := x.busy(); err != nil {
		return nil, err
	}
	var args []string
	if dryRun {
		args = append(args, "-dry-run")
	}
	if securityOnly {
		args = append(args, "-security-only")
	}
	r, err := x.call(ctx, nil, append(args, "patch", name)...)
	if err != nil {
		return nil, err
	}
	err = r.Err()
	if !dryRun {
		x.patchEvent(name, r.Patch, err)
	}
	if err != nil {
		return nil, err
	}
	return r.Patch, nil
}

// patchEvent logs and records how a patch ended. Refusals before anything
// changed (nothing pending, a bad set, a held lock) are only the caller's
// answer.
func (x *Exec) patchEvent(name string, p *Patch, err error) {
	rec := history.Record{Container: name}
	if p != nil {
		rec.Update = p.SetID
	}
	switch {
	case err == nil && p != nil:
		rec.Event, rec.Detail = history.ContainerPatched, fmt.Sprintf("%d packages; rollback point %s", len(p.Updates), p.Image)
		x.Log.Info("container "+name+" patched", "message_id", msgid.ContainerPatched, "container", name, "set", p.SetID, "rollback_point", p.Image)
		if x.Metrics != nil {
			x.Metrics.SetContainerPatch(metrics.ContainerPatch{Name: name, LastPatched: p.At})
		}
	case err == nil, errors.Is(err, errkind.NothingToDo), errors.Is(err, errkind.Bad), errors.Is(err, errkind.Busy),
		errors.Is(err, errkind.Refused), errors.Is(err, errkind.NotFound), errors.Is(err, errkind.Invalid):
		return
	default:
		rec.Event, rec.Detail = history.ContainerPatchFailed, err.Error()
		x.Log.Warn("container "+name+" patch failed", "message_id", msgid.ContainerPatchFailed, "container", name, "err", err)
		if x.Metrics != nil {
			x.Metrics.ContainerPatchFailed(name)
		}
	}
	if x.Record != nil {
		x.Record(rec)
	}
}

// Prune discards the kept upgrade of name.
func (x *Exec) Prune(ctx context.Context, name string) (any, error) {
	return x.upgradeCall(ctx, "prune", name)
}

// Report is the containers' picture for the API.
func (x *Exec) Report(ctx context.Context) (any, error) {
	rep := client.Containers{Upgrades: []Upgrade{}}
	if raw := x.View().State.Workload().Inventory; raw != nil {
		var inv struct {
			Containers []struct {
				Name string `json:"name"`
			} `json:"containers"`
		}
		if json.Unmarshal(raw, &inv) == nil {
			for _, c := range inv.Containers {
				rep.Stopped = append(rep.Stopped, c.Name)
			}
		}
	}
	x.mu.Lock()
	rep.Last = x.last
	x.mu.Unlock()
	r, err := x.call(ctx, nil, "records")
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	rep.Upgrades = append(rep.Upgrades, r.Upgrades...)
	return rep, nil
}

// Observe runs maintenance (expiry, auto-upgrades) after each update check
// the daemon finishes; never two at once, never during a reboot.
func (x *Exec) Observe(ctx context.Context, v daemon.View) {
	auto := v.Settings.Containers.AutoUpgrade
	last := v.State.Checks().Last
	x.mu.Lock()
	changed := !last.Equal(x.lastCheck) && !x.lastCheck.IsZero()
	x.lastCheck = last
	if !changed || x.busyAuto {
		x.mu.Unlock()
		return
	}
	x.busyAuto = true
	x.mu.Unlock()
	go func() {
		defer func() {
			x.mu.Lock()
			x.busyAuto = false
			x.mu.Unlock()
		}()
		if x.noPodman() || x.busy() != nil {
			return
		}
		args := []string{"maintain"}
		if auto {
			args = []string{"-auto-upgrade", "maintain"}
		}
		r, err := x.call(ctx, nil, args...)
		if err == nil {
			err = r.Err()
		}
		for _, u := range r.Upgrades {
			x.Log.Info("container upgraded automatically", "container", u.Name, "image", u.NewImage)
		}
		if err != nil {
			x.Log.Error("container maintenance", "err", strings.TrimSpace(err.Error()))
		}
	}()
}
