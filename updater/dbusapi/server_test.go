package dbusapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/client/clienttest"
	"github.com/speedia/host/updater/daemon"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/state"
)

// backend stands in for the daemon (whose own scenarios are tested in
// updater/daemon); the server and the real client talk over a real bus.
type backend struct {
	mu    sync.Mutex
	view  daemon.View
	srv   *Server
	calls []string
	err   error
}

func (b *backend) View() daemon.View { b.mu.Lock(); defer b.mu.Unlock(); return b.view }
func (b *backend) record(c string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, c)
	return b.err
}
func (b *backend) Check(context.Context) (int, error) { return 0, b.record("Check") }
func (b *backend) Apply(context.Context) (int, error) {
	b.srv.Progress("Unpacking app (2.0-1)")
	b.srv.Progress("Setting up app (2.0-1)")
	return 7, b.record("Apply")
}
func (b *backend) Reboot(_ context.Context, when string) (time.Time, error) {
	return time.UnixMicro(1_800_000_000_000_000), b.record("Reboot " + when)
}
func (b *backend) CancelReboot(context.Context) error { return b.record("CancelReboot") }
func (b *backend) Rollback(_ context.Context, n int, when string) (int, error) {
	return 1, b.record("Rollback " + when)
}
func (b *backend) Hold(_ context.Context, reason string, until time.Time) error {
	return b.record("Hold " + reason + " " + until.UTC().Format(time.RFC3339))
}
func (b *backend) Unhold(context.Context) error                { return b.record("Unhold") }
func (b *backend) ClearBad(_ context.Context, id string) error { return b.record("ClearBad " + id) }
func (b *backend) History(limit int) ([]history.Record, error) {
	return []history.Record{{Event: history.Staged, Snapshot: 2}}, b.record("History")
}
func (b *backend) Snapshots(context.Context) ([]snapshot.Snapshot, error) {
	return []snapshot.Snapshot{{Number: 1, State: snapshot.StateReady, Booted: true}}, b.record("Snapshots")
}

func setup(t *testing.T) (*backend, *client.Client) {
	addr := clienttest.StartBus(t, "")
	dial := func() *dbus.Conn {
		c, err := dbus.Connect(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	reboot := time.Date(2026, 11, 29, 3, 17, 0, 0, time.UTC)
	// The state as the daemon saves it: staged, planned, held, one bad update.
	var st state.State
	if err := json.Unmarshal([]byte(`{"phase":"pending","pending":{"id":"abc","snapshot":2,"kernel_changed":true,`+
		`"changes":[{"name":"app","old":"1.0-1","new":"2.0-1","kind":"upgrade"}]},`+
		`"reboot_at":"`+reboot.Format(time.RFC3339)+`","reboot_reason":"maintenance window","hold":{"reason":"launch"},`+
		`"bad":[{"id":"bad1","snapshot":3,"reason":"health","date":"`+reboot.Format(time.RFC3339)+`"}],"last_good":1}`), &st); err != nil {
		t.Fatal(err)
	}
	b := &backend{view: daemon.View{
		State:  st,
		Booted: 1, Strategy: "periodic", ConfigError: "update.toml:3: check.interval: too short",
		Settings: daemon.Settings{RestartNeeded: []string{"metrics.listen"}},
	}}
	srv, err := Export(context.Background(), dial(), b, func(context.Context) error { return b.record("Reload") })
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	if err := srv.RequestName(); err != nil {
		t.Fatal(err)
	}
	return b, client.New(dial())
}

func TestPropertiesReachTheClient(t *testing.T) {
	b, c := setup(t)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := b.View()
	if st.Phase != "pending" || st.Booted != 1 || st.Pending != 2 || st.LastGood != 1 || !st.KernelChanged ||
		!st.NextReboot.Equal(v.State.Plan().At) || st.NextRebootReason != "maintenance window" || !st.Held ||
		st.HoldReason != "launch" || st.ConfigError == "" || st.Strategy != "periodic" ||
		len(st.RestartNeeded) != 1 || st.RestartNeeded[0] != "metrics.listen" {
		t.Fatalf("status %+v", st)
	}
	if len(st.PendingChanges) != 1 || st.PendingChanges[0] != v.State.Pending().Changes[0] {
		t.Fatalf("changes %+v", st.PendingChanges)
	}
	if len(st.BadUpdates) != 1 || st.BadUpdates[0].ID != "bad1" || !strings.Contains(st.BadUpdates[0].Summary, "health") {
		t.Fatalf("bad %+v", st.BadUpdates)
	}

	// A change is published: properties and a PhaseChanged signal.
	events, err := c.WatchPhase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.srv.Changed(v, false) // no phase change: no signal
	if err := json.Unmarshal([]byte(`{"phase":"idle","last_good":1,"last_error":"update rolled back: health"}`), &v.State); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.view = v
	b.mu.Unlock()
	b.srv.Changed(v, true)
	select {
	case ev := <-events:
		if ev.Phase != "idle" || ev.Detail != "update rolled back: health" {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no PhaseChanged signal")
	}
	if st, _ := c.Status(ctx); st.Phase != "idle" || st.Pending != 0 {
		t.Fatalf("after the change: %+v", st)
	}
}

func TestMethodsAndErrors(t *testing.T) {
	b, c := setup(t)
	ctx := context.Background()
	var lines []string
	n, err := c.Apply(ctx, func(l string) { lines = append(lines, l) })
	if err != nil || n != 7 || len(lines) != 2 {
		t.Fatalf("apply: %d %v %q", n, err, lines)
	}
	at, err := c.Reboot(ctx, "next-window")
	if err != nil || at.UnixMicro() != 1_800_000_000_000_000 {
		t.Fatalf("reboot: %v %v", at, err)
	}
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := c.Hold(ctx, "launch", until); err != nil {
		t.Fatal(err)
	}
	if recs, err := c.History(ctx, 0); err != nil || len(recs) != 1 || recs[0].Snapshot != 2 {
		t.Fatalf("history %v %v", recs, err)
	}
	if list, err := c.Snapshots(ctx); err != nil || len(list) != 1 || !list[0].Booted {
		t.Fatalf("snapshots %v %v", list, err)
	}
	want := []string{"Apply", "Reboot next-window", "Hold launch 2026-12-01T00:00:00Z", "History", "Snapshots"}
	if strings.Join(b.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q", b.calls)
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{errkind.Busy, errkind.Busy},
		{errkind.NothingToDo, errkind.NothingToDo},
		{errkind.NotFound, errkind.NotFound},
		{errkind.Bad, errkind.Bad},
		{errkind.Invalid, errkind.Invalid},
		{errkind.Refused, errkind.Refused},
	} {
		b.mu.Lock()
		b.err = tc.err
		b.mu.Unlock()
		if err := c.CancelReboot(ctx); !errors.Is(err, tc.want) {
			t.Errorf("%v: client got %v, want %v", tc.err, err, tc.want)
		}
	}
}

// The XML served for introspection is the contract plus the standard
// interfaces, one well-formed node.
func TestIntrospection(t *testing.T) {
	xml := introspectXML()
	for _, want := range []string{`interface name="org.speedia.Update1"`, "org.freedesktop.DBus.Properties",
		"org.freedesktop.DBus.Introspectable", `method name="Apply"`, `signal name="PhaseChanged"`} {
		if !strings.Contains(xml, want) {
			t.Errorf("introspection lacks %s", want)
		}
	}
	if strings.Count(xml, "<node>") != 1 || strings.Count(xml, "</node>") != 1 {
		t.Errorf("malformed:\n%s", xml)
	}
}
