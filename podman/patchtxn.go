package podman

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/api/handlers"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	dockerContainer "github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/speedia/host/podman/patch"
	"github.com/speedia/host/updater/atomicfile"
	"github.com/speedia/host/updater/errkind"
)

// PatchOptions says how one container is patched.
type PatchOptions struct {
	// Driver is the container's package manager (see patch.Find).
	Driver patch.Driver
	// SecurityOnly upgrades only security fixes.
	SecurityOnly bool
	// DryRun lists what would be upgraded and changes nothing.
	DryRun bool
	// LockTimeout bounds the wait for a package lock held inside.
	LockTimeout time.Duration
	// Check is the admin's health check for the container after the
	// patch (nil: none); an error rolls the patch back.
	Check func(ctx context.Context, name string) error
	// Keep is how many rollback points are kept per container (0: 3).
	Keep int
	// BeforeStep, when set, runs before each step and may fail it (fault
	// injection for tests, as the host engine's Stage has).
	BeforeStep func(step string) error
}

// Steps of a patch, in order; the record's Step is the last one begun.
const (
	StepPoint    = "rollback-point" // pause, commit the writable layer, snapshot the data
	StepUpgrade  = "upgrade"        // the package manager runs inside
	StepRestart  = "restart"        // restart and wait until ready
	StepCheck    = "check"          // the admin's check
	StepDone     = "done"
	StepRestore  = "restore" // putting the rollback point back
	StepRestored = "restored"
)

// PatchRecord is one patch of one container: its rollback point (the
// committed writable layer and the data snapshot), what it changed, and how
// it ended. It is saved before each step, so a helper killed in the middle
// finds it (RecoverPatches).
type PatchRecord struct {
	Name    string         `json:"name"`
	At      time.Time      `json:"at"`
	Step    string         `json:"step"`
	SetID   string         `json:"set_id"` // the package set (see SetID)
	Updates []patch.Update `json:"updates"`
	Image   string         `json:"image"` // the rollback point's committed image
	Data    DataSnapshot   `json:"data"`
	Aside   *DataSnapshot  `json:"aside,omitempty"`  // data written after the snapshot, kept on restore
	Failed  string         `json:"failed,omitempty"` // the patched container's layer, kept as an image after a restore
	Error   string         `json:"error,omitempty"`
	// Restored is the container a restore created from the rollback point.
	Restored string                       `json:"restored,omitempty"`
	Old      *define.InspectContainerData `json:"old"`
	OldDefs  imageDefaults                `json:"old_image_defaults"`
}

// SetID names a package set for one container: the same upgrades get the
// same ID, so a set that failed is not tried again until a newer version
// appears.
func SetID(name string, us []patch.Update) string {
	lines := []string{name}
	for _, u := range us {
		lines = append(lines, u.Name+" "+u.Old+" "+u.New)
	}
	sort.Strings(lines[1:])
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:6])
}

func (m *Manager) patchDir(name string) string {
	return filepath.Join(m.dir(), "patches", strings.ToLower(name))
}

// Patch upgrades the packages inside the running container name with a
// rollback point first. A failed upgrade, a container that is not ready in
// time or a failed check restores the rollback point (same name and
// configuration, data as it was, what was written since kept aside) and
// marks the package set bad for the container.
func (m *Manager) Patch(ctx context.Context, name string, opt PatchOptions) (rec *PatchRecord, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		rec, err = m.patch(ctx, conn, name, opt)
		return err
	})
	return rec, err
}

func (m *Manager) patch(ctx, conn context.Context, name string, opt PatchOptions) (*PatchRecord, error) {
	old, err := containers.Inspect(conn, name, new(containers.InspectOptions).WithSize(true))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, explain(err))
	}
	name = old.Name
	switch {
	case old.IsInfra:
		return nil, fmt.Errorf("%w: %s is a pod's infra container", errkind.Refused, name)
	case old.State == nil || !old.State.Running:
		return nil, fmt.Errorf("%w: %s is not running; start it to patch it", errkind.Refused, name)
	case old.HostConfig != nil && old.HostConfig.ReadonlyRootfs:
		return nil, fmt.Errorf("%w: %s has a read-only root filesystem: not patchable (rebuild its image instead)", errkind.Refused, name)
	case labels(old)[LabelSystemdUnit] != "":
		return nil, fmt.Errorf("%w: %s is managed by systemd unit %s; patching restarts it behind systemd's back", errkind.Refused, name, labels(old)[LabelSystemdUnit])
	case opt.Driver == nil:
		return nil, fmt.Errorf("%w: %s has no known package manager: not patchable", errkind.Refused, name)
	}
	run := execIn(conn, old.ID)
	pending, err := opt.Driver.Pending(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("listing updates in %s: %w", name, err)
	}
	if opt.SecurityOnly {
		pending = slices.DeleteFunc(pending, func(u patch.Update) bool { return !u.Security })
	}
	if len(pending) == 0 {
		return nil, fmt.Errorf("%w: no updates for %s", errkind.NothingToDo, name)
	}
	now := time.Now()
	rec := &PatchRecord{Name: name, At: now.UTC(), SetID: SetID(name, pending), Updates: pending, Old: old}
	if bad, _ := m.isBadSet(name, rec.SetID); bad {
		return rec, fmt.Errorf("%w: %s: this package set (%s) failed before; it is tried again when a newer version appears", errkind.Bad, name, rec.SetID)
	}
	if opt.DryRun {
		return rec, nil
	}
	data, err := dataOf(conn, old)
	if err != nil {
		return nil, err
	}
	if err := m.roomForPoint(old, data); err != nil {
		return nil, err
	}
	if img, err := images.GetImage(conn, old.Image, nil); err == nil {
		rec.OldDefs = defaultsOf(img)
	}
	step := func(s string) error {
		rec.Step = s
		if err := m.savePatch(rec); err != nil {
			return fmt.Errorf("saving the patch record: %w", err)
		}
		if opt.BeforeStep != nil {
			return opt.BeforeStep(s)
		}
		return nil
	}

	// The rollback point: the container is paused while its layer is
	// committed and its data snapshotted, so both are of one moment.
	if err := step(StepPoint); err != nil {
		m.dropPoint(ctx, conn, rec)
		return nil, err
	}
	if err := m.takePoint(ctx, conn, rec, data); err != nil {
		m.dropPoint(ctx, conn, rec)
		return nil, fmt.Errorf("the rollback point of %s (nothing changed): %w", name, err)
	}
	fail := func(cause error) (*PatchRecord, error) {
		return rec, m.restorePatch(ctx, conn, rec, cause, true)
	}
	if err := step(StepUpgrade); err != nil {
		return fail(err)
	}
	names := make([]string, 0, len(pending))
	for _, u := range pending {
		names = append(names, u.Name)
	}
	if err := opt.Driver.Upgrade(ctx, run, patch.UpgradeOptions{Packages: names, SecurityOnly: opt.SecurityOnly, LockTimeout: opt.LockTimeout}); err != nil {
		if errors.Is(err, patch.ErrLocked) {
			// The package manager never started: nothing changed, so the
			// container keeps running and the point is dropped.
			m.dropPoint(ctx, conn, rec)
			return rec, fmt.Errorf("%w: upgrading %s (nothing changed; try again later): %w", errkind.Busy, name, err)
		}
		return fail(fmt.Errorf("upgrading %s: %w", name, err))
	}
	if err := step(StepRestart); err != nil {
		return fail(err)
	}
	if err := containers.Restart(conn, old.ID, new(containers.RestartOptions).WithTimeout(stopTimeout(old))); err != nil {
		return fail(fmt.Errorf("restarting %s: %w", name, explain(err)))
	}
	if err := m.waitReady(ctx, conn, old.ID); err != nil {
		return fail(fmt.Errorf("%s after the patch: %w", name, err))
	}
	if err := step(StepCheck); err != nil {
		return fail(err)
	}
	if opt.Check != nil {
		if err := opt.Check(ctx, name); err != nil {
			return fail(fmt.Errorf("the health check of %s after the patch: %w", name, err))
		}
	}
	if err := step(StepDone); err != nil {
		return rec, err
	}
	m.prunePoints(ctx, conn, name, opt.Keep)
	m.log().Info("container patched", "container", name, "updates", len(pending), "rollback_point", rec.Image)
	return rec, nil
}

func stopTimeout(d *define.InspectContainerData) int {
	if d.Config != nil && d.Config.StopTimeout > 0 {
		return int(d.Config.StopTimeout)
	}
	return 10
}

// waitReady waits until the container with this ID is ready, by the same
// rules as after a reboot.
func (m *Manager) waitReady(ctx, conn context.Context, id string) error {
	d, err := inspectSettled(ctx, conn, id)
	if err != nil {
		return explain(err)
	}
	cs, _ := describe([]*define.InspectContainerData{d})
	c := cs[0]
	c.Name = id
	return m.waitHealthy(ctx, conn, c)
}

// roomForPoint refuses a patch before anything changes when the rollback
// point would not fit: the committed layer in Podman's storage, and the
// data copies (free on btrfs, a tar archive elsewhere) in the helper's dir.
func (m *Manager) roomForPoint(d *define.InspectContainerData, data []Data) error {
	need := map[string]int64{}
	if d.SizeRw != nil && *d.SizeRw > 0 {
		need[storageDir(d)] += *d.SizeRw
	}
	for _, it := range data {
		if isSubvolume(it.Path) || (isBtrfs(it.Path) && isBtrfs(m.dir())) {
			continue // a snapshot or reflinks cost no data
		}
		need[m.dir()] += duBytes(it.Path)
	}
	for dir, n := range need {
		if free := freeBytes(dir); free >= 0 && free < n+n/10 {
			return fmt.Errorf("%w: the rollback point of %s needs %s in %s, which has %s free; free some space and try again",
				errkind.Refused, d.Name, mib(n+n/10), dir, mib(free))
		}
	}
	return nil
}

func storageDir(d *define.InspectContainerData) string {
	if d.GraphDriver != nil {
		if up := d.GraphDriver.Data["UpperDir"]; up != "" {
			return filepath.Dir(up)
		}
	}
	return "/var/lib/containers/storage"
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func freeBytes(dir string) int64 {
	for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil {
			return int64(st.Bavail) * st.Bsize
		}
	}
	return -1
}

func duBytes(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// takePoint pauses the container, commits its writable layer to a local
// image, snapshots its data and lets it run again.
func (m *Manager) takePoint(ctx, conn context.Context, rec *PatchRecord, data []Data) (err error) {
	if err := containers.Pause(conn, rec.Old.ID, nil); err != nil {
		return fmt.Errorf("pause: %w", explain(err))
	}
	defer func() {
		if uerr := containers.Unpause(conn, rec.Old.ID, nil); uerr != nil && err == nil {
			err = fmt.Errorf("unpause: %w", explain(uerr))
		}
	}()
	stamp := stamp(rec.At)
	repo, tag := "localhost/speedia-patch-"+strings.ToLower(rec.Name), stamp
	if _, err := containers.Commit(conn, rec.Old.ID, new(containers.CommitOptions).WithRepo(repo).WithTag(tag).
		WithPause(false)); err != nil {
		return fmt.Errorf("commit: %w", explain(err))
	}
	rec.Image = repo + ":" + tag
	if err := m.savePatch(rec); err != nil {
		return err
	}
	rec.Data, err = snapshotData(ctx, filepath.Join(m.patchDir(rec.Name), stamp+"-data"), data)
	if err != nil {
		return fmt.Errorf("data snapshot: %w", err)
	}
	return m.savePatch(rec)
}

// dropPoint removes a rollback point that was never used and its record.
func (m *Manager) dropPoint(ctx, conn context.Context, rec *PatchRecord) {
	if rec.Image != "" {
		if _, errs := images.Remove(conn, []string{rec.Image}, nil); len(errs) > 0 {
			m.log().Warn("removing the unused rollback image", "image", rec.Image, "err", errors.Join(errs...))
		}
	}
	if rec.Data.Dir != "" {
		if err := rec.Data.Remove(ctx); err != nil {
			m.log().Warn("removing the unused data snapshot", "dir", rec.Data.Dir, "err", err)
		}
	}
	_ = os.Remove(m.patchPath(rec))
}

// restorePatch puts the rollback point back: the patched container is
// stopped and kept aside (renamed, so nothing it holds is lost), the data
// written since the snapshot is saved aside, the data snapshot restored,
// and a container with the same name and configuration made from the
// committed image runs again. markBad remembers the package set.
func (m *Manager) restorePatch(ctx, conn context.Context, rec *PatchRecord, cause error, markBad bool) error {
	rec.Error = cause.Error()
	rec.Step = StepRestore
	_ = m.savePatch(rec)
	m.log().Warn("patch failed; restoring the rollback point", "container", rec.Name, "err", cause)
	if err := m.restorePoint(ctx, conn, rec); err != nil {
		_ = m.savePatch(rec)
		return fmt.Errorf("%w; restoring the rollback point FAILED: %w (the rollback image %s and data snapshot %s are kept)", cause, err, rec.Image, rec.Data.Dir)
	}
	if markBad {
		if err := m.markBadSet(rec); err != nil {
			m.log().Error("remembering the failed package set", "container", rec.Name, "err", err)
		}
	}
	rec.Step = StepRestored
	_ = m.savePatch(rec)
	msg := fmt.Sprintf("%v; restored the rollback point of %s", cause, rec.Name)
	if rec.Aside != nil && len(rec.Aside.Items) > 0 {
		msg += fmt.Sprintf(" (data written since is kept in %s)", rec.Aside.Dir)
	}
	if rec.Failed != "" {
		msg += fmt.Sprintf("; the patched container's layer is kept as image %s", rec.Failed)
	}
	return errors.New(msg)
}

func (m *Manager) restorePoint(ctx, conn context.Context, rec *PatchRecord) error {
	old := rec.Old
	// The container that has the name now: the patched one, or a later
	// one (a restore of a later patch), or none (removed under us).
	cur, err := containers.Inspect(conn, rec.Name, nil)
	switch {
	case isNotFound(err):
		cur = nil
	case err != nil:
		return explain(err)
	}
	if cur != nil && cur.ID == rec.Restored {
		// A restore interrupted after it created the container: start that one.
		return m.startAndWait(ctx, conn, cur.ID)
	}
	if cur != nil {
		if err := stop(conn, cur.ID, old.Config.StopTimeout); err != nil {
			return fmt.Errorf("stopping the patched container: %w", err)
		}
		if rec.Aside == nil {
			items, err := dataOf(conn, old)
			if err != nil {
				return err
			}
			aside, err := snapshotData(ctx, filepath.Join(m.patchDir(rec.Name), stamp(time.Now())+"-after"), items)
			if err != nil {
				return fmt.Errorf("keeping aside the data written since the snapshot: %w", err)
			}
			rec.Aside = &aside
			_ = m.savePatch(rec)
		}
		// The patched container's layer is kept as an image, nothing of it
		// lost, and the container goes: a stopped container would keep its
		// published ports' forwarding when it exited on its own, and could
		// start at boot next to the restored one.
		if rec.Failed == "" {
			rec.Failed = "localhost/speedia-failed-" + strings.ToLower(rec.Name) + ":" + stamp(rec.At)
			repo, tag, _ := strings.Cut(rec.Failed, ":")
			if _, err := containers.Commit(conn, cur.ID, new(containers.CommitOptions).WithRepo(repo).WithTag(tag).WithPause(false)); err != nil {
				rec.Failed = ""
				return fmt.Errorf("keeping the patched container's layer as an image: %w", explain(err))
			}
			_ = m.savePatch(rec)
		}
		if err := remove(conn, cur.ID); err != nil {
			return fmt.Errorf("removing the patched container (its layer is kept as %s): %w", rec.Failed, err)
		}
	}
	if err := rec.Data.Restore(ctx); err != nil {
		return fmt.Errorf("restoring the data: %w", err)
	}
	spec, _, err := specFor(old, rec.OldDefs, rec.Image)
	if err != nil {
		return err
	}
	created, err := containers.CreateWithSpec(conn, spec, nil)
	if err != nil {
		return fmt.Errorf("creating the container from the rollback point: %w", explain(err))
	}
	rec.Restored = created.ID
	_ = m.savePatch(rec)
	return m.startAndWait(ctx, conn, created.ID)
}

// RecoverPatches finishes what a helper killed during a patch left: before
// the rollback point is complete, the container was never changed and the
// partial point is dropped; after it, the rollback point is put back.
func (m *Manager) RecoverPatches(ctx context.Context) (done []string, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		recs, err := m.PatchRecords("")
		if err != nil {
			return err
		}
		var errs []error
		for _, rec := range recs {
			switch rec.Step {
			case StepDone, StepRestored:
				continue
			case StepPoint:
				_ = containers.Unpause(conn, rec.Old.ID, nil)
				m.dropPoint(ctx, conn, rec)
			default:
				if rec.Image == "" || rec.Data.Dir == "" {
					m.dropPoint(ctx, conn, rec)
					break
				}
				cause := fmt.Errorf("the patch of %s was interrupted at step %s", rec.Name, rec.Step)
				if err := m.restorePatch(ctx, conn, rec, cause, false); err != nil && rec.Step != StepRestored {
					errs = append(errs, err)
				}
			}
			done = append(done, rec.Name)
		}
		return errors.Join(errs...)
	})
	return done, err
}

// PatchRecords lists the patch records of name ("" = every container),
// oldest first.
func (m *Manager) PatchRecords(name string) ([]*PatchRecord, error) {
	pattern := filepath.Join(m.dir(), "patches", "*", "*.json")
	if name != "" {
		pattern = filepath.Join(m.patchDir(name), "*.json")
	}
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*PatchRecord
	for _, p := range paths {
		if filepath.Base(p) == "bad.json" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r PatchRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

func (m *Manager) patchPath(rec *PatchRecord) string {
	return filepath.Join(m.patchDir(rec.Name), stamp(rec.At)+".json")
}

func (m *Manager) savePatch(rec *PatchRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.patchDir(rec.Name), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(m.patchPath(rec), append(b, '\n'), 0o600)
}

// prunePoints keeps the newest keep finished rollback points of name.
func (m *Manager) prunePoints(ctx, conn context.Context, name string, keep int) {
	if keep <= 0 {
		keep = 3
	}
	recs, err := m.PatchRecords(name)
	if err != nil {
		m.log().Warn("listing rollback points", "container", name, "err", err)
		return
	}
	var done []*PatchRecord
	for _, r := range recs {
		if r.Step == StepDone {
			done = append(done, r)
		}
	}
	for len(done) > keep {
		m.dropPoint(ctx, conn, done[0])
		done = done[1:]
	}
}

// The bad package sets of a container, in bad.json beside its records.
func (m *Manager) badPath(name string) string { return filepath.Join(m.patchDir(name), "bad.json") }

func (m *Manager) badSets(name string) ([]string, error) {
	b, err := os.ReadFile(m.badPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	return ids, json.Unmarshal(b, &ids)
}

func (m *Manager) isBadSet(name, id string) (bool, error) {
	ids, err := m.badSets(name)
	return slices.Contains(ids, id), err
}

func (m *Manager) markBadSet(rec *PatchRecord) error {
	ids, err := m.badSets(rec.Name)
	if err != nil || slices.Contains(ids, rec.SetID) {
		return err
	}
	b, _ := json.Marshal(append(ids, rec.SetID))
	if err := os.MkdirAll(m.patchDir(rec.Name), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(m.badPath(rec.Name), b, 0o600)
}

// execIn runs commands inside the container with this ID, as root.
func execIn(conn context.Context, id string) patch.Exec {
	return func(ctx context.Context, argv, env []string) ([]byte, []byte, int, error) {
		cfg := &handlers.ExecCreateConfig{ExecOptions: dockerContainer.ExecOptions{
			Cmd: argv, Env: env, User: "root", AttachStdout: true, AttachStderr: true,
		}}
		sid, err := containers.ExecCreate(conn, id, cfg)
		if err != nil {
			return nil, nil, -1, fmt.Errorf("exec %s: %w", argv[0], explain(err))
		}
		defer func() { _ = containers.ExecRemove(conn, sid, new(containers.ExecRemoveOptions).WithForce(true)) }()
		var stdout, stderr bytes.Buffer
		var o, e io.Writer = &stdout, &stderr
		opts := new(containers.ExecStartAndAttachOptions).WithOutputStream(o).WithErrorStream(e).
			WithAttachOutput(true).WithAttachError(true)
		done := make(chan error, 1)
		go func() { done <- containers.ExecStartAndAttach(conn, sid, opts) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			return stdout.Bytes(), stderr.Bytes(), -1, ctx.Err()
		}
		if err != nil {
			return stdout.Bytes(), stderr.Bytes(), -1, fmt.Errorf("exec %s: %w", argv[0], explain(err))
		}
		in, err := containers.ExecInspect(conn, sid, nil)
		if err != nil {
			return stdout.Bytes(), stderr.Bytes(), -1, fmt.Errorf("exec %s: %w", argv[0], explain(err))
		}
		return stdout.Bytes(), stderr.Bytes(), in.ExitCode, nil
	}
}

// ErrOlder says that the container's last patch is older than its kept
// hard upgrade (or there is none): a rollback undoes the upgrade.
var ErrOlder = errors.New("no patch newer than the kept upgrade")

// RollbackPatch undoes the last finished patch of name, the way a failed
// patch is undone: the data written since is kept aside, the rollback point
// runs again with its data, and the package set is marked bad so that it is
// not applied again. With upgradeFirst, a kept hard upgrade newer than that
// patch wins: ErrOlder.
func (m *Manager) RollbackPatch(ctx context.Context, name string, upgradeFirst bool) (rec *PatchRecord, err error) {
	recs, err := m.PatchRecords(name)
	if err != nil {
		return nil, err
	}
	for i := len(recs) - 1; i >= 0 && rec == nil; i-- {
		if recs[i].Step == StepDone {
			rec = recs[i]
		}
	}
	if upgradeFirst {
		if up, uerr := m.loadRecord(name); rec == nil || (uerr == nil && up.At.After(rec.At)) {
			return nil, ErrOlder
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("%w: no patch of %s is kept", errkind.NotFound, name)
	}
	err = m.with(ctx, func(conn context.Context) error {
		rec.Error, rec.Step = "rolled back by the admin", StepRestore
		if err := m.savePatch(rec); err != nil {
			return err
		}
		if err := m.restorePoint(ctx, conn, rec); err != nil {
			_ = m.savePatch(rec)
			return fmt.Errorf("restoring the rollback point of %s FAILED: %w (the rollback image %s and data snapshot %s are kept)", name, err, rec.Image, rec.Data.Dir)
		}
		if err := m.markBadSet(rec); err != nil {
			m.log().Error("remembering the rolled back package set", "container", name, "err", err)
		}
		rec.Step = StepRestored
		m.log().Info("patch rolled back", "container", name, "rollback_point", rec.Image)
		return m.savePatch(rec)
	})
	return rec, err
}
