package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/client/clienttest"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/pkgver"
)

// setup starts a bus (with extra policy), the fake daemon on it, and a
// client connected through DBUS_SYSTEM_BUS_ADDRESS as the CLI connects.
func setup(t *testing.T, policy string) (*client.Client, *clienttest.Server) {
	t.Helper()
	addr := clienttest.StartBus(t, policy)
	srv := clienttest.NewServer(t, addr)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	c, err := client.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv
}

func TestStatusReadsEveryProperty(t *testing.T) {
	c, srv := setup(t, "")
	next := time.Date(2026, 11, 29, 2, 17, 0, 0, time.UTC)
	srv.SetProperty("Phase", "pending")
	srv.SetProperty("Strategy", "periodic")
	srv.SetProperty("BootedSnapshot", uint32(4))
	srv.SetProperty("PendingSnapshot", uint32(5))
	srv.SetProperty("LastGoodSnapshot", uint32(3))
	srv.SetProperty("PendingChanges", []struct{ Name, Old, New, Kind string }{{"openssl", "3.0.1", "3.0.2", "upgrade"}})
	srv.SetProperty("KernelChanged", true)
	srv.SetProperty("NextReboot", uint64(next.UnixMicro()))
	srv.SetProperty("NextRebootReason", "maintenance window")
	srv.SetProperty("LastCheck", uint64(next.Add(-time.Hour).UnixMicro()))
	srv.SetProperty("LastCheckResult", "1 update staged")
	srv.SetProperty("LastSuccess", uint64(next.Add(-48*time.Hour).UnixMicro()))
	srv.SetProperty("NextCheck", uint64(next.Add(time.Hour).UnixMicro()))
	srv.SetProperty("Held", true)
	srv.SetProperty("HoldReason", "release freeze")
	srv.SetProperty("HoldUntil", uint64(next.Add(72*time.Hour).UnixMicro()))
	srv.SetProperty("BadUpdates", []struct{ ID, Summary string }{{"abc", "curl 8 (snapshot 3)"}})
	srv.SetProperty("LastError", "boot entry")
	srv.SetProperty("ConfigError", "bad window")
	srv.SetProperty("RestartNeeded", []string{"metrics.listen"})

	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := client.Status{
		Phase: "pending", Strategy: "periodic", Booted: 4, Pending: 5, LastGood: 3,
		PendingChanges: []pkgver.Change{{Name: "openssl", Old: "3.0.1", New: "3.0.2", Kind: "upgrade"}},
		KernelChanged:  true, NextReboot: next, NextRebootReason: "maintenance window",
		LastCheck: next.Add(-time.Hour), LastCheckResult: "1 update staged",
		LastSuccess: next.Add(-48 * time.Hour), NextCheck: next.Add(time.Hour),
		Held: true, HoldReason: "release freeze", HoldUntil: next.Add(72 * time.Hour),
		BadUpdates: []client.Bad{{ID: "abc", Summary: "curl 8 (snapshot 3)"}},
		LastError:  "boot entry", ConfigError: "bad window", RestartNeeded: []string{"metrics.listen"},
	}
	for _, p := range []*time.Time{&st.NextReboot, &st.LastCheck, &st.LastSuccess, &st.NextCheck, &st.HoldUntil} {
		*p = p.UTC()
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("status\n got %+v\nwant %+v", st, want)
	}
	calls := srv.Calls()
	if len(calls) != 1 || calls[0].Method != "Properties.GetAll" || calls[0].Args[0] != "org.speedia.Update1" {
		t.Errorf("calls %v, want one GetAll", calls)
	}
}

func TestMethodsSendTheirArguments(t *testing.T) {
	at := time.Date(2026, 11, 29, 3, 17, 0, 0, time.UTC)
	ctx := context.Background()
	tests := []struct {
		method string
		reply  []any
		call   func(*client.Client) (any, error)
		args   []any
		want   any
	}{
		{"Check", []any{uint32(3)}, func(c *client.Client) (any, error) { return c.Check(ctx) }, nil, uint32(3)},
		{"Apply", []any{uint32(6)}, func(c *client.Client) (any, error) { return c.Apply(ctx, nil) }, nil, uint32(6)},
		{"Reboot", []any{uint64(at.UnixMicro())}, func(c *client.Client) (any, error) {
			t, err := c.Reboot(ctx, "next-window")
			return t.UTC(), err
		}, []any{"next-window"}, at},
		{"Reboot", []any{uint64(at.UnixMicro())}, func(c *client.Client) (any, error) {
			t, err := c.RebootAt(ctx, at)
			return t.UTC(), err
		}, []any{"2026-11-29T03:17:00Z"}, at},
		{"CancelReboot", nil, func(c *client.Client) (any, error) { return nil, c.CancelReboot(ctx) }, nil, nil},
		{"Rollback", []any{uint32(4)}, func(c *client.Client) (any, error) { return c.Rollback(ctx, 0, "now") }, []any{uint32(0), "now"}, uint32(4)},
		{"Hold", nil, func(c *client.Client) (any, error) { return nil, c.Hold(ctx, "freeze", at) }, []any{"freeze", uint64(at.UnixMicro())}, nil},
		{"Hold", nil, func(c *client.Client) (any, error) { return nil, c.Hold(ctx, "", time.Time{}) }, []any{"", uint64(0)}, nil},
		{"Unhold", nil, func(c *client.Client) (any, error) { return nil, c.Unhold(ctx) }, nil, nil},
		{"ClearBad", nil, func(c *client.Client) (any, error) { return nil, c.ClearBad(ctx, "abc") }, []any{"abc"}, nil},
		{"Reload", nil, func(c *client.Client) (any, error) { return nil, c.Reload(ctx) }, nil, nil},
		{"History", []any{`[{"time":"2026-11-29T03:17:00Z","event":"staged","snapshot":5}]`},
			func(c *client.Client) (any, error) { return c.History(ctx, 10) }, []any{uint32(10)},
			[]history.Record{{Time: at, Event: history.Staged, Snapshot: 5}}},
		{"Snapshots", []any{`[{"number":4,"date":"2026-11-29T03:17:00Z","description":"d","state":"ready","booted":true,"default":true,"good":true}]`},
			func(c *client.Client) (any, error) {
				l, err := c.Snapshots(ctx)
				return fmt.Sprintf("%+v", l), err
			}, nil, "[{Number:4 Date:2026-11-29 03:17:00 +0000 UTC Description:d State:ready Parent:0 Booted:true Default:true Good:true KernelChanged:false Changes:[]}]"},
	}
	c, srv := setup(t, "")
	for i, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			if tt.reply != nil {
				srv.Reply(tt.method, tt.reply...)
			}
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			calls := srv.Calls()
			if len(calls) != i+1 {
				t.Fatalf("%d calls, want %d", len(calls), i+1)
			}
			last := calls[i]
			if last.Method != tt.method || !reflect.DeepEqual(last.Args, tt.args) && len(tt.args)+len(last.Args) > 0 {
				t.Errorf("called %s%v, want %s%v", last.Method, last.Args, tt.method, tt.args)
			}
		})
	}
}

func TestErrorsMapToSentinels(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		{errkind.NothingToDo.DBusName(), errkind.NothingToDo},
		{errkind.Busy.DBusName(), errkind.Busy},
		{errkind.NotFound.DBusName(), errkind.NotFound},
		{errkind.Refused.DBusName(), errkind.Refused},
		{errkind.Invalid.DBusName(), errkind.Invalid},
		{errkind.Held.DBusName(), errkind.Held},
		{errkind.Bad.DBusName(), errkind.Bad},
		{"org.freedesktop.DBus.Error.AccessDenied", errkind.AccessDenied}, // the daemon's own check
	}
	c, srv := setup(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Fail("Check", tt.name, "the daemon says why")
			_, err := c.Check(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var e *client.Error
			if !errors.As(err, &e) || e.Name != tt.name || e.Message != "the daemon says why" {
				t.Errorf("error %#v", e)
			}
		})
	}
}

func TestBusPolicyDenial(t *testing.T) {
	c, srv := setup(t, clienttest.DenyPolicy("Hold"))
	err := c.Hold(context.Background(), "x", time.Time{})
	if !errors.Is(err, errkind.AccessDenied) {
		t.Fatalf("got %v, want access denied", err)
	}
	if len(srv.Calls()) != 0 {
		t.Errorf("the bus let the call through: %v", srv.Calls())
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("status should still be allowed: %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	t.Run("name not owned", func(t *testing.T) {
		c, srv := setup(t, "")
		srv.Stop()
		_, err := c.Status(context.Background())
		if !errors.Is(err, errkind.NoDaemon) {
			t.Fatalf("got %v, want errkind.NoDaemon", err)
		}
	})
	t.Run("no bus", func(t *testing.T) {
		t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
		_, err := client.Connect(context.Background())
		if !errors.Is(err, errkind.NoDaemon) {
			t.Fatalf("got %v, want errkind.NoDaemon", err)
		}
	})
}

func TestApplyStreamsProgressInOrder(t *testing.T) {
	c, srv := setup(t, "")
	const n = 300
	lines := func(prefix string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s %d", prefix, i))
		}
		return out
	}
	// A slow consumer (a bus round trip a line) leaves most lines queued in
	// the client when the reply lands; Apply must still hand them all over.
	slow, err := dbus.Connect(os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	roundTrip := func() {
		if err := slow.BusObject().Call("org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
			t.Error(err)
		}
	}
	apply := func(want []string, snap uint32) {
		srv.Handle("Apply", func(...any) ([]any, *dbus.Error) {
			srv.Emit("PhaseChanged", "staging", "")
			for _, l := range want {
				srv.Emit("Progress", l)
			}
			return []any{snap}, nil
		})
	}
	var first, second []string
	apply(lines("first"), 6)
	got, err := c.Apply(context.Background(), func(l string) {
		roundTrip()
		first = append(first, l)
	})
	if err != nil || got != 6 {
		t.Fatalf("Apply = %d, %v", got, err)
	}
	// Every line sent before the reply has been handled when Apply returns.
	if !reflect.DeepEqual(first, lines("first")) {
		t.Fatalf("got %d lines, want %d in order: %q...", len(first), n, first[:min(3, len(first))])
	}
	// The first callback is unsubscribed: the second run's lines reach only the second.
	apply(lines("second"), 7)
	if _, err := c.Apply(context.Background(), func(l string) { second = append(second, l) }); err != nil {
		t.Fatal(err)
	}
	if len(first) != n || !reflect.DeepEqual(second, lines("second")) {
		t.Errorf("first got %d lines (want %d), second %d", len(first), n, len(second))
	}
}

func TestApplyFailureStillUnsubscribes(t *testing.T) {
	c, srv := setup(t, "")
	srv.Handle("Apply", func(...any) ([]any, *dbus.Error) {
		srv.Emit("Progress", "E: broken")
		return nil, dbus.NewError(errkind.Busy.DBusName(), []any{"staging already"})
	})
	var got []string
	_, err := c.Apply(context.Background(), func(l string) { got = append(got, l) })
	if !errors.Is(err, errkind.Busy) || len(got) != 1 {
		t.Fatalf("err %v lines %q", err, got)
	}
}

func TestWatchPhase(t *testing.T) {
	c, srv := setup(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.WatchPhase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The match rule is in place when WatchPhase returns, so these arrive.
	srv.Emit("Progress", "not a phase")
	srv.Emit("PhaseChanged", "checking", "")
	srv.Emit("PhaseChanged", "staging", "3 packages")
	want := []client.PhaseEvent{{Phase: "checking"}, {Phase: "staging", Detail: "3 packages"}}
	for _, w := range want {
		if got := <-ch; got != w {
			t.Errorf("got %+v, want %+v", got, w)
		}
	}
	cancel()
	for range ch { // closed after cancel
	}
}

func TestCanceledContext(t *testing.T) {
	c, _ := setup(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestFakeServesTheContract(t *testing.T) {
	addr := clienttest.StartBus(t, "")
	clienttest.NewServer(t, addr)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	node, err := introspect.Call(conn.Object(client.BusName, client.ObjectPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(node.Interfaces) != 1 || node.Interfaces[0].Name != client.Interface || len(node.Interfaces[0].Methods) == 0 {
		t.Errorf("introspection: %+v", node)
	}
}
