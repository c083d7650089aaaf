package podman

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// Result is what happened to one container.
type Result struct {
	Name     string        `json:"name"`
	Action   string        `json:"action"` // what was done: "started", "already running", "stopped", "unit x.service started", ...
	OK       bool          `json:"ok"`
	Critical bool          `json:"critical,omitempty"`
	Error    string        `json:"error,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

// Report is the outcome of stopping or starting an inventory.
type Report struct {
	Results []Result `json:"results"`
	Notes   []string `json:"notes,omitempty"`
}

// Failed lists the results that are not OK.
func (r Report) Failed() []Result {
	var out []Result
	for _, x := range r.Results {
		if !x.OK {
			out = append(out, x)
		}
	}
	return out
}

// CriticalFailures describes the critical containers that did not come
// back (these fail the health gate).
func (r Report) CriticalFailures() []string {
	var out []string
	for _, x := range r.Failed() {
		if x.Critical {
			out = append(out, "container "+x.Name+": "+x.Error)
		}
	}
	return out
}

// Stop stops the inventory's containers gracefully, dependents first, each
// with its own stop timeout. The error lists the containers that are still
// running; the caller should start the inventory again then.
func (m *Manager) Stop(ctx context.Context, inv Inventory) (rep Report, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		rep, err = m.stop(ctx, conn, inv)
		return err
	})
	return rep, err
}

func (m *Manager) stop(ctx, conn context.Context, inv Inventory) (Report, error) {
	levels, notes := Levels(inv.Containers)
	rep := Report{Notes: notes}
	for i := len(levels) - 1; i >= 0; i-- {
		rep.Results = append(rep.Results, m.each(levels[i], func(c Container, limit func(func())) (r Result) {
			limit(func() { r = m.stopOne(ctx, conn, c) })
			return r
		})...)
	}
	if f := rep.Failed(); len(f) > 0 {
		var parts []string
		for _, r := range f {
			parts = append(parts, r.Name+": "+r.Error)
		}
		return rep, fmt.Errorf("stopping containers: %s", strings.Join(parts, "; "))
	}
	return rep, nil
}

// Start brings back the inventory's containers, dependencies first and in
// parallel within a level, and waits for each to be healthy: its Podman
// health check passes, or, without one, it keeps running for the settle
// time. A container that is already running (podman-restart.service or its
// unit started it) is not started again, only waited for.
func (m *Manager) Start(ctx context.Context, inv Inventory) (rep Report, err error) {
	err = m.with(ctx, func(conn context.Context) error {
		rep = m.start(ctx, conn, inv)
		return nil
	})
	return rep, err
}

func (m *Manager) start(ctx, conn context.Context, inv Inventory) Report {
	levels, notes := Levels(inv.Containers)
	rep := Report{Notes: notes}
	for _, level := range levels {
		// One list per level tells what podman-restart.service or a unit
		// already started (cheaper than an inspect per container).
		running := map[string]bool{}
		if list, err := containers.List(conn, nil); err == nil {
			for _, l := range list {
				for _, n := range l.Names {
					running[n] = true
				}
			}
		}
		rep.Results = append(rep.Results, m.each(level, func(c Container, limit func(func())) Result {
			return m.startOne(ctx, conn, c, running[c.Name], limit)
		})...)
	}
	return rep
}

// each runs fn on all containers at once and returns the results in the
// containers' order. fn passes its heavy part (a Podman or systemd call) to
// limit, which lets at most m.parallel() run at once: waiting for health
// holds no slot.
func (m *Manager) each(cs []Container, fn func(c Container, limit func(func())) Result) []Result {
	out := make([]Result, len(cs))
	sem := make(chan struct{}, m.parallel())
	limit := func(f func()) {
		sem <- struct{}{}
		defer func() { <-sem }()
		f()
	}
	// Containers that are ready only after a settle time start first, so
	// that their wait overlaps the starts of the others (whose readiness
	// is a port or a health check, proven as soon as it holds). Go queues
	// the goroutines waiting for a slot in the order they asked.
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return settles(cs[order[a]]) && !settles(cs[order[b]]) })
	var wg sync.WaitGroup
	for _, i := range order {
		c := cs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r := fn(c, limit)
			r.Name, r.Critical, r.Took = c.Name, c.Critical, time.Since(start)
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// settles reports whether c is ready only once it has run for a settle
// time (no health check, no published port, or a settle label).
func settles(c Container) bool { return !c.Health && (c.Port == "" || c.Settle > 0) }

func fail(action string, err error) Result {
	return Result{Action: action, Error: err.Error()}
}

func (m *Manager) stopOne(ctx context.Context, conn context.Context, c Container) Result {
	if c.Unit != "" {
		if m.Units == nil {
			return fail("unit "+c.Unit, errors.New("managed by a systemd unit, and systemd is not reachable"))
		}
		if err := m.Units.StopUnit(ctx, c.Unit); err != nil {
			return fail("stop unit "+c.Unit, err)
		}
		return Result{Action: "unit " + c.Unit + " stopped", OK: true}
	}
	opts := new(containers.StopOptions).WithIgnore(true)
	if c.StopTimeout > 0 {
		opts.WithTimeout(c.StopTimeout)
	}
	if err := containers.Stop(conn, c.Name, opts); err != nil {
		return fail("stop", explain(err))
	}
	return Result{Action: "stopped", OK: true}
}

func (m *Manager) startOne(ctx context.Context, conn context.Context, c Container, running bool, limit func(func())) Result {
	action := "started"
	if c.Unit != "" {
		if m.Units == nil {
			return fail("unit "+c.Unit, errors.New("managed by a systemd unit, and systemd is not reachable"))
		}
		// Starting an active unit is a no-op, so a unit systemd already
		// started at boot is not started twice.
		var err error
		limit(func() { err = m.Units.StartUnit(ctx, c.Unit) })
		if err != nil {
			return fail("start unit "+c.Unit, err)
		}
		action = "unit " + c.Unit + " started"
	} else if running {
		action = "already running"
	} else {
		var err error
		limit(func() { err = containers.Start(conn, c.Name, nil) })
		if err != nil {
			return fail("start", explain(err))
		}
	}
	if err := m.waitHealthy(ctx, conn, c); err != nil {
		return fail(action, err)
	}
	return Result{Action: action, OK: true}
}

// poll is how often a waiting container is looked at.
const poll = 250 * time.Millisecond

// waitHealthy waits until c is ready, by one rule for every caller (after
// a reboot, an upgrade, a patch): its health check passes; without one, it
// accepts a connection on its first published TCP port; without that (or
// with a settle label), it has kept running for its settle time. It must
// be running throughout.
func (m *Manager) waitHealthy(ctx context.Context, conn context.Context, c Container) error {
	deadline := time.Now().Add(m.timeout())
	settle := m.settle(c)
	var last string
	for {
		d, err := inspectSettled(ctx, conn, c.Name)
		if err != nil {
			return fmt.Errorf("inspect: %w", explain(err))
		}
		if d.State == nil || !d.State.Running {
			return exited(d)
		}
		if c.Health {
			// Run the check now instead of waiting for Podman's timer
			// (which needs systemd and runs only every interval).
			h, err := containers.RunHealthCheck(conn, c.Name, nil)
			switch {
			case err != nil:
				last = explain(err).Error()
			case h.Status == "healthy":
				return nil
			default:
				last = h.Status
				if n := len(h.Log); n > 0 && strings.TrimSpace(h.Log[n-1].Output) != "" {
					last += ": " + strings.TrimSpace(h.Log[n-1].Output)
				}
			}
		} else if c.Port != "" && c.Settle == 0 {
			// Serving is the proof; a settle label asks for the old rule.
			if err := m.dial(ctx, c.Port); err != nil {
				last = "not accepting connections on " + c.Port + ": " + err.Error()
			} else {
				return nil
			}
		} else {
			up := time.Since(d.State.StartedAt)
			if up >= settle {
				return nil
			}
			last = fmt.Sprintf("running for %s of %s", up.Round(time.Millisecond), settle)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s (last: %s)", m.timeout(), last)
		}
		wait := poll
		switch {
		case c.Health:
			wait = time.Second
		case c.Port != "" && c.Settle == 0:
		case settle-time.Since(d.State.StartedAt) > poll:
			// Sleep through the settle time instead of polling: 50
			// containers polled at once load the Podman service.
			wait = settle - time.Since(d.State.StartedAt)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// inspectSettled inspects a container that may be exiting right now:
// Podman 4.3 then fails now and then reading the cgroup of the process that
// just went ("read /proc/PID/cgroup: no such process"); a moment later the
// container is cleanly exited.
func inspectSettled(ctx, conn context.Context, id string) (*define.InspectContainerData, error) {
	for try := 0; ; try++ {
		d, err := containers.Inspect(conn, id, nil)
		if err == nil || try == 10 || !strings.Contains(err.Error(), "no such process") {
			return d, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func exited(d *define.InspectContainerData) error {
	if d.State == nil {
		return errors.New("not running")
	}
	return fmt.Errorf("not running: %s with exit code %d (see podman logs %s)", d.State.Status, d.State.ExitCode, d.Name)
}
