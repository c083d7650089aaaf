// Package client is the typed D-Bus client of speedia-updated
// (org.speedia.Update1, see updater/dbusapi/org.speedia.Update1.xml).
//
// Every call takes the caller's context and nothing else bounds it: staging
// an update takes minutes, so there is no default timeout. Errors the daemon
// or the bus return wrap the sentinels in errors.go.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/snapshot"
)

// The daemon's address on the bus.
const (
	BusName    = "org.speedia.Update1"
	ObjectPath = dbus.ObjectPath("/org/speedia/Update1")
	Interface  = "org.speedia.Update1"
)

// Client calls speedia-updated over one bus connection.
type Client struct {
	conn *dbus.Conn
	obj  dbus.BusObject
}

// New wraps an open connection. Its signal handler must be a
// dbus.SignalRegistrar (godbus's default is) for Apply and WatchPhase.
func New(conn *dbus.Conn) *Client {
	return &Client{conn: conn, obj: conn.Object(BusName, ObjectPath)}
}

// Connect opens a private connection to the system bus
// (DBUS_SYSTEM_BUS_ADDRESS when set). A bus that cannot be reached is
// reported as errkind.NoDaemon.
func Connect(ctx context.Context) (*Client, error) {
	type result struct {
		conn *dbus.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := dbus.Connect(systemBusAddress())
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to the system bus: %w", mapError(r.err))
		}
		return New(r.conn), nil
	case <-ctx.Done():
		go func() { // the dial is not cancellable; close it when it lands
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// systemBusAddress is the standard one unless DBUS_SYSTEM_BUS_ADDRESS says
// otherwise. (godbus reports a missing socket as a plain string; dialing
// it gives an error that says what is wrong.)
func systemBusAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return "unix:path=/run/dbus/system_bus_socket"
}

// Close closes the bus connection.
func (c *Client) Close() error { return c.conn.Close() }

// call invokes method on the daemon and stores its out arguments.
func (c *Client) call(ctx context.Context, method string, out []any, args ...any) error {
	err := c.obj.CallWithContext(ctx, Interface+"."+method, 0, args...).Store(out...)
	if err != nil {
		return fmt.Errorf("%s: %w", method, mapError(err))
	}
	return nil
}

// Check looks for updates now and stages them when found. It returns the
// number of packages the update changes.
func (c *Client) Check(ctx context.Context) (uint32, error) {
	var n uint32
	err := c.call(ctx, "Check", []any{&n})
	return n, err
}

// Apply stages all available updates now and returns the new pending
// snapshot. progress (may be nil) receives each line of package manager
// output, in order, from a goroutine of Apply's; every line sent before the
// daemon answered has been passed on when Apply returns.
func (c *Client) Apply(ctx context.Context, progress func(line string)) (uint32, error) {
	var n uint32
	if progress == nil {
		err := c.call(ctx, "Apply", []any{&n})
		return n, err
	}
	stop, err := c.subscribe(ctx, "Progress", func(s *dbus.Signal) {
		var line string
		if dbus.Store(s.Body, &line) == nil {
			progress(line)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("Apply: %w", err)
	}
	err = c.call(ctx, "Apply", []any{&n})
	stop()
	return n, err
}

// Reboot schedules the reboot into the pending snapshot: when is "now",
// "next-window" or an RFC 3339 time. It returns the time scheduled.
func (c *Client) Reboot(ctx context.Context, when string) (time.Time, error) {
	var at uint64
	if err := c.call(ctx, "Reboot", []any{&at}, when); err != nil {
		return time.Time{}, err
	}
	return fromMicros(at), nil
}

// RebootAt schedules the reboot at t.
func (c *Client) RebootAt(ctx context.Context, t time.Time) (time.Time, error) {
	return c.Reboot(ctx, t.Format(time.RFC3339))
}

// CancelReboot cancels a scheduled reboot.
func (c *Client) CancelReboot(ctx context.Context) error {
	return c.call(ctx, "CancelReboot", nil)
}

// Rollback makes snapshot n (0: the last known good) the next boot and
// reboots per when ("now", "next-window", an RFC 3339 time, or "" for no
// reboot). It returns the snapshot chosen.
func (c *Client) Rollback(ctx context.Context, n uint32, when string) (uint32, error) {
	var chosen uint32
	err := c.call(ctx, "Rollback", []any{&chosen}, n, when)
	return chosen, err
}

// Hold pauses automatic staging and rebooting until until (zero: until
// Unhold).
func (c *Client) Hold(ctx context.Context, reason string, until time.Time) error {
	return c.call(ctx, "Hold", nil, reason, toMicros(until))
}

// Unhold ends a hold.
func (c *Client) Unhold(ctx context.Context) error {
	return c.call(ctx, "Unhold", nil)
}

// ClearBad clears the bad-update mark id ("" clears them all).
func (c *Client) ClearBad(ctx context.Context, id string) error {
	return c.call(ctx, "ClearBad", nil, id)
}

// Reload makes the daemon read its configuration files again.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, "Reload", nil)
}

// History returns the newest limit records (0: all), oldest first.
func (c *Client) History(ctx context.Context, limit uint32) ([]history.Record, error) {
	var recs []history.Record
	err := c.callJSON(ctx, "History", &recs, limit)
	return recs, err
}

// Snapshots returns every root snapshot, oldest first.
func (c *Client) Snapshots(ctx context.Context) ([]snapshot.Snapshot, error) {
	var list []snapshot.Snapshot
	err := c.callJSON(ctx, "Snapshots", &list)
	return list, err
}

func (c *Client) callJSON(ctx context.Context, method string, v any, args ...any) error {
	var s string
	if err := c.call(ctx, method, []any{&s}, args...); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("%s: decode reply: %w", method, err)
	}
	return nil
}

// fromMicros converts the API's microseconds since the epoch (0: none).
func fromMicros(us uint64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(us))
}

func toMicros(t time.Time) uint64 {
	if t.IsZero() || t.UnixMicro() <= 0 {
		return 0
	}
	return uint64(t.UnixMicro())
}
