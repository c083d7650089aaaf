package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/bindings/volumes"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/speedia/host/updater/atomicfile"
	"github.com/speedia/host/updater/errkind"
)

// Record is a finished upgrade. Its old container (stopped, renamed, its
// restart policy disabled) and the data snapshot taken before the upgrade
// are kept until KeepUntil, for Rollback.
type Record struct {
	Name       string    `json:"name"`
	At         time.Time `json:"at"`
	KeepUntil  time.Time `json:"keep_until"`
	OldID      string    `json:"old_id"`
	OldImage   string    `json:"old_image"`
	OldImageID string    `json:"old_image_id"`
	NewID      string    `json:"new_id"`
	NewImage   string    `json:"new_image"`
	NewImageID string    `json:"new_image_id"`
	// Kept is the stopped old container's name; empty when it is gone
	// (removed by hand) and only its definition (Old) is kept.
	Kept string `json:"kept,omitempty"`
	// KeptRestart is the old container's restart policy, disabled while
	// it is kept and given back by Rollback.
	KeptRestart KeptRestart `json:"kept_restart"`
	// Layer is what the old container wrote into its own layer: not
	// carried over, kept in the old container.
	Layer   LayerFiles                   `json:"layer"`
	KeepTag string                       `json:"keep_tag,omitempty"` // keeps the old image from being pruned
	Data    DataSnapshot                 `json:"data"`
	Notes   []string                     `json:"notes,omitempty"`
	Old     *define.InspectContainerData `json:"old"`
	OldDefs imageDefaults                `json:"old_image_defaults"`
}

func stamp(t time.Time) string { return t.UTC().Format("20060102t150405z") }

// UpgradeOptions change how Upgrade treats a container.
type UpgradeOptions struct {
	// Force upgrades a container that has files of its own in its writable
	// layer; they stay in the kept old container.
	Force bool
}

// Upgrade replaces container name with one made from image, keeping its
// configuration and data: it stops the old container, snapshots its data,
// creates and starts the new one and waits until it is healthy. If the new
// one fails, it is removed, the data is restored exactly and the old
// container runs again; the error says so. Nothing is removed before the
// replacement is proven, and the old container is kept after it.
//
// Files the container wrote into its own layer are not carried over: the
// upgrade refuses such a container unless opt.Force.
func (m *Manager) Upgrade(ctx context.Context, name, image string, opt UpgradeOptions) (rec *Record, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		rec, err = m.upgrade(ctx, conn, name, image, opt)
		return err
	})
	return rec, err
}

func (m *Manager) upgrade(ctx, conn context.Context, name, image string, opt UpgradeOptions) (*Record, error) {
	old, err := containers.Inspect(conn, name, nil)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, explain(err))
	}
	name = old.Name
	if old.IsInfra {
		return nil, fmt.Errorf("%w: %s is a pod's infra container; upgrade the pod's containers instead", errkind.Refused, name)
	}
	if unit := labels(old)[LabelSystemdUnit]; unit != "" {
		return nil, fmt.Errorf("%w: %s is managed by systemd unit %s; change the image in the unit (Image= in a quadlet file) and restart it", errkind.Refused, name, unit)
	}
	newImg, err := images.GetImage(conn, image, nil)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w (pull or load it first)", image, explain(err))
	}
	if newImg.ID == old.Image {
		return nil, fmt.Errorf("%w: %s already runs image %s", errkind.NothingToDo, name, image)
	}
	oldImg, err := images.GetImage(conn, old.Image, nil)
	if err != nil {
		return nil, fmt.Errorf("the old image of %s: %w", name, explain(err))
	}
	defs := defaultsOf(oldImg)
	spec, notes, err := specFor(old, defs, image)
	if err != nil {
		return nil, err
	}
	data, err := dataOf(conn, old)
	if err != nil {
		return nil, err
	}
	layer, err := layerFiles(conn, old)
	if err != nil {
		return nil, err
	}
	if layer.User > 0 && !opt.Force {
		return nil, layerRefusal(name, layer)
	}
	now := time.Now()
	rec := &Record{
		Name: name, At: now.UTC(), KeepUntil: now.Add(m.keep()).UTC(),
		OldID: old.ID, OldImage: old.ImageName, OldImageID: old.Image,
		NewImage: image, NewImageID: newImg.ID, Notes: notes, Old: old, OldDefs: defs, Layer: layer,
	}
	wasRunning := old.State != nil && old.State.Running
	m.log().Info("upgrading container", "container", name, "from", old.ImageName, "to", image)

	// From here on, every failure puts back what was done before it.
	if err := stop(conn, old.ID, old.Config.StopTimeout); err != nil {
		return nil, fmt.Errorf("stopping %s: %w", name, err)
	}
	back := &undo{m: m, ctx: ctx, conn: conn}
	if wasRunning {
		back.push("start the old container", func() error { return m.startAndWait(ctx, conn, name) })
	}
	rec.Data, err = snapshotData(ctx, filepath.Join(m.dir(), "snapshots", strings.ToLower(name)+"-"+stamp(now)), data)
	if err != nil {
		return nil, back.run(fmt.Errorf("snapshotting the data of %s: %w", name, err))
	}
	back.push("remove the data snapshot", func() error { return rec.Data.Remove(ctx) })
	rec.Kept = strings.ToLower(name) + "-speedia-old-" + stamp(now)
	if err := containers.Rename(conn, old.ID, new(containers.RenameOptions).WithName(rec.Kept)); err != nil {
		return nil, back.run(fmt.Errorf("renaming the old container: %w", explain(err)))
	}
	back.push("give the old container its name back", func() error {
		return containers.Rename(conn, old.ID, new(containers.RenameOptions).WithName(name))
	})
	// Kept means kept stopped: nothing may start it at boot next to its
	// replacement, whatever its restart policy.
	if rec.KeptRestart, err = disableRestart(conn, old.ID); err != nil {
		return nil, back.run(fmt.Errorf("disabling the restart policy of the old container: %w", err))
	}
	back.push("give the old container its restart policy back", func() error {
		return restoreRestart(conn, old.ID, rec.KeptRestart)
	})
	created, err := containers.CreateWithSpec(conn, spec, nil)
	if err != nil {
		return nil, back.run(fmt.Errorf("creating the new container: %w", explain(err)))
	}
	rec.NewID = created.ID
	back.push("restore the data", func() error { return rec.Data.Restore(ctx) })
	back.push("remove the new container", func() error { return remove(conn, created.ID) })
	if err := m.startAndWait(ctx, conn, created.ID); err != nil {
		return nil, back.run(fmt.Errorf("the new container did not come up: %w", err))
	}

	// Proven: keep the old container for a manual rollback, and tag its
	// image so that a prune does not take it.
	rec.KeepTag = "localhost/speedia-kept-" + strings.ToLower(name) + ":" + stamp(now)
	repo, tag, _ := strings.Cut(rec.KeepTag, ":")
	if err := images.Tag(conn, old.Image, tag, repo, nil); err != nil {
		rec.KeepTag = ""
		rec.Notes = append(rec.Notes, "could not tag the old image: "+err.Error())
	}
	prev, _ := m.loadRecord(name)
	if err := m.saveRecord(rec); err != nil {
		m.log().Error("saving the upgrade record; the old container and data stay until removed by hand", "container", name, "err", err)
	}
	if prev != nil {
		m.discard(ctx, conn, prev)
	}
	m.log().Info("container upgraded", "container", name, "image", image, "kept", rec.Kept, "keep_until", rec.KeepUntil)
	return rec, nil
}

// Rollback undoes the last upgrade of name: the old container (or one
// recreated from its definition) runs again with the data as it was before
// the upgrade. The upgraded container's current data is saved first, so a
// failed rollback puts everything back as it was.
func (m *Manager) Rollback(ctx context.Context, name string) (rec *Record, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		rec, err = m.rollback(ctx, conn, name)
		return err
	})
	return rec, err
}

func (m *Manager) rollback(ctx, conn context.Context, name string) (*Record, error) {
	rec, err := m.loadRecord(name)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	back := &undo{m: m, ctx: ctx, conn: conn}
	cur, err := containers.Inspect(conn, name, nil)
	switch {
	case isNotFound(err):
		cur = nil
	case err != nil:
		return nil, fmt.Errorf("container %s: %w", name, explain(err))
	}
	var items []Data
	for _, it := range rec.Data.Items {
		items = append(items, it.Data)
	}
	if cur != nil {
		if err := stop(conn, cur.ID, cur.Config.StopTimeout); err != nil {
			return nil, fmt.Errorf("stopping %s: %w", name, err)
		}
		if cur.State != nil && cur.State.Running {
			back.push("start the upgraded container", func() error { return m.startAndWait(ctx, conn, cur.ID) })
		}
	}
	current, err := snapshotData(ctx, filepath.Join(m.dir(), "snapshots", strings.ToLower(name)+"-rollback-"+stamp(now)), items)
	if err != nil {
		return nil, back.run(fmt.Errorf("saving the current data of %s: %w", name, err))
	}
	back.push("remove the saved current data", func() error { return current.Remove(ctx) })
	if cur != nil {
		aside := strings.ToLower(name) + "-speedia-new-" + stamp(now)
		if err := containers.Rename(conn, cur.ID, new(containers.RenameOptions).WithName(aside)); err != nil {
			return nil, back.run(fmt.Errorf("renaming the upgraded container: %w", explain(err)))
		}
		back.push("give the upgraded container its name back", func() error {
			return containers.Rename(conn, cur.ID, new(containers.RenameOptions).WithName(name))
		})
	}
	back.push("restore the current data", func() error { return current.Restore(ctx) })
	if err := rec.Data.Restore(ctx); err != nil {
		return nil, back.run(fmt.Errorf("restoring the data from before the upgrade: %w", err))
	}
	var oldID string
	if ok, _ := containers.Exists(conn, rec.OldID, nil); ok {
		oldID = rec.OldID
		if err := containers.Rename(conn, oldID, new(containers.RenameOptions).WithName(name)); err != nil {
			return nil, back.run(fmt.Errorf("renaming the old container back: %w", explain(err)))
		}
		back.push("rename the old container aside", func() error {
			return containers.Rename(conn, oldID, new(containers.RenameOptions).WithName(rec.Kept))
		})
		if err := restoreRestart(conn, oldID, rec.KeptRestart); err != nil {
			return nil, back.run(fmt.Errorf("giving the old container its restart policy back: %w", err))
		}
		back.push("disable the old container's restart policy again", func() error {
			_, err := setRestart(conn, oldID, "no", 0)
			return err
		})
	} else {
		img := rec.OldImageID
		spec, _, err := specFor(rec.Old, rec.OldDefs, img)
		if err != nil {
			return nil, back.run(err)
		}
		created, err := containers.CreateWithSpec(conn, spec, nil)
		if err != nil {
			return nil, back.run(fmt.Errorf("recreating the old container from its definition: %w", explain(err)))
		}
		oldID = created.ID
		back.push("remove the recreated container", func() error { return remove(conn, oldID) })
	}
	if err := m.startAndWait(ctx, conn, oldID); err != nil {
		return nil, back.run(fmt.Errorf("the old container did not come up: %w", err))
	}
	if cur != nil {
		if err := remove(conn, cur.ID); err != nil {
			m.log().Warn("removing the upgraded container after the rollback", "container", cur.ID, "err", err)
		}
	}
	_ = current.Remove(ctx)
	rec.Kept = "" // running again: nothing kept to discard
	m.discard(ctx, conn, rec)
	m.log().Info("container rolled back", "container", name, "image", rec.OldImage)
	return rec, nil
}

// Prune discards the kept upgrade of name at once: the stopped old
// container, the data snapshot and the image tag. The upgraded container
// is not touched.
func (m *Manager) Prune(ctx context.Context, name string) (rec *Record, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		if rec, err = m.loadRecord(name); err != nil {
			return err
		}
		if rec.Kept != "" {
			if d, err := containers.Inspect(conn, rec.OldID, nil); err == nil && d.State != nil && d.State.Running {
				return fmt.Errorf("%w: the kept container %s of %s is running; stop it first", errkind.Refused, rec.Kept, name)
			}
		}
		m.discard(ctx, conn, rec)
		return nil
	})
	return rec, err
}

// Records lists the kept upgrades, oldest first.
func (m *Manager) Records() ([]*Record, error) {
	entries, err := os.ReadDir(filepath.Join(m.dir(), "records"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, e := range entries {
		if r, err := m.readRecord(filepath.Join(m.dir(), "records", e.Name())); err == nil {
			out = append(out, r)
		} else {
			m.log().Warn("unreadable upgrade record", "file", e.Name(), "err", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Expire discards kept upgrades whose time is up and returns their names.
func (m *Manager) Expire(ctx context.Context, now time.Time) (done []string, err error) {
	recs, err := m.Records()
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	err = m.with(ctx, func(conn context.Context) error {
		for _, r := range recs {
			if r.expired(now) {
				m.discard(ctx, conn, r)
				done = append(done, r.Name)
			}
		}
		return nil
	})
	return done, err
}

// expired: the keep time has passed and the kept container holds no
// files of the customer's (a forced upgrade's layer files are only there:
// those stay until the admin prunes them).
func (r *Record) expired(now time.Time) bool {
	return now.After(r.KeepUntil) && (r.Layer.User == 0 || r.Kept == "")
}

// AutoUpgrade upgrades the running containers labelled speedia.upgrade=auto
// whose image name now points to another local image.
func (m *Manager) AutoUpgrade(ctx context.Context) (done []*Record, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		done, err = m.autoUpgrade(ctx, conn)
		return err
	})
	return done, err
}

func (m *Manager) autoUpgrade(ctx, conn context.Context) ([]*Record, error) {
	list, err := containers.List(conn, new(containers.ListOptions).WithFilters(map[string][]string{"label": {LabelUpgrade + "=auto"}}))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", explain(err))
	}
	var done []*Record
	var errs []error
	for _, c := range list {
		img, err := images.GetImage(conn, c.Image, nil)
		if err != nil || img.ID == c.ImageID {
			continue
		}
		rec, err := m.upgrade(ctx, conn, c.Names[0], c.Image, UpgradeOptions{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, rec)
	}
	return done, errors.Join(errs...)
}

// discard removes what a record keeps: the old container, the data
// snapshot, the image tag and the record.
func (m *Manager) discard(ctx, conn context.Context, r *Record) {
	if r.Kept != "" {
		if d, err := containers.Inspect(conn, r.OldID, nil); err == nil && d.Name == r.Kept && (d.State == nil || !d.State.Running) {
			if err := remove(conn, r.OldID); err != nil {
				m.log().Warn("removing the kept container", "container", r.Kept, "err", err)
			}
		}
	}
	if err := r.Data.Remove(ctx); err != nil {
		m.log().Warn("removing the data snapshot", "dir", r.Data.Dir, "err", err)
	}
	if r.KeepTag != "" {
		repo, tag, _ := strings.Cut(r.KeepTag, ":")
		if err := images.Untag(conn, r.KeepTag, tag, repo, nil); err != nil && !isNotFound(err) {
			m.log().Warn("untagging the kept image", "image", r.KeepTag, "err", err)
		}
	}
	if cur, err := m.loadRecord(r.Name); err == nil && cur.At.Equal(r.At) {
		_ = os.Remove(m.recordPath(r.Name))
	}
}

func (m *Manager) recordPath(name string) string {
	return filepath.Join(m.dir(), "records", strings.ToLower(name)+".json")
}

func (m *Manager) saveRecord(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(m.recordPath(r.Name)), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(m.recordPath(r.Name), b, 0o600)
}

func (m *Manager) loadRecord(name string) (*Record, error) {
	r, err := m.readRecord(m.recordPath(name))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w: no upgrade of %s is kept (upgrades are kept for %s)", errkind.NotFound, name, m.keep())
	}
	return r, err
}

func (m *Manager) readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// undo is a stack of compensating steps, run newest first.
type undo struct {
	m     *Manager
	ctx   context.Context
	conn  context.Context
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func() error
}

func (u *undo) push(what string, fn func() error) { u.steps = append(u.steps, undoStep{what, fn}) }

// run undoes everything and returns cause, with any step that failed.
func (u *undo) run(cause error) error {
	var failed []string
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if err := s.fn(); err != nil {
			u.m.log().Error("undo step failed", "step", s.what, "err", err)
			failed = append(failed, fmt.Sprintf("%s: %v", s.what, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w; putting things back FAILED (%s): check podman ps -a", cause, strings.Join(failed, "; "))
	}
	return fmt.Errorf("%w; rolled back: everything is as it was", cause)
}

func stop(conn context.Context, id string, timeout uint) error {
	opts := new(containers.StopOptions).WithIgnore(true)
	if timeout > 0 {
		opts.WithTimeout(timeout)
	}
	return explain(containers.Stop(conn, id, opts))
}

func remove(conn context.Context, id string) error {
	_, err := containers.Remove(conn, id, new(containers.RemoveOptions).WithForce(true).WithTimeout(5))
	if isNotFound(err) {
		return nil
	}
	return explain(err)
}

// startAndWait starts a container and waits until it is healthy.
func (m *Manager) startAndWait(ctx, conn context.Context, id string) error {
	// A container that just failed to start may keep its published port
	// bound in the Podman service for a few seconds; the container put
	// back in its place needs that port, so wait for it.
	deadline := time.Now().Add(m.timeout())
	for {
		err := containers.Start(conn, id, nil)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			return fmt.Errorf("start: %w", explain(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	d, err := inspectSettled(ctx, conn, id)
	if err != nil {
		return fmt.Errorf("inspect: %w", explain(err))
	}
	cs, _ := describe([]*define.InspectContainerData{d})
	c := cs[0]
	c.Name = id // the name may change under an undo; the ID does not
	return m.waitHealthy(ctx, conn, c)
}

func defaultsOf(img *types.ImageInspectReport) imageDefaults {
	var d imageDefaults
	if img == nil || img.ImageData == nil {
		return d
	}
	if c := img.Config; c != nil {
		d.Env, d.Cmd, d.Entrypoint = c.Env, c.Cmd, c.Entrypoint
		d.WorkDir, d.User, d.StopSignal = c.WorkingDir, c.User, c.StopSignal
		d.Labels = c.Labels
	}
	if d.Labels == nil {
		d.Labels = img.Labels
	}
	d.Health = img.HealthCheck
	return d
}

// dataOf lists where a container keeps state: its named volumes and the
// sources of its writable bind mounts.
func dataOf(conn context.Context, d *define.InspectContainerData) ([]Data, error) {
	var out []Data
	for _, mt := range d.Mounts {
		if !mt.RW {
			continue
		}
		switch mt.Type {
		case "volume":
			v, err := volumes.Inspect(conn, mt.Name, nil)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", mt.Name, explain(err))
			}
			if v.Driver != "" && v.Driver != "local" {
				return nil, fmt.Errorf("%w: volume %s uses driver %s, whose data cannot be snapshotted", errkind.Refused, mt.Name, v.Driver)
			}
			out = append(out, Data{Kind: "volume", Name: mt.Name, Path: v.Mountpoint})
		case "bind":
			out = append(out, Data{Kind: "bind", Name: mt.Destination, Path: mt.Source})
		}
	}
	return out, nil
}
