package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/speedia/host/podman"
	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/config"
	"github.com/speedia/host/updater/daemon"
	"github.com/speedia/host/updater/state"
)

// containers connects the daemon (Workload) and the D-Bus API
// (dbusapi.Containers) to the Podman manager.
type containers struct {
	m    *podman.Manager
	view func() daemon.View
	log  *slog.Logger

	mu        sync.Mutex
	last      *client.ContainerRun
	autoBusy  bool
	lastCheck time.Time
}

func newContainers(c config.Containers, view func() daemon.View, log *slog.Logger) *containers {
	return &containers{
		m: &podman.Manager{
			Socket: c.Socket, Units: podman.Systemd{}, Dir: StateDir + "/containers", Log: log,
			Settle: c.Settle, Timeout: c.Timeout, Parallel: c.Parallel, Keep: c.Keep,
		},
		view: view, log: log,
	}
}

// noPodman: without the socket there is no Podman service and so no
// containers to care for (a socket-activated service has its socket).
func (c *containers) noPodman() bool {
	_, err := os.Stat(c.m.Socket)
	return errors.Is(err, fs.ErrNotExist)
}

func (c *containers) Inventory(ctx context.Context) (json.RawMessage, error) {
	inv := podman.Inventory{Taken: time.Now().UTC()}
	if !c.noPodman() {
		var err error
		if inv, err = c.m.Take(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range inv.Notes {
		c.log.Warn("container inventory", "note", n)
	}
	c.log.Info("containers running before the reboot", "count", len(inv.Containers))
	return json.Marshal(inv)
}

func decodeInventory(raw json.RawMessage) (podman.Inventory, error) {
	var inv podman.Inventory
	if err := json.Unmarshal(raw, &inv); err != nil {
		return inv, fmt.Errorf("the saved container inventory is unreadable: %w", err)
	}
	return inv, nil
}

func (c *containers) Stop(ctx context.Context, raw json.RawMessage) error {
	inv, err := decodeInventory(raw)
	if err != nil || len(inv.Containers) == 0 {
		return err
	}
	rep, err := c.m.Stop(ctx, inv)
	c.remember("stop", rep, err)
	return err
}

func (c *containers) Start(ctx context.Context, raw json.RawMessage) ([]string, error) {
	inv, err := decodeInventory(raw)
	if err != nil || len(inv.Containers) == 0 {
		return nil, err
	}
	rep, err := c.m.Start(ctx, inv)
	c.remember("start", rep, err)
	if err != nil {
		// Podman is unreachable: every critical container is down.
		var critical []string
		for _, ct := range inv.Containers {
			if ct.Critical {
				critical = append(critical, "container "+ct.Name+": "+err.Error())
			}
		}
		return critical, err
	}
	return rep.CriticalFailures(), nil
}

// remember logs a run per container and keeps it for the Containers call.
func (c *containers) remember(what string, rep podman.Report, err error) {
	run := &client.ContainerRun{What: what, At: time.Now().UTC(), Notes: rep.Notes}
	for _, r := range rep.Results {
		run.Results = append(run.Results, client.ContainerResult(r))
		if r.OK {
			c.log.Info("container "+r.Action, "container", r.Name, "took", r.Took.Round(time.Millisecond))
		} else {
			c.log.Warn("container "+what+" failed", "container", r.Name, "critical", r.Critical, "err", r.Error)
		}
	}
	if err != nil {
		run.Error = err.Error()
	}
	c.mu.Lock()
	c.last = run
	c.mu.Unlock()
}

// busy refuses container changes while the host is between an update
// reboot's stop and the containers' return.
func (c *containers) busy() error {
	switch p := c.view().State.Phase; p {
	case state.Rebooting, state.Verifying, state.RollingBack:
		return fmt.Errorf("%w: the host is %s; try again once it is idle", daemon.ErrBusy, p)
	}
	return nil
}

func (c *containers) Upgrade(ctx context.Context, name, image string) (any, error) {
	if err := c.busy(); err != nil {
		return nil, err
	}
	rec, err := c.m.Upgrade(ctx, name, image)
	if err != nil {
		return nil, daemonError(err)
	}
	return upgradeView(rec), nil
}

func (c *containers) Rollback(ctx context.Context, name string) (any, error) {
	if err := c.busy(); err != nil {
		return nil, err
	}
	rec, err := c.m.Rollback(ctx, name)
	if err != nil {
		return nil, daemonError(err)
	}
	return upgradeView(rec), nil
}

func (c *containers) Report(context.Context) (any, error) {
	r := client.Containers{Upgrades: []client.ContainerUpgrade{}}
	if raw := c.view().State.Workload; raw != nil {
		if inv, err := decodeInventory(raw); err == nil {
			r.Stopped = inv.Names()
		}
	}
	c.mu.Lock()
	r.Last = c.last
	c.mu.Unlock()
	recs, err := c.m.Records()
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		r.Upgrades = append(r.Upgrades, upgradeView(rec))
	}
	return r, nil
}

// observe starts afterCheck when the daemon finished a check.
func (c *containers) observe(ctx context.Context, v daemon.View, auto bool) {
	c.mu.Lock()
	changed := !v.State.LastCheck.Equal(c.lastCheck) && !c.lastCheck.IsZero()
	c.lastCheck = v.State.LastCheck
	c.mu.Unlock()
	if changed {
		go c.afterCheck(ctx, auto)
	}
}

// afterCheck runs after each update check: expired upgrades are discarded
// and, when enabled, opted-in containers are upgraded. It never overlaps
// itself and stays out of update reboots.
func (c *containers) afterCheck(ctx context.Context, auto bool) {
	c.mu.Lock()
	if c.autoBusy {
		c.mu.Unlock()
		return
	}
	c.autoBusy = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.autoBusy = false
		c.mu.Unlock()
	}()
	if c.noPodman() || c.busy() != nil {
		return
	}
	if names, err := c.m.Expire(ctx, time.Now()); err != nil {
		c.log.Warn("discarding expired container upgrades", "err", err)
	} else if len(names) > 0 {
		c.log.Info("discarded expired container upgrades", "containers", names)
	}
	if !auto {
		return
	}
	recs, err := c.m.AutoUpgrade(ctx)
	for _, r := range recs {
		c.log.Info("container upgraded automatically", "container", r.Name, "image", r.NewImage)
	}
	if err != nil {
		c.log.Error("automatic container upgrade", "err", err)
	}
}

func daemonError(err error) error {
	switch {
	case errors.Is(err, podman.ErrNotFound):
		return fmt.Errorf("%w: %w", daemon.ErrNotFound, err)
	case errors.Is(err, podman.ErrNothingToDo):
		return fmt.Errorf("%w: %w", daemon.ErrNothing, err)
	case errors.Is(err, podman.ErrRefused):
		return fmt.Errorf("%w: %w", daemon.ErrRefused, err)
	}
	return err
}

func upgradeView(r *podman.Record) client.ContainerUpgrade {
	u := client.ContainerUpgrade{
		Name: r.Name, At: r.At, KeepUntil: r.KeepUntil, OldImage: r.OldImage, NewImage: r.NewImage,
		OldID: r.OldID, NewID: r.NewID, Kept: r.Kept, Notes: r.Notes,
	}
	for _, it := range r.Data.Items {
		u.Data = append(u.Data, client.SavedData{Kind: it.Kind, Name: it.Name, Path: it.Path, Method: it.Method})
	}
	return u
}
