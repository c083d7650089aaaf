// Package native is the snapshot engine for the Debian base: btrfs snapshots
// in the MicroOS layout (@/.snapshots/N/snapshot, read-only), apt run inside
// the new snapshot, the btrfs default subvolume (and, when configured, a boot
// loader entry) as the next boot.
//
// One transaction, in the order the steps run (each is a Step, so tests can
// kill the process before any of them):
//
//	recover   delete snapshots of earlier transactions that never finished
//	check     apt-get update; stop early when nothing is upgradable
//	inhibit   logind block inhibitor on shutdown, held to the end
//	snapshot  N+1 = writable snapshot of the booted root, /etc forked from the live /etc
//	update    apt-get dist-upgrade inside N+1 (private mount namespace, chroot)
//	diff      package and kernel changes, booted vs N+1
//	seal      N+1 read-only (its /etc stays a writable nested subvolume)
//	metadata  info.xml says "ready" (snapper-compatible), changes.json
//	sync      btrfs filesystem sync
//	default   N+1 becomes the btrfs default subvolume: the commit point
//
// Before the commit point the default subvolume still names the old snapshot,
// so a crash anywhere boots the old, whole snapshot; after it, the new one is
// complete. Half-made snapshots say "staging" and are deleted by the next run.
package native

import (
	"bufio"
	"bytes"
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
	"github.com/speedia/host/updater/etcmerge"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot"
)

// Step names one step of a transaction.
type Step string

// The steps, in order. Rollback uses StepEtc, StepSync and StepDefault.
const (
	StepRecover  Step = "recover"
	StepCheck    Step = "check"
	StepInhibit  Step = "inhibit"
	StepSnapshot Step = "snapshot"
	StepUpdate   Step = "update"
	StepDiff     Step = "diff"
	StepSeal     Step = "seal"
	StepMetadata Step = "metadata"
	StepSync     Step = "sync"
	StepDefault  Step = "default"
	StepDone     Step = "done"
	StepEtc      Step = "etc"
)

// StageSteps lists Stage's steps in order (for fault-injection tests).
var StageSteps = []Step{StepRecover, StepCheck, StepInhibit, StepSnapshot, StepUpdate, StepDiff, StepSeal, StepMetadata, StepSync, StepDefault, StepDone}

// Inhibitor holds off shutdown while a transaction runs.
type Inhibitor interface {
	Inhibit(ctx context.Context, why string) (release func(), err error)
}

// BootLoader is the optional second way to pick the next boot (a boot loader
// entry per snapshot, with boot counting); the btrfs default is always set.
type BootLoader interface {
	SetNext(ctx context.Context, n int, root string) error
	Bless(ctx context.Context, n int) error
	Remove(ctx context.Context, n int) error
}

// Config wires an Engine. Zero paths take the defaults of a real host.
type Config struct {
	Root       string // the running root: "/"
	Snapshots  string // "/.snapshots"
	LogDir     string // "/var/log/speedia"
	LockFile   string // "/run/speedia/engine.lock"
	Runner     run.Runner
	Inhibitor  Inhibitor  // nil: no inhibitor (e.g. in an image build)
	Loader     BootLoader // nil: the btrfs default subvolume only
	BeforeStep func(Step) // tests: fault injection
	Now        func() time.Time
}

// Engine implements snapshot.Engine for Debian.
type Engine struct{ c Config }

var _ snapshot.Engine = (*Engine)(nil)

// New returns an engine with defaults filled in.
func New(c Config) *Engine {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.Snapshots == "" {
		c.Snapshots = filepath.Join(c.Root, ".snapshots")
	}
	if c.LogDir == "" {
		c.LogDir = "/var/log/speedia"
	}
	if c.LockFile == "" {
		c.LockFile = "/run/speedia/engine.lock"
	}
	if c.Runner == nil {
		c.Runner = run.Exec{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Engine{c: c}
}

func (e *Engine) step(s Step) {
	if e.c.BeforeStep != nil {
		e.c.BeforeStep(s)
	}
}

func (e *Engine) btrfs() btrfs { return btrfs{e.c.Runner} }

func (e *Engine) dir(n int) string { return filepath.Join(e.c.Snapshots, strconv.Itoa(n)) }

func (e *Engine) rootOf(n int) string { return filepath.Join(e.dir(n), "snapshot") }

// lock serializes transactions; the kernel drops the lock if we die.
func (e *Engine) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(e.c.LockFile), 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(e.c.LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", e.c.LockFile, errkind.Busy)
	}
	return func() { f.Close() }, nil
}

// List implements snapshot.Engine.
func (e *Engine) List(ctx context.Context) ([]snapshot.Snapshot, error) {
	ents, err := os.ReadDir(e.c.Snapshots)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no %s: this is not a Speedia host, or the snapshots subvolume is not mounted: %w", e.c.Snapshots, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	def, err := e.btrfs().defaultSnapshot(ctx, e.c.Snapshots)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []snapshot.Snapshot
	for _, ent := range ents {
		n, err := strconv.Atoi(ent.Name())
		if err != nil || !ent.IsDir() || n <= 0 {
			continue
		}
		in, err := readInfo(filepath.Join(e.dir(n), "info.xml"))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		m, _ := readMeta(filepath.Join(e.dir(n), "changes.json"))
		s := toSnapshot(n, in, m)
		s.Booted = sameDevice(e.c.Root, e.rootOf(n))
		s.Default = n == def
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// recover deletes snapshots left by transactions that never finished.
func (e *Engine) recover(ctx context.Context, list []snapshot.Snapshot) ([]snapshot.Snapshot, error) {
	var keep []snapshot.Snapshot
	for _, s := range list {
		if s.State == snapshot.StateStaging && !s.Booted && !s.Default {
			if err := e.btrfs().deleteTree(ctx, e.dir(s.Number)); err != nil {
				return nil, fmt.Errorf("delete unfinished snapshot %d: %w", s.Number, err)
			}
			continue
		}
		keep = append(keep, s)
	}
	return keep, nil
}

func (e *Engine) booted(list []snapshot.Snapshot) (snapshot.Snapshot, error) {
	b, ok := snapshot.Booted(list)
	if !ok {
		return b, fmt.Errorf("the running root %s is none of the snapshots in %s: is this a Speedia host?", e.c.Root, e.c.Snapshots)
	}
	return b, nil
}

// aptEnv keeps apt and dpkg from asking anything.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "LC_ALL=C.UTF-8"}

// aptUpgrade is the update run inside the new snapshot: keep the admin's
// config files (confold), take the maintainer's where the admin changed nothing.
var aptUpgrade = []string{"apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold",
	"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Use-Pty=0", "dist-upgrade"}

// Check implements snapshot.Engine.
func (e *Engine) Check(ctx context.Context) ([]pkgver.Change, error) {
	if _, err := e.c.Runner.Run(ctx, run.Cmd{Name: "apt-get", Args: []string{"-q", "update"}, Env: aptEnv}); err != nil {
		return nil, fmt.Errorf("refresh package lists: %w", err)
	}
	out, err := e.c.Runner.Run(ctx, run.Cmd{Name: "apt-get", Args: []string{"-s", "-q", "-o", "Debug::NoLocking=1", "dist-upgrade"}, Env: aptEnv})
	if err != nil {
		return nil, fmt.Errorf("simulate upgrade: %w", err)
	}
	return parseSimulation(out), nil
}

// parseSimulation reads apt-get -s output: "Inst name [old] (new repo [arch])",
// "Inst name (new ...)" for new packages, "Remv name [old]".
func parseSimulation(out []byte) []pkgver.Change {
	var changes []pkgver.Change
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || (f[0] != "Inst" && f[0] != "Remv") {
			continue
		}
		c := pkgver.Change{Name: f[1]}
		for _, x := range f[2:] {
			switch {
			case strings.HasPrefix(x, "[") && c.Old == "" && c.New == "":
				c.Old = strings.Trim(x, "[]")
			case strings.HasPrefix(x, "(") && c.New == "":
				c.New = strings.TrimPrefix(x, "(")
			}
		}
		switch {
		case f[0] == "Remv":
			c.Kind, c.New = "remove", ""
		case c.Old == "":
			c.Kind = "install"
		case pkgver.Compare(c.Old, c.New) > 0:
			c.Kind = "downgrade"
		default:
			c.Kind = "upgrade"
		}
		changes = append(changes, c)
	}
	return changes
}

// Stage implements snapshot.Engine.
func (e *Engine) Stage(ctx context.Context, opt snapshot.StageOptions) (res *snapshot.StageResult, err error) {
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	e.step(StepRecover)
	list, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	if list, err = e.recover(ctx, list); err != nil {
		return nil, err
	}
	booted, err := e.booted(list)
	if err != nil {
		return nil, err
	}

	e.step(StepCheck)
	planned, err := e.Check(ctx)
	if err != nil {
		return nil, err
	}
	if len(planned) == 0 {
		return nil, fmt.Errorf("%w: no updates available", errkind.NothingToDo)
	}

	e.step(StepInhibit)
	if e.c.Inhibitor != nil {
		release, err := e.c.Inhibitor.Inhibit(ctx, "Staging an OS update into a new snapshot")
		if err != nil {
			return nil, fmt.Errorf("inhibit shutdown: %w", err)
		}
		defer release()
	}

	n := 1
	for _, s := range list {
		n = max(n, s.Number+1)
	}
	dir := e.dir(n)
	defer func() {
		if err != nil {
			// Leave everything as it was; the error already says what failed.
			if derr := e.btrfs().deleteTree(context.WithoutCancel(ctx), dir); derr != nil {
				err = fmt.Errorf("%w (and removing snapshot %d failed: %v)", err, n, derr)
			}
		}
	}()

	e.step(StepSnapshot)
	desc := opt.Description
	if desc == "" {
		desc = "speedia update"
	}
	in := &info{Type: "single", Num: n, Date: e.c.Now().UTC().Format(snapperDate), Description: desc}
	in.set("important", "yes") // snapper's number cleanup spares it
	in.set("speedia.state", string(snapshot.StateStaging))
	in.set("speedia.parent", strconv.Itoa(booted.Number))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", n, err)
	}
	if err := writeInfo(filepath.Join(dir, "info.xml"), in); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", n, err)
	}
	root := e.rootOf(n)
	if err := e.fork(ctx, booted.Number, dir); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", n, err)
	}

	e.step(StepUpdate)
	logPath, err := e.update(ctx, n, root, opt.Log)
	if err != nil {
		return nil, err
	}

	e.step(StepDiff)
	before, err := readPackages(e.rootOf(booted.Number))
	if err != nil {
		return nil, fmt.Errorf("read packages of snapshot %d: %w", booted.Number, err)
	}
	after, err := readPackages(root)
	if err != nil {
		return nil, fmt.Errorf("read packages of snapshot %d: %w", n, err)
	}
	changes := pkgver.Diff(before, after)
	if len(changes) == 0 {
		return nil, fmt.Errorf("%w: no updates available", errkind.NothingToDo)
	}
	kBefore, err := kernelFingerprint(e.rootOf(booted.Number))
	if err != nil {
		return nil, err
	}
	kAfter, err := kernelFingerprint(root)
	if err != nil {
		return nil, err
	}
	kernelChanged := !sameFingerprint(kBefore, kAfter)

	e.step(StepSeal)
	if err := e.btrfs().snapshot(ctx, filepath.Join(root, "etc"), filepath.Join(dir, "etc-staged"), true); err != nil {
		return nil, fmt.Errorf("seal snapshot %d: %w", n, err)
	}
	if err := e.btrfs().setReadOnly(ctx, root, true); err != nil {
		return nil, fmt.Errorf("seal snapshot %d: %w", n, err)
	}

	e.step(StepMetadata)
	if err := writeMeta(filepath.Join(dir, "changes.json"), &meta{Changes: changes, KernelChanged: kernelChanged, Kernels: kernelVersions(root)}); err != nil {
		return nil, fmt.Errorf("metadata of snapshot %d: %w", n, err)
	}
	in.set("speedia.state", string(snapshot.StateReady))
	in.set("speedia.kernel-changed", strconv.FormatBool(kernelChanged))
	if err := writeInfo(filepath.Join(dir, "info.xml"), in); err != nil {
		return nil, fmt.Errorf("metadata of snapshot %d: %w", n, err)
	}

	e.step(StepSync)
	if err := e.btrfs().sync(ctx, e.c.Snapshots); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}

	e.step(StepDefault)
	if err := e.setNext(ctx, n); err != nil {
		return nil, err
	}
	e.step(StepDone)

	s := toSnapshot(n, in, &meta{Changes: changes, KernelChanged: kernelChanged})
	s.Default = true
	return &snapshot.StageResult{Snapshot: s, Changes: changes, KernelChanged: kernelChanged, RebootNeeded: true, Log: logPath}, nil
}

// fork makes dir/snapshot a writable copy of the booted root, with /etc taken
// from the live /etc (the admin's edits so far) and kept as etc-origin, the
// base for carrying later edits over.
func (e *Engine) fork(ctx context.Context, from int, dir string) error {
	b := e.btrfs()
	if err := b.snapshot(ctx, filepath.Join(e.c.Root, "etc"), filepath.Join(dir, "etc-origin"), true); err != nil {
		return err
	}
	root := filepath.Join(dir, "snapshot")
	if err := b.snapshot(ctx, e.rootOf(from), root, false); err != nil {
		return err
	}
	// A snapshot does not descend into the nested /etc subvolume: it shows up
	// as an empty directory, replaced here by a writable copy of etc-origin.
	if err := os.Remove(filepath.Join(root, "etc")); err != nil {
		return err
	}
	return b.snapshot(ctx, filepath.Join(dir, "etc-origin"), filepath.Join(root, "etc"), false)
}

// chrootScript mounts what apt and maintainer scripts need and enters the
// root. It runs under unshare, in a private mount namespace: the mounts vanish
// with the process, even when it is killed.
const chrootScript = `root=$1; shift
mount --bind "$root" "$root"
for d in dev proc sys; do mount --rbind "/$d" "$root/$d"; mount --make-rslave "$root/$d"; done
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount --bind /var "$root/var"
exec chroot "$root" "$@"`

// ChrootCmd runs argv inside root the way staging runs apt: private mount
// namespace, /dev /proc /sys /var from the running system, fresh /run and
// /tmp, and apt's non-interactive environment. root is bind-mounted onto
// itself first, so / is a mount point inside: tools that look / up in
// /proc/mounts (initramfs-tools with MODULES=dep) find its device.
func ChrootCmd(root string, argv ...string) run.Cmd {
	args := append([]string{"--mount", "--propagation", "private", "--", "sh", "-ec", chrootScript, "speedia-chroot", root}, argv...)
	return run.Cmd{Name: "unshare", Args: args, Env: aptEnv}
}

// AptUpgrade is the package update staging runs inside the new snapshot.
func AptUpgrade() []string { return append([]string(nil), aptUpgrade...) }

// policyRC keeps maintainer scripts from starting services inside the snapshot.
const policyRC = "#!/bin/sh\n# speedia: no service starts while staging into a snapshot\nexit 101\n"

func (e *Engine) update(ctx context.Context, n int, root string, extra io.Writer) (string, error) {
	if err := os.MkdirAll(e.c.LogDir, 0o755); err != nil {
		return "", fmt.Errorf("log dir: %w", err)
	}
	logPath := filepath.Join(e.c.LogDir, fmt.Sprintf("stage-%d.log", n))
	logf, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("log: %w", err)
	}
	defer logf.Close()
	var w io.Writer = logf
	if extra != nil {
		w = io.MultiWriter(logf, extra)
	}
	policy := filepath.Join(root, "usr/sbin/policy-rc.d")
	if err := os.WriteFile(policy, []byte(policyRC), 0o755); err != nil {
		return logPath, fmt.Errorf("update snapshot %d: %w", n, err)
	}
	var out bytes.Buffer
	cmd := ChrootCmd(root, aptUpgrade...)
	cmd.Log = io.MultiWriter(w, &out)
	_, err = e.c.Runner.Run(ctx, cmd)
	if rerr := os.Remove(policy); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return logPath, fmt.Errorf("update in snapshot %d failed: %s (full log: %s): %w", n, firstError(out.String()), logPath, err)
	}
	return logPath, nil
}

// firstError picks the line that explains a failed apt run: dpkg's and apt's
// own error lines come first, else the last line.
func firstError(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "dpkg: error") || strings.HasPrefix(l, "E: ") {
			return strings.TrimSpace(l)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "fails") || strings.Contains(l, "error") {
			return strings.TrimSpace(l)
		}
	}
	return run.LastLines(log, 1)
}

func (e *Engine) setNext(ctx context.Context, n int) error {
	if err := e.btrfs().setDefault(ctx, e.rootOf(n)); err != nil {
		return fmt.Errorf("make snapshot %d the next boot: %w", n, err)
	}
	if e.c.Loader != nil {
		if err := e.c.Loader.SetNext(ctx, n, e.rootOf(n)); err != nil {
			return fmt.Errorf("boot entry for snapshot %d: %w", n, err)
		}
	}
	return nil
}

// SyncEtc carries the admin's /etc edits made since staging into the pending
// snapshot. Run it right before rebooting into that snapshot; it is a no-op
// when nothing is pending. Where a package changed the same file, the admin's
// version stays in place and the package's is kept as NAME.speedia-dist.
func (e *Engine) SyncEtc(ctx context.Context) (etcmerge.Report, error) {
	unlock, err := e.lock()
	if err != nil {
		return etcmerge.Report{}, err
	}
	defer unlock()
	list, err := e.List(ctx)
	if err != nil {
		return etcmerge.Report{}, err
	}
	booted, err := e.booted(list)
	if err != nil {
		return etcmerge.Report{}, err
	}
	for _, s := range list {
		if s.Pending() && s.State == snapshot.StateReady && s.Parent == booted.Number {
			dir := e.dir(s.Number)
			return etcmerge.Merge(filepath.Join(dir, "etc-origin"), filepath.Join(e.c.Root, "etc"), filepath.Join(dir, "snapshot", "etc"),
				etcmerge.Policy{SourceWins: true, Suffix: ".speedia-dist"})
		}
	}
	return etcmerge.Report{}, nil
}

// Rollback implements snapshot.Engine. Admin edits made in /etc under the
// booted snapshot are carried to the target where it has the same file as
// when they forked; where it differs, the target keeps its own and the
// admin's version is kept beside as NAME.speedia-rollback.
func (e *Engine) Rollback(ctx context.Context, n int) (*snapshot.Snapshot, error) {
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	list, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	booted, err := e.booted(list)
	if err != nil {
		return nil, err
	}
	var target snapshot.Snapshot
	if n == 0 {
		var ok bool
		if target, ok = snapshot.Previous(list, booted.Number); !ok {
			return nil, fmt.Errorf("rollback: no snapshot before the booted %d: %w", booted.Number, errkind.NotFound)
		}
	} else {
		var ok bool
		if target, ok = snapshot.Find(list, n); !ok {
			return nil, fmt.Errorf("rollback to %d: %w", n, errkind.NotFound)
		}
	}
	if target.State != snapshot.StateReady {
		return nil, fmt.Errorf("rollback to %d: it is %s, not a complete snapshot made by Speedia: %w", target.Number, target.State, errkind.Refused)
	}

	e.step(StepEtc)
	if target.Number != booted.Number {
		base := filepath.Join(e.dir(booted.Number), "etc-staged")
		if exists(base) {
			if _, err := etcmerge.Merge(base, filepath.Join(e.c.Root, "etc"), filepath.Join(e.rootOf(target.Number), "etc"),
				etcmerge.Policy{Suffix: ".speedia-rollback"}); err != nil {
				return nil, fmt.Errorf("rollback to %d: carry /etc edits: %w", target.Number, err)
			}
		}
	}
	e.step(StepSync)
	if err := e.btrfs().sync(ctx, e.c.Snapshots); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	e.step(StepDefault)
	if err := e.setNext(ctx, target.Number); err != nil {
		return nil, err
	}
	target.Default = true
	return &target, nil
}

// MarkGood implements snapshot.Engine.
func (e *Engine) MarkGood(ctx context.Context, n int) error {
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(e.dir(n), "info.xml")
	in, err := readInfo(path)
	if err != nil {
		return fmt.Errorf("mark %d good: %w", n, errors.Join(errkind.NotFound, err))
	}
	if in.get("speedia.state") != string(snapshot.StateReady) {
		return fmt.Errorf("mark %d good: not a complete snapshot: %w", n, errkind.Refused)
	}
	in.set("speedia.good", "yes")
	if err := writeInfo(path, in); err != nil {
		return fmt.Errorf("mark %d good: %w", n, err)
	}
	if e.c.Loader != nil {
		if err := e.c.Loader.Bless(ctx, n); err != nil {
			return fmt.Errorf("mark %d good: %w", n, err)
		}
	}
	return nil
}

// Cleanup implements snapshot.Engine.
func (e *Engine) Cleanup(ctx context.Context, keep int) ([]int, error) {
	unlock, err := e.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	list, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []int
	for _, s := range list {
		if s.State == snapshot.StateStaging && !s.Booted && !s.Default {
			deleted = append(deleted, s.Number)
		}
	}
	if list, err = e.recover(ctx, list); err != nil {
		return deleted, err
	}
	good, _ := snapshot.LastGood(list)
	kept := 0
	for i := len(list) - 1; i >= 0; i-- {
		s := list[i]
		if s.State != snapshot.StateReady {
			continue // foreign snapshots belong to whoever made them
		}
		if s.Booted || s.Default || s.Number == good.Number {
			kept++
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		if err := e.btrfs().deleteTree(ctx, e.dir(s.Number)); err != nil {
			return deleted, fmt.Errorf("delete snapshot %d: %w", s.Number, err)
		}
		if e.c.Loader != nil {
			if err := e.c.Loader.Remove(ctx, s.Number); err != nil {
				return deleted, fmt.Errorf("boot entry of snapshot %d: %w", s.Number, err)
			}
		}
		deleted = append(deleted, s.Number)
	}
	sort.Ints(deleted)
	return deleted, nil
}
