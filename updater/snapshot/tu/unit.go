package tu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
)

// UnitStarter runs a command as a transient oneshot systemd service and waits
// for it to finish.
type UnitStarter interface {
	// RunUnit starts argv as service name and returns its exit status once it
	// has finished. err reports anything that is not a plain exit: D-Bus
	// failures, signals, timeouts, cancellation.
	RunUnit(ctx context.Context, name string, argv []string) (exitStatus int, err error)
}

// Systemd is the UnitStarter of a real host: systemd's D-Bus API.
type Systemd struct{}

// cleanupTimeout bounds the stop/reset calls made after the unit has ended or
// the caller gave up.
const cleanupTimeout = 30 * time.Second

// RunUnit implements UnitStarter.
func (Systemd) RunUnit(ctx context.Context, name string, argv []string) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("run unit: empty command")
	}
	conn, err := sd.NewSystemConnectionContext(ctx)
	if err != nil {
		return -1, fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()

	props := []sd.Property{
		sd.PropDescription("speedia: " + strings.Join(argv, " ")),
		sd.PropType("oneshot"),
		// Keeps the unit loaded after a clean exit so its result can be read.
		sd.PropRemainAfterExit(true),
		// false: a failing command fails the unit. go-systemd's parameter name
		// is inverted; it is systemd's "ignore failure" flag
		// (coreos/go-systemd#510).
		sd.PropExecStart(argv, false),
	}
	done := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, name, "fail", props, done); err != nil {
		return -1, fmt.Errorf("start %s: %w", name, err)
	}
	// The unit stays loaded (active or failed) until we let it go.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_, _ = conn.StopUnitContext(cctx, name, "replace", nil)
		_ = conn.ResetFailedUnitContext(cctx, name)
	}()

	var job string
	select {
	case job = <-done:
	case <-ctx.Done():
		// Stopping sends SIGTERM; t-u traps it and discards its snapshot.
		return -1, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	if job != "done" && job != "failed" {
		return -1, fmt.Errorf("%s: start job %s", name, job)
	}

	result, err := serviceProp[string](ctx, conn, name, "Result")
	if err != nil {
		return -1, err
	}
	code, err := serviceProp[int32](ctx, conn, name, "ExecMainCode")
	if err != nil {
		return -1, err
	}
	status, err := serviceProp[int32](ctx, conn, name, "ExecMainStatus")
	if err != nil {
		return -1, err
	}
	exit, err := exitStatus(result, code, status)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", name, err)
	}
	return exit, nil
}

func serviceProp[T any](ctx context.Context, conn *sd.Conn, unit, prop string) (T, error) {
	var zero T
	p, err := conn.GetServicePropertyContext(ctx, unit, prop)
	if err != nil {
		return zero, fmt.Errorf("%s: read %s: %w", unit, prop, err)
	}
	v, ok := p.Value.Value().(T)
	if !ok {
		return zero, fmt.Errorf("%s: %s has type %s", unit, prop, p.Value.Signature())
	}
	return v, nil
}

// cldExited is ExecMainCode for a normal exit (CLD_EXITED in waitid(2)).
const cldExited = 1

// exitStatus turns a finished service's Result, ExecMainCode and
// ExecMainStatus into an exit status, or an error when it did not simply exit.
func exitStatus(result string, code, status int32) (int, error) {
	switch {
	case result == "success":
		return int(status), nil
	case result == "exit-code" && code == cldExited:
		return int(status), nil
	}
	return -1, fmt.Errorf("service result %q (code %d, status %d)", result, code, status)
}
