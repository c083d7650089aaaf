package podman

import (
	"context"
	"fmt"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// Units starts and stops systemd units (quadlet or generated units that
// run containers) and waits for the job to finish.
type Units interface {
	StartUnit(ctx context.Context, name string) error
	StopUnit(ctx context.Context, name string) error
}

// Systemd is Units on the system manager over D-Bus
// (DBUS_SYSTEM_BUS_ADDRESS is honoured).
type Systemd struct{}

// StartUnit starts name and waits for the job.
func (Systemd) StartUnit(ctx context.Context, name string) error {
	return runJob(ctx, "start", name, func(c *sdbus.Conn, ch chan<- string) (int, error) {
		return c.StartUnitContext(ctx, name, "replace", ch)
	})
}

// StopUnit stops name and waits for the job.
func (Systemd) StopUnit(ctx context.Context, name string) error {
	return runJob(ctx, "stop", name, func(c *sdbus.Conn, ch chan<- string) (int, error) {
		return c.StopUnitContext(ctx, name, "replace", ch)
	})
}

func runJob(ctx context.Context, verb, name string, job func(*sdbus.Conn, chan<- string) (int, error)) error {
	c, err := sdbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("%s unit %s: connect to systemd: %w", verb, name, err)
	}
	defer c.Close()
	ch := make(chan string, 1)
	if _, err := job(c, ch); err != nil {
		return fmt.Errorf("%s unit %s: %w", verb, name, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s unit %s: job %s (see journalctl -u %s)", verb, name, res, name)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s unit %s: %w", verb, name, ctx.Err())
	}
}
