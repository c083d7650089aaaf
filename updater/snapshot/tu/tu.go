package tu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot"
)

// Paths on a MicroOS host, all from sbin/transactional-update.in.
const (
	DefaultTU           = "/usr/sbin/transactional-update"
	DefaultRebootNeeded = "/run/reboot-needed"
	DefaultLockFile     = "/var/run/transactional-update.pid"
	DefaultSnapshotsDir = "/.snapshots"
	// tuLog is where t-u keeps its own log, named in error hints.
	tuLog = "/var/log/transactional-update.log"
)

// Engine drives transactional-update. Build it with New; the fields are
// exported so tests and odd hosts can point them elsewhere.
type Engine struct {
	Runner run.Runner
	Units  UnitStarter
	// Method is the t-u package command Stage runs: "dup", as MicroOS's own
	// transactional-update.service does (UPDATE_METHOD=dup), or "up".
	Method           string
	TU               string
	RebootNeededFile string
	LockFile         string
	SnapshotsDir     string
	KernelPackages   []string
	Now              func() time.Time
}

var _ snapshot.Engine = (*Engine)(nil)

// New returns an Engine with MicroOS defaults.
func New(r run.Runner, u UnitStarter) *Engine {
	return &Engine{
		Runner:           r,
		Units:            u,
		Method:           "dup",
		TU:               DefaultTU,
		RebootNeededFile: DefaultRebootNeeded,
		LockFile:         DefaultLockFile,
		SnapshotsDir:     DefaultSnapshotsDir,
		KernelPackages:   DefaultKernelPackages,
		Now:              time.Now,
	}
}

// Check refreshes the repositories and asks zypper, in a dry run, what Stage
// would change.
func (e *Engine) Check(ctx context.Context) ([]pkgver.Change, error) {
	if err := e.ready(); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if _, err := e.zypper(ctx, "--non-interactive", "refresh"); err != nil {
		return nil, fmt.Errorf("check: refresh: %w", err)
	}
	out, err := e.zypper(ctx, dryRunArgs(e.Method)...)
	if err != nil {
		return nil, fmt.Errorf("check: %s dry run: %w", e.Method, err)
	}
	changes, err := parseInstallSummary(out)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return changes, nil
}

// Stage runs t-u in a transient unit, then reads the snapshot it made the
// default, the package changes and the reboot level.
func (e *Engine) Stage(ctx context.Context, opt snapshot.StageOptions) (*snapshot.StageResult, error) {
	if err := e.ready(); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	before, err := e.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	unit, code, err := e.runTU(ctx, "stage", opt.Log, "--non-interactive", "--no-selfupdate", e.Method)
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if code != 0 {
		return nil, fmt.Errorf("stage: %w", unitFailed(e.Method, unit, code))
	}

	after, err := e.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("stage: after %s: %w", unit, err)
	}
	next, ok := defaultOf(after)
	if !ok {
		return nil, fmt.Errorf("stage: after %s: no default snapshot", unit)
	}
	// t-u deletes its snapshot and exits 0 when zypper has nothing to update.
	if prev, ok := defaultOf(before); ok && prev.Number == next.Number {
		return nil, fmt.Errorf("stage: %w: no updates available", errkind.NothingToDo)
	}
	if next.State != snapshot.StateReady {
		return nil, fmt.Errorf("stage: new default snapshot %d is %s", next.Number, next.State)
	}

	base := next.Parent
	if base == 0 {
		booted, ok := snapshot.Booted(after)
		if !ok {
			return nil, fmt.Errorf("stage: staged snapshot %d: no booted snapshot to compare with", next.Number)
		}
		base = booted.Number
	}
	oldPkgs, err := e.packages(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("stage: staged snapshot %d: %w", next.Number, err)
	}
	newPkgs, err := e.packages(ctx, next.Number)
	if err != nil {
		return nil, fmt.Errorf("stage: staged snapshot %d: %w", next.Number, err)
	}
	level, err := e.rebootLevel()
	if err != nil {
		return nil, fmt.Errorf("stage: staged snapshot %d: %w", next.Number, err)
	}
	changes := pkgver.Diff(oldPkgs, newPkgs)
	kernel := kernelChanged(level, changes, e.KernelPackages)

	if opt.Description != "" {
		// Appended, not replaced: tukit's prefix is how List knows the
		// snapshot is ours and its parent. Cosmetic, so failure is only logged.
		desc := next.Description + ": " + opt.Description
		err := e.snapper(ctx, "modify", "--description", desc, strconv.Itoa(next.Number))
		if err == nil {
			next.Description = desc
		} else if opt.Log != nil {
			fmt.Fprintf(opt.Log, "warning: describe snapshot %d: %v\n", next.Number, err)
		}
	}
	next.Changes, next.KernelChanged = changes, kernel
	return &snapshot.StageResult{Snapshot: next, Changes: changes, KernelChanged: kernel, RebootNeeded: true}, nil
}

// Rollback makes snapshot n the default with `transactional-update rollback`.
func (e *Engine) Rollback(ctx context.Context, n int) (*snapshot.Snapshot, error) {
	list, err := e.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	target, err := rollbackTarget(list, n)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	if err := e.busy(); err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	num := strconv.Itoa(target.Number)
	unit, code, err := e.runTU(ctx, "rollback", nil, "--no-selfupdate", "rollback", num)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	if code != 0 {
		return nil, fmt.Errorf("rollback: %w", unitFailed("rollback "+num, unit, code))
	}
	list, err = e.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollback: after %s: %w", unit, err)
	}
	s, ok := snapshot.Find(list, target.Number)
	if !ok || !s.Default {
		return nil, fmt.Errorf("rollback: %s succeeded but snapshot %d is not the default", unit, target.Number)
	}
	return &s, nil
}

// rollbackTarget picks the snapshot for Rollback(n): n itself, or for 0 the
// newest ready snapshot older than the booted one.
func rollbackTarget(list []snapshot.Snapshot, n int) (snapshot.Snapshot, error) {
	if n < 0 {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot %d: %w", n, errkind.NotFound)
	}
	if n == 0 {
		booted, ok := snapshot.Booted(list)
		if !ok {
			return snapshot.Snapshot{}, fmt.Errorf("booted snapshot: %w", errkind.NotFound)
		}
		prev, ok := snapshot.Previous(list, booted.Number)
		if !ok {
			return snapshot.Snapshot{}, fmt.Errorf("ready snapshot before %d: %w", booted.Number, errkind.NotFound)
		}
		return prev, nil
	}
	s, ok := snapshot.Find(list, n)
	if !ok {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot %d: %w", n, errkind.NotFound)
	}
	if s.State != snapshot.StateReady {
		return snapshot.Snapshot{}, fmt.Errorf("snapshot %d is %s: %w", n, s.State, errkind.Refused)
	}
	return s, nil
}

// MarkGood records speedia.good=yes in snapshot n's snapper userdata; snapper
// keeps the other keys.
func (e *Engine) MarkGood(ctx context.Context, n int) error {
	list, err := e.List(ctx)
	if err != nil {
		return fmt.Errorf("mark good: %w", err)
	}
	s, ok := snapshot.Find(list, n)
	if !ok {
		return fmt.Errorf("mark good: snapshot %d: %w", n, errkind.NotFound)
	}
	if s.State != snapshot.StateReady {
		return fmt.Errorf("mark good: snapshot %d is %s: %w", n, s.State, errkind.Refused)
	}
	if err := e.snapper(ctx, "modify", "--userdata", goodKey+"=yes", strconv.Itoa(n)); err != nil {
		return fmt.Errorf("mark good: %w", err)
	}
	return nil
}

// Cleanup deletes leftover staging snapshots and ready ones beyond the newest
// keep, sparing the booted, the default and the last good one. Foreign
// snapshots are never touched.
func (e *Engine) Cleanup(ctx context.Context, keep int) ([]int, error) {
	if keep < 0 {
		return nil, fmt.Errorf("cleanup: keep %d: %w", keep, errkind.Refused)
	}
	// A running t-u owns its in-progress snapshot; leave everything alone.
	if err := e.busy(); err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	list, err := e.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	var deleted []int
	for _, n := range cleanupVictims(list, keep) {
		if err := e.snapper(ctx, "delete", strconv.Itoa(n)); err != nil {
			return deleted, fmt.Errorf("cleanup: %w", err)
		}
		deleted = append(deleted, n)
	}
	return deleted, nil
}

// cleanupVictims returns, oldest first, the snapshots Cleanup deletes.
func cleanupVictims(list []snapshot.Snapshot, keep int) []int {
	protected := map[int]bool{}
	for _, s := range list {
		if s.Booted || s.Default {
			protected[s.Number] = true
		}
	}
	if good, ok := snapshot.LastGood(list); ok {
		protected[good.Number] = true
	}
	var ready, victims []int
	for _, s := range list {
		switch {
		case s.State == snapshot.StateReady:
			ready = append(ready, s.Number)
		case s.State == snapshot.StateStaging && !protected[s.Number]:
			victims = append(victims, s.Number)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ready)))
	for i, n := range ready {
		if i >= keep && !protected[n] {
			victims = append(victims, n)
		}
	}
	sort.Ints(victims)
	return victims
}

// List returns the root config's snapshots from snapper, oldest first.
func (e *Engine) List(ctx context.Context) ([]snapshot.Snapshot, error) {
	out, err := e.Runner.Run(ctx, run.Cmd{Name: "snapper", Args: listArgs})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return parseSnapperList(out)
}

// runTU runs t-u with args in a fresh transient unit and, if log is set,
// copies the unit's journal there afterwards.
func (e *Engine) runTU(ctx context.Context, action string, log io.Writer, args ...string) (string, int, error) {
	unit := fmt.Sprintf("speedia-tu-%s-%d.service", action, e.Now().Unix())
	code, err := e.Units.RunUnit(ctx, unit, append([]string{e.TU}, args...))
	if log != nil {
		e.copyJournal(ctx, unit, log)
	}
	if err != nil {
		return unit, code, fmt.Errorf("run %s: %w", unit, err)
	}
	return unit, code, nil
}

// copyJournal writes the unit's output to log. Best effort: the journal is a
// convenience; t-u keeps its own log too.
func (e *Engine) copyJournal(ctx context.Context, unit string, log io.Writer) {
	c := run.Cmd{Name: "journalctl", Args: []string{"--unit=" + unit, "--output=cat", "--no-pager"}, Log: log}
	if _, err := e.Runner.Run(ctx, c); err != nil {
		fmt.Fprintf(log, "warning: read journal of %s: %v\n", unit, err)
	}
}

func unitFailed(what, unit string, code int) error {
	return fmt.Errorf("transactional-update %s failed with exit status %d in unit %s; see `journalctl -u %s` and %s",
		what, code, unit, unit, tuLog)
}

func (e *Engine) snapper(ctx context.Context, args ...string) error {
	if _, err := e.Runner.Run(ctx, run.Cmd{Name: "snapper", Args: args}); err != nil {
		return fmt.Errorf("snapper %s: %w", args[0], err)
	}
	return nil
}

// zypper runs zypper, accepting its informational exit codes 102 and 103
// (zypper(8), EXIT CODES) and mapping 7, "ZYPP library is locked", to
// errkind.Busy.
func (e *Engine) zypper(ctx context.Context, args ...string) ([]byte, error) {
	out, err := e.Runner.Run(ctx, run.Cmd{Name: "zypper", Args: args})
	var ee *run.ExitError
	if errors.As(err, &ee) {
		switch ee.Code {
		case 102, 103:
			return out, nil
		case 7:
			return nil, fmt.Errorf("%w: %w", errkind.Busy, err)
		}
		if msg := zypperErrors(out); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
	}
	return out, err
}

// packages lists the packages installed in snapshot n.
func (e *Engine) packages(ctx context.Context, n int) (map[string]string, error) {
	root := filepath.Join(e.SnapshotsDir, strconv.Itoa(n), "snapshot")
	out, err := e.Runner.Run(ctx, run.Cmd{Name: "rpm", Args: []string{"--root", root, "-qa", "--queryformat", rpmFormat}})
	if err != nil {
		return nil, fmt.Errorf("packages of snapshot %d: %w", n, err)
	}
	pkgs, err := parseRPM(out)
	if err != nil {
		return nil, fmt.Errorf("packages of snapshot %d: %w", n, err)
	}
	return pkgs, nil
}

// rebootLevel reads /run/reboot-needed; "" when t-u left none.
func (e *Engine) rebootLevel() (string, error) {
	data, err := os.ReadFile(e.RebootNeededFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reboot level: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// ready rejects an unknown Method and, like busy, a running t-u.
func (e *Engine) ready() error {
	if e.Method != "dup" && e.Method != "up" {
		return fmt.Errorf("method %q: want dup or up", e.Method)
	}
	return e.busy()
}

// busy fails with errkind.Busy while t-u runs.
func (e *Engine) busy() error {
	if e.tuRunning() {
		return fmt.Errorf("transactional-update holds %s: %w", e.LockFile, errkind.Busy)
	}
	return nil
}

// tuRunning applies t-u's own lock test (bashlock): the lock file's first line
// is a pid, and the lock is held while that process exists.
func (e *Engine) tuRunning() bool {
	data, err := os.ReadFile(e.LockFile)
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func defaultOf(list []snapshot.Snapshot) (snapshot.Snapshot, bool) {
	for _, s := range list {
		if s.Default {
			return s, true
		}
	}
	return snapshot.Snapshot{}, false
}
