// Command speedia-containers does the daemon's Podman work in a process of
// its own: Podman's bindings would double the idle daemon's memory, so
// speedia-updated runs this only when containers need stopping, starting
// or upgrading. It reads an inventory on stdin where an operation needs one
// and always answers with one JSON reply on stdout; logs go to stderr (the
// daemon's journal).
//
//	speedia-containers [flags] inventory|stop|start|upgrade NAME IMAGE|rollback NAME|prune NAME|records|maintain|check|status [NAME...]|patch NAME
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/speedia/host/podman"
	"github.com/speedia/host/podman/patch"
	"github.com/speedia/host/updater/containers"
	"github.com/speedia/host/updater/errkind"
)

func main() {
	m := &podman.Manager{Units: podman.Systemd{}}
	flag.StringVar(&m.Socket, "socket", podman.DefaultSocket, "Podman's API socket")
	flag.StringVar(&m.Dir, "dir", podman.DefaultDir, "upgrade records and data snapshots")
	flag.DurationVar(&m.Settle, "settle", podman.DefaultSettle, "a container without a health check is up after running this long")
	flag.DurationVar(&m.Timeout, "timeout", podman.DefaultTimeout, "per container, to come up healthy")
	flag.IntVar(&m.Parallel, "parallel", podman.DefaultParallel, "containers started or stopped at once")
	flag.DurationVar(&m.Keep, "keep", podman.DefaultKeep, "how long upgrades are kept")
	var o opts
	flag.BoolVar(&o.auto, "auto-upgrade", false, "maintain: also upgrade containers labelled speedia.upgrade=auto")
	flag.BoolVar(&o.force, "force", false, "upgrade: also a container with files of its own in its writable layer")
	flag.BoolVar(&o.dryRun, "dry-run", false, "patch: only list what would be upgraded")
	flag.BoolVar(&o.securityOnly, "security-only", false, "patch: only security updates")
	flag.StringVar(&o.policy, "patch-policy", "security", "check: the policy of containers without an "+podman.LabelPatch+" label")
	flag.DurationVar(&o.lockTimeout, "lock-timeout", 5*time.Minute, "patch: wait this long for a package lock held inside the container")
	flag.IntVar(&o.keep, "patch-keep", 3, "patch: rollback points kept per container")
	flag.Parse()
	m.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r := do(ctx, m, flag.Args(), os.Stdin, o)
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		os.Exit(1)
	}
}

// opts are the helper's flags that change an operation.
type opts struct {
	auto         bool // maintain: also auto-upgrade
	force        bool // upgrade: despite files in the writable layer
	dryRun       bool // patch
	securityOnly bool // patch
	policy       string
	lockTimeout  time.Duration
	keep         int
}

func do(ctx context.Context, m *podman.Manager, args []string, stdin io.Reader, o opts) containers.Reply {
	if len(args) == 0 {
		return containers.Failure(fmt.Errorf("%w: no operation", errkind.Usage))
	}
	want := map[string]int{"inventory": 1, "stop": 1, "start": 1, "upgrade": 3, "rollback": 2, "prune": 2, "records": 1, "maintain": 1, "patch": 2, "check": -1, "status": -1}
	if n, ok := want[args[0]]; !ok || (n >= 0 && n != len(args)) {
		return containers.Failure(fmt.Errorf("%w: %q", errkind.Usage, args))
	}
	var r containers.Reply
	switch args[0] {
	case "inventory":
		inv, err := m.Take(ctx)
		if err != nil {
			return containers.Failure(err)
		}
		r.Inventory, err = json.Marshal(inv)
		r.SetError(err)
	case "stop", "start":
		var inv podman.Inventory
		if err := json.NewDecoder(stdin).Decode(&inv); err != nil {
			return containers.Failure(fmt.Errorf("%w: inventory on stdin: %w", errkind.Usage, err))
		}
		var rep podman.Report
		var err error
		if args[0] == "stop" {
			rep, err = m.Stop(ctx, inv)
		} else {
			rep, err = m.Start(ctx, inv)
			r.Critical = rep.CriticalFailures()
			if err != nil { // Podman unreachable: every critical container is down
				for _, c := range inv.Containers {
					if c.Critical {
						r.Critical = append(r.Critical, "container "+c.Name+": "+err.Error())
					}
				}
			}
		}
		r.Run = runView(args[0], rep, err)
		r.SetError(err)
	case "upgrade", "rollback", "prune":
		var rec *podman.Record
		var err error
		switch args[0] {
		case "upgrade":
			rec, err = m.Upgrade(ctx, args[1], args[2], podman.UpgradeOptions{Force: o.force})
		case "rollback":
			if p, perr := m.RollbackPatch(ctx, args[1], true); perr == nil || !errors.Is(perr, podman.ErrOlder) {
				if p != nil {
					r.Patch = &containers.Patch{}
					if cerr := convert(p, r.Patch); cerr != nil {
						return containers.Failure(cerr)
					}
				}
				r.SetError(perr)
				return r
			}
			rec, err = m.Rollback(ctx, args[1])
		default:
			rec, err = m.Prune(ctx, args[1])
		}
		if err != nil {
			return containers.Failure(err)
		}
		u := upgradeView(rec)
		r.Upgrade = &u
	case "check", "status":
		st, err := m.CheckPatches(ctx, args[1:], o.policy, args[0] == "check")
		if err != nil {
			return containers.Failure(err)
		}
		if err := convert(st, &r.Patches); err != nil {
			return containers.Failure(err)
		}
	case "patch":
		recoverPatches(ctx, m)
		rec, err := patchOne(ctx, m, args[1], o)
		if rec != nil {
			r.Patch = &containers.Patch{}
			if cerr := convert(rec, r.Patch); cerr != nil {
				return containers.Failure(cerr)
			}
			r.Patch.DryRun = o.dryRun
		}
		r.SetError(err)
	case "records":
		recs, err := m.Records()
		if err != nil {
			return containers.Failure(err)
		}
		r.Upgrades = []containers.Upgrade{}
		for _, rec := range recs {
			r.Upgrades = append(r.Upgrades, upgradeView(rec))
		}
	case "maintain":
		recoverPatches(ctx, m)
		names, err := m.Expire(ctx, time.Now())
		if len(names) > 0 {
			m.Log.Info("discarded expired container upgrades", "containers", names)
		}
		errs := []error{err}
		if o.auto {
			recs, err := m.AutoUpgrade(ctx)
			for _, rec := range recs {
				r.Upgrades = append(r.Upgrades, upgradeView(rec))
			}
			errs = append(errs, err)
		}
		r.SetError(errors.Join(errs...))
	}
	return r
}

// recoverPatches finishes what a helper killed during a patch left; the
// Manager's directory lock keeps it from touching a patch still running.
func recoverPatches(ctx context.Context, m *podman.Manager) {
	names, err := m.RecoverPatches(ctx)
	if len(names) > 0 {
		m.Log.Warn("finished interrupted container patches", "containers", names)
	}
	if err != nil {
		m.Log.Error("finishing interrupted container patches", "err", err)
	}
}

// patchOne finds the container's package manager and patches it.
func patchOne(ctx context.Context, m *podman.Manager, name string, o opts) (*podman.PatchRecord, error) {
	st, err := m.CheckPatches(ctx, []string{name}, o.policy, false)
	if err != nil {
		return nil, err
	}
	s := st[0]
	if !s.Patchable {
		return nil, fmt.Errorf("%w: %s: %s", errkind.Refused, s.Name, s.Reason)
	}
	return m.Patch(ctx, s.Name, podman.PatchOptions{Driver: patch.ByName(s.Manager), SecurityOnly: o.securityOnly,
		DryRun: o.dryRun, LockTimeout: o.lockTimeout, Keep: o.keep})
}

// convert moves a value of the podman package into the protocol's type
// of the same JSON shape.
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

func runView(what string, rep podman.Report, err error) *containers.Run {
	run := &containers.Run{What: what, At: time.Now().UTC(), Notes: rep.Notes}
	for _, x := range rep.Results {
		run.Results = append(run.Results, containers.Result(x))
	}
	if err != nil {
		run.Error = err.Error()
	}
	return run
}

func upgradeView(r *podman.Record) containers.Upgrade {
	u := containers.Upgrade{
		Name: r.Name, At: r.At, KeepUntil: r.KeepUntil, OldImage: r.OldImage, NewImage: r.NewImage,
		OldID: r.OldID, NewID: r.NewID, Kept: r.Kept, Notes: r.Notes,
		WritableLayer: &containers.WritableLayer{User: r.Layer.User, Paths: r.Layer.Paths, Churn: r.Layer.Churn},
	}
	if r.KeptRestart.Policy != "" {
		u.KeptRestart = &containers.KeptRestart{Policy: r.KeptRestart.Policy, Retries: r.KeptRestart.Retries}
	}
	for _, it := range r.Data.Items {
		u.Data = append(u.Data, containers.SavedData{Kind: it.Kind, Name: it.Name, Path: it.Path, Method: it.Method})
	}
	return u
}
