package podman

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// Labels an admin puts on containers to steer Speedia host.
const (
	// LabelAfter lists containers (by name, comma-separated) that must be
	// serving before this one starts, and stopped only after it.
	LabelAfter = "speedia.after"
	// LabelCritical "true": if the container does not come back after an
	// update reboot, the update is rolled back.
	LabelCritical = "speedia.critical"
	// LabelSettle is how long a container without a health check must keep
	// running to count as up (a Go duration, e.g. "10s").
	LabelSettle = "speedia.settle"
	// LabelUpgrade "auto": hard-upgrade the container when its image name
	// points to a newer local image.
	LabelUpgrade = "speedia.upgrade"
	// LabelSystemdUnit is set by Podman for containers started by a systemd
	// unit (quadlet, podman generate systemd).
	LabelSystemdUnit = "PODMAN_SYSTEMD_UNIT"
	// Compose (docker compose against the Podman socket) names a service's
	// dependencies as "svc:condition:restart,...".
	labelComposeProject   = "com.docker.compose.project"
	labelComposeService   = "com.docker.compose.service"
	labelComposeDependsOn = "com.docker.compose.depends_on"
)

// Container is what the inventory keeps of one running container.
type Container struct {
	Name        string        `json:"name"`
	ID          string        `json:"id"`
	Image       string        `json:"image"`
	ImageID     string        `json:"image_id"`
	Pod         string        `json:"pod,omitempty"`
	Infra       bool          `json:"infra,omitempty"` // the pod's infra container
	Restart     string        `json:"restart,omitempty"`
	Health      bool          `json:"health,omitempty"` // has a Podman health check
	Unit        string        `json:"unit,omitempty"`   // systemd unit that manages it
	After       []string      `json:"after,omitempty"`  // names of containers it starts after
	Critical    bool          `json:"critical,omitempty"`
	StopTimeout uint          `json:"stop_timeout"`
	Settle      time.Duration `json:"settle,omitempty"` // from LabelSettle
	// Port is the first published TCP port, as host:port to dial: the
	// container is ready once it accepts a connection there.
	Port string `json:"port,omitempty"`
}

// Inventory is the set of containers that ran before a reboot.
type Inventory struct {
	Taken      time.Time   `json:"taken"`
	Containers []Container `json:"containers"`
	// Notes are problems found while taking it (an unknown dependency, a
	// bad label); they never stop a reboot.
	Notes []string `json:"notes,omitempty"`
}

// Names lists the inventory's container names.
func (inv Inventory) Names() []string {
	out := make([]string, len(inv.Containers))
	for i, c := range inv.Containers {
		out[i] = c.Name
	}
	return out
}

// Take lists the running containers and reads what is needed to stop and
// start them in order.
func (m *Manager) Take(ctx context.Context) (Inventory, error) {
	var inv Inventory
	err := m.with(ctx, func(conn context.Context) (err error) {
		inv, err = take(ctx, conn)
		return err
	})
	return inv, err
}

func take(ctx, conn context.Context) (Inventory, error) {
	inv := Inventory{Taken: time.Now().UTC()}
	list, err := containers.List(conn, nil) // running only
	if err != nil {
		return inv, fmt.Errorf("list containers: %w", explain(err))
	}
	var data []*define.InspectContainerData
	for _, l := range list {
		if err := ctx.Err(); err != nil {
			return inv, err
		}
		d, err := containers.Inspect(conn, l.ID, nil)
		if err != nil {
			if isNotFound(err) {
				continue // gone since the list
			}
			return inv, fmt.Errorf("inspect container %s: %w", l.ID, explain(err))
		}
		if d.State != nil && (d.State.Running || d.State.Paused) {
			data = append(data, d)
		}
	}
	inv.Containers, inv.Notes = describe(data)
	return inv, nil
}

// describe turns inspect data into inventory entries with their
// dependencies resolved to names of containers in the same set.
func describe(data []*define.InspectContainerData) ([]Container, []string) {
	byID := map[string]string{}
	names := map[string]bool{}
	type svcKey struct{ project, service string }
	compose := map[svcKey][]string{}
	infra := map[string]string{} // pod ID -> infra container name
	for _, d := range data {
		byID[d.ID] = d.Name
		names[d.Name] = true
		if d.IsInfra && d.Pod != "" {
			infra[d.Pod] = d.Name
		}
		if l := labels(d); l[labelComposeProject] != "" && l[labelComposeService] != "" {
			k := svcKey{l[labelComposeProject], l[labelComposeService]}
			compose[k] = append(compose[k], d.Name)
		}
	}
	var out []Container
	var notes []string
	for _, d := range data {
		l := labels(d)
		c := Container{
			Name:     d.Name,
			ID:       d.ID,
			Image:    d.ImageName,
			ImageID:  d.Image,
			Pod:      d.Pod,
			Infra:    d.IsInfra,
			Unit:     l[LabelSystemdUnit],
			Critical: strings.EqualFold(l[LabelCritical], "true"),
		}
		if d.Config != nil {
			c.StopTimeout = d.Config.StopTimeout
			c.Health = d.Config.Healthcheck != nil && len(d.Config.Healthcheck.Test) > 0 &&
				!strings.EqualFold(d.Config.Healthcheck.Test[0], "NONE")
		}
		if d.HostConfig != nil && d.HostConfig.RestartPolicy != nil {
			c.Restart = d.HostConfig.RestartPolicy.Name
		}
		if d.HostConfig != nil {
			c.Port = firstTCPPort(d.HostConfig.PortBindings)
		}
		if s := l[LabelSettle]; s != "" {
			dur, err := time.ParseDuration(s)
			if err != nil || dur < 0 {
				notes = append(notes, fmt.Sprintf("%s: label %s=%q is not a duration like 10s; using the default", d.Name, LabelSettle, s))
			} else {
				c.Settle = dur
			}
		}
		after := map[string]bool{}
		add := func(name, why string) {
			switch {
			case name == d.Name:
			case names[name]:
				after[name] = true
			default:
				notes = append(notes, fmt.Sprintf("%s: %s names %q, which is not running; ignored", d.Name, why, name))
			}
		}
		if p, ok := infra[d.Pod]; ok && !d.IsInfra {
			add(p, "its pod's infra container")
		}
		for _, id := range d.Dependencies {
			if n, ok := byID[id]; ok {
				add(n, "--requires")
			} else {
				add(id, "--requires")
			}
		}
		if d.HostConfig != nil {
			if id, ok := strings.CutPrefix(d.HostConfig.NetworkMode, "container:"); ok {
				if n, ok := byID[id]; ok {
					add(n, "--network container:")
				}
			}
		}
		for _, n := range splitList(l[LabelAfter]) {
			add(n, "label "+LabelAfter)
		}
		for _, dep := range splitList(l[labelComposeDependsOn]) {
			svc, _, _ := strings.Cut(dep, ":")
			ns := compose[svcKey{l[labelComposeProject], svc}]
			if len(ns) == 0 {
				notes = append(notes, fmt.Sprintf("%s: compose depends_on %q has no running container; ignored", d.Name, svc))
			}
			for _, n := range ns {
				add(n, "compose depends_on")
			}
		}
		for n := range after {
			c.After = append(c.After, n)
		}
		sort.Strings(c.After)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, notes
}

// firstTCPPort is the lowest published TCP port as an address to dial
// from the host (a wildcard host IP is dialled on loopback).
func firstTCPPort(bindings map[string][]define.InspectHostPort) string {
	best, bestN := "", 0
	for proto, bs := range bindings {
		if !strings.HasSuffix(proto, "/tcp") {
			continue
		}
		for _, b := range bs {
			n, err := strconv.Atoi(b.HostPort)
			if err != nil || n <= 0 || (bestN != 0 && n >= bestN) {
				continue
			}
			ip := b.HostIP
			if ip == "" || ip == "0.0.0.0" || ip == "::" {
				ip = "127.0.0.1"
			}
			best, bestN = net.JoinHostPort(ip, b.HostPort), n
		}
	}
	return best
}

func labels(d *define.InspectContainerData) map[string]string {
	if d.Config == nil || d.Config.Labels == nil {
		return map[string]string{}
	}
	return d.Config.Labels
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Levels orders containers for starting: every container comes after all
// it depends on; containers of one level do not depend on each other. A
// dependency cycle is reported and its members share the last level, so a
// bad label never keeps containers down.
func Levels(cs []Container) (levels [][]Container, notes []string) {
	idx := map[string]int{}
	for i, c := range cs {
		idx[c.Name] = i
	}
	level := make([]int, len(cs))
	state := make([]int, len(cs)) // 0 new, 1 visiting, 2 done
	var cyclic []string
	var visit func(i int) int
	visit = func(i int) int {
		switch state[i] {
		case 1:
			return -1
		case 2:
			return level[i]
		}
		state[i] = 1
		l := 0
		for _, dep := range cs[i].After {
			j, ok := idx[dep]
			if !ok {
				continue
			}
			dl := visit(j)
			if dl < 0 {
				l = -1
				break
			}
			if dl+1 > l {
				l = dl + 1
			}
		}
		state[i] = 2
		level[i] = l
		if l < 0 {
			cyclic = append(cyclic, cs[i].Name)
		}
		return l
	}
	max := -1
	for i := range cs {
		if l := visit(i); l > max {
			max = l
		}
	}
	levels = make([][]Container, max+1)
	for i, c := range cs {
		if level[i] >= 0 {
			levels[level[i]] = append(levels[level[i]], c)
		}
	}
	if len(cyclic) > 0 {
		sort.Strings(cyclic)
		notes = append(notes, "dependency cycle among "+strings.Join(cyclic, ", ")+": started together after the rest")
		var last []Container
		for i, c := range cs {
			if level[i] < 0 {
				last = append(last, c)
			}
		}
		levels = append(levels, last)
	}
	return levels, notes
}
