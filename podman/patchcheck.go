package podman

import (
	"context"
	"fmt"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"

	"github.com/speedia/host/podman/patch"
)

// LabelPatch overrides containers.patch for one container: "auto",
// "security", "notify" or "off".
const LabelPatch = "org.speedia.patch"

// PatchStatus is one container's patch picture: what it runs, whether it
// can be patched, what is pending, and how its last patch ended.
type PatchStatus struct {
	Name      string         `json:"name"`
	ID        string         `json:"id"`
	Image     string         `json:"image"`
	Running   bool           `json:"running"`
	OS        *patch.OS      `json:"os,omitempty"`
	Manager   patch.Manager  `json:"manager,omitempty"`
	Patchable bool           `json:"patchable"`
	Reason    string         `json:"reason,omitempty"` // why it is not patchable or not checked
	Policy    string         `json:"policy"`
	Pending   []patch.Update `json:"pending"`
	Security  int            `json:"security"` // pending security updates
	Checked   bool           `json:"checked"`  // Pending is fresh from the package manager
	Error     string         `json:"error,omitempty"`
	Last      *PatchSummary  `json:"last,omitempty"`
	Bad       []string       `json:"bad,omitempty"` // package sets that failed and are not retried
}

// PatchSummary is the end of one patch.
type PatchSummary struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step"` // done, restored, or where it stopped
	Updates int       `json:"updates"`
	Image   string    `json:"rollback_point,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// PatchPolicy is the policy of a container: its label, else def.
func PatchPolicy(d *define.InspectContainerData, def string) (string, error) {
	p, ok := labels(d)[LabelPatch]
	if !ok {
		return def, nil
	}
	switch p {
	case "auto", "security", "notify", "off":
		return p, nil
	}
	return def, fmt.Errorf("container %s: label %s=%q: want auto, security, notify or off; using %s", d.Name, LabelPatch, p, def)
}

// CheckPatches reports on the named containers (none: every container).
// Running, patchable containers are asked for their pending updates when
// refresh is set; a container's failure is in its Error, not the call's.
func (m *Manager) CheckPatches(ctx context.Context, names []string, def string, refresh bool) (out []PatchStatus, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		if len(names) == 0 {
			list, err := containers.List(conn, new(containers.ListOptions).WithAll(true))
			if err != nil {
				return fmt.Errorf("list containers: %w", explain(err))
			}
			for _, c := range list {
				if !c.IsInfra {
					names = append(names, c.Names[0])
				}
			}
		}
		for _, name := range names {
			d, err := containers.Inspect(conn, name, nil)
			if err != nil {
				return fmt.Errorf("container %s: %w", name, explain(err))
			}
			out = append(out, m.checkOne(ctx, conn, d, def, refresh))
		}
		return nil
	})
	return out, err
}

func (m *Manager) checkOne(ctx, conn context.Context, d *define.InspectContainerData, def string, refresh bool) PatchStatus {
	s := PatchStatus{Name: d.Name, ID: d.ID, Image: d.ImageName, Running: d.State != nil && d.State.Running, Pending: []patch.Update{}}
	var perr error
	s.Policy, perr = PatchPolicy(d, def)
	if perr != nil {
		s.Error = perr.Error()
	}
	files := ContainerFiles(conn, d.ID)
	if o, ok := patch.ReadOS(files); ok {
		s.OS = &o
	}
	drv := patch.Find(files)
	if drv != nil {
		s.Manager = drv.Manager()
	}
	if recs, err := m.PatchRecords(d.Name); err == nil && len(recs) > 0 {
		r := recs[len(recs)-1]
		s.Last = &PatchSummary{At: r.At, Step: r.Step, Updates: len(r.Updates), Image: r.Image, Error: r.Error}
	}
	s.Bad, _ = m.badSets(d.Name)
	switch {
	case d.IsInfra:
		s.Reason = "a pod's infra container"
	case d.HostConfig != nil && d.HostConfig.ReadonlyRootfs:
		s.Reason = "read-only root filesystem: not patchable (rebuild its image instead)"
	case drv == nil:
		s.Reason = "no known package manager: not patchable"
	case labels(d)[LabelSystemdUnit] != "":
		s.Reason = "managed by systemd unit " + labels(d)[LabelSystemdUnit] + ": not patched behind systemd's back"
	default:
		s.Patchable = true
	}
	if !s.Patchable {
		return s
	}
	if !s.Running {
		s.Reason = "stopped: skipped (start it to check or patch it)"
		return s
	}
	if !refresh {
		return s
	}
	pending, err := drv.Pending(ctx, execIn(conn, d.ID))
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Checked, s.Pending = true, pending
	for _, u := range pending {
		if u.Security {
			s.Security++
		}
	}
	return s
}
