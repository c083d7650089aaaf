//go:build integration

package system

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/speedia/host/tests/testhost"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// TestSystemOnBootedHost drives logind, journald and the boot ID of a booted
// test host. The logind calls go from the build machine over the host's bus
// (through Logind.Dial); the rest runs inside it (systemprobe), as the
// daemon does. The reboot comes last.
func TestSystemOnBootedHost(t *testing.T) {
	ctx := context.Background()
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-system-it", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "systemprobe")
	if err := testhost.BuildGo(ctx, "updater/system/testdata/systemprobe", bin); err != nil {
		t.Fatal(err)
	}
	probe, err := h.Install(bin)
	if err != nil {
		t.Fatal(err)
	}
	runProbe := func(t *testing.T, out any, args ...string) {
		t.Helper()
		s, err := h.Run(ctx, nil, nil, append([]string{probe}, args...)...)
		if err != nil {
			t.Fatalf("systemprobe %s: %v\n%s", args, err, s)
		}
		if err := json.Unmarshal([]byte(s), out); err != nil {
			t.Fatalf("systemprobe %s: %v: %q", args, err, s)
		}
	}
	l := Logind{Dial: func(ctx context.Context) (*dbus.Conn, error) {
		return dbus.Connect(h.BusAddress(), dbus.WithContext(ctx))
	}}

	t.Run("schedule and cancel", func(t *testing.T) {
		at := time.Now().Add(time.Hour)
		if err := l.ScheduleReboot(ctx, at, "Speedia test: rebooting into snapshot 2"); err != nil {
			t.Fatal(err)
		}
		got, ok, err := l.ScheduledReboot(ctx)
		if err != nil || !ok || !got.Equal(time.UnixMicro(at.UnixMicro())) {
			t.Fatalf("ScheduledReboot = %v, %v, %v; want %v", got, ok, err, at)
		}
		conn, err := l.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wall, err := conn.Object(logindDest, logindPath).GetProperty(logindMgr + ".WallMessage")
		conn.Close()
		if err != nil || wall.Value() != "Speedia test: rebooting into snapshot 2" {
			t.Fatalf("WallMessage = %v, %v", wall, err)
		}
		if cancelled, err := l.CancelReboot(ctx); err != nil || !cancelled {
			t.Fatalf("CancelReboot = %v, %v", cancelled, err)
		}
		if got, ok, err := l.ScheduledReboot(ctx); err != nil || ok {
			t.Fatalf("after cancel: ScheduledReboot = %v, %v, %v", got, ok, err)
		}
		if cancelled, err := l.CancelReboot(ctx); err != nil || cancelled {
			t.Fatalf("second CancelReboot = %v, %v; want false", cancelled, err)
		}
	})

	t.Run("blockers", func(t *testing.T) {
		if _, err := h.Direct(ctx, "systemd-run", "--unit=speedia-blocker", "--quiet", "systemd-inhibit",
			"--what=shutdown", "--mode=block", "--who=test-backup", "--why=copying", "sleep", "60"); err != nil {
			t.Fatal(err)
		}
		defer h.Direct(ctx, "systemctl", "stop", "speedia-blocker")
		want := func(b []Blocker) bool {
			return len(b) == 1 && b[0].Who == "test-backup" && b[0].Why == "copying" && b[0].What == "shutdown" && b[0].PID != 0
		}
		if b := waitBlockers(t, l, want); b[0].UID != 0 {
			t.Errorf("blocker %+v: UID %d", b[0], b[0].UID)
		}
		// Inside the host, a process's own lock is left out, the other one is not.
		var inside struct {
			PID      uint32
			Blockers []Blocker
		}
		runProbe(t, &inside, "blockers")
		if !want(inside.Blockers) {
			t.Errorf("blockers seen by PID %d, holding its own lock: %+v", inside.PID, inside.Blockers)
		}
		if _, err := h.Direct(ctx, "systemctl", "stop", "speedia-blocker"); err != nil {
			t.Fatal(err)
		}
		waitBlockers(t, l, func(b []Blocker) bool { return len(b) == 0 })
	})

	t.Run("inhibit", func(t *testing.T) {
		// logind only takes locks from processes it can see: run it inside.
		if _, err := h.Direct(ctx, "systemd-run", "--unit=speedia-probe-lock", "--quiet", probe, "inhibit", "5s"); err != nil {
			t.Fatal(err)
		}
		defer h.Direct(ctx, "systemctl", "stop", "speedia-probe-lock")
		waitBlockers(t, l, func(b []Blocker) bool {
			return len(b) == 1 && b[0].Who == Identifier && b[0].Why == "probe holding" && b[0].What == "shutdown"
		})
		waitBlockers(t, l, func(b []Blocker) bool { return len(b) == 0 })
		// Released by the call, not by the process ending.
		if out, _ := h.Direct(ctx, "systemctl", "is-active", "speedia-probe-lock"); strings.TrimSpace(out) != "active" {
			t.Fatalf("the probe is %q; the lock went with the process, not by release()", out)
		}
	})

	t.Run("users", func(t *testing.T) {
		if u, err := l.Users(ctx); err != nil || len(u) != 0 {
			t.Fatalf("idle host: Users = %+v, %v", u, err)
		}
		// A PAM session of class "user" on a tty (as ssh or login open one)
		// is a logged-in user; a background session (cron's kind) is not.
		if _, err := h.Direct(ctx, "systemd-run", "--unit=speedia-cron", "--quiet", "-p", "PAMName=login",
			"-p", "User=daemon", "sleep", "60"); err != nil {
			t.Fatal(err)
		}
		defer h.Direct(ctx, "systemctl", "stop", "speedia-cron")
		if _, err := h.Direct(ctx, "systemd-run", "--unit=speedia-session", "--quiet", "-p", "PAMName=login",
			"-p", "User=nobody", "-E", "XDG_SESSION_TYPE=tty", "-E", "XDG_SESSION_CLASS=user", "sleep", "60"); err != nil {
			t.Fatal(err)
		}
		defer h.Direct(ctx, "systemctl", "stop", "speedia-session")
		var u []Session
		var sessions string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			// Both sessions open a moment after their units start.
			sessions, _ = h.Direct(ctx, "loginctl", "list-sessions", "--no-legend")
			if u, err = l.Users(ctx); err != nil {
				t.Fatal(err)
			}
			if (len(u) > 0 && strings.Count(sessions, "\n") == 2) || time.Now().After(deadline) {
				break
			}
		}
		if strings.Count(sessions, "\n") != 2 {
			t.Errorf("want two logind sessions (daemon's and nobody's), have:\n%s", sessions)
		}
		if len(u) != 1 || u[0].User != "nobody" || u[0].UID != 65534 || u[0].ID == "" || u[0].Remote != "" {
			t.Fatalf("Users = %+v; want nobody's session", u)
		}
		var inside []Session
		runProbe(t, &inside, "users")
		if len(inside) != 1 || inside[0] != u[0] {
			t.Fatalf("inside: Users = %+v; want %+v", inside, u)
		}
	})

	t.Run("journal", func(t *testing.T) {
		id := fmt.Sprintf("%032x", time.Now().UnixNano())
		var out struct{ Journal bool }
		runProbe(t, &out, "journal", id)
		if !out.Journal {
			t.Fatal("the journal socket was not found inside the host")
		}
		var entries []map[string]any
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			s, err := h.Direct(ctx, "journalctl", "-o", "json", "--no-pager", "MESSAGE_ID="+id)
			if err != nil && !strings.Contains(s, "No entries") {
				t.Fatal(err)
			}
			entries = entries[:0]
			for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
				var e map[string]any
				if json.Unmarshal([]byte(line), &e) == nil {
					entries = append(entries, e)
				}
			}
			if len(entries) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		if len(entries) != 2 {
			t.Fatalf("%d journal entries with MESSAGE_ID=%s, want 2", len(entries), id)
		}
		want := map[string]string{
			"MESSAGE":           `journal probe component=probe snapshot=2 old.snapshot=1 note="two words"`,
			"PRIORITY":          "6",
			"SYSLOG_IDENTIFIER": "speedia-updated",
			"COMPONENT":         "probe",
			"SNAPSHOT":          "2",
			"OLD_SNAPSHOT":      "1",
			"NOTE":              "two words",
			"CODE_FUNC":         "main.run",
		}
		for k, v := range want {
			if got := entries[0][k]; got != v {
				t.Errorf("%s = %v, want %q", k, got, v)
			}
		}
		if entries[1]["MESSAGE"] != "journal probe debug" || entries[1]["PRIORITY"] != "7" {
			t.Errorf("debug entry %v %v", entries[1]["MESSAGE"], entries[1]["PRIORITY"])
		}
	})

	t.Run("reboot now", func(t *testing.T) {
		var before string
		runProbe(t, &before, "bootid")
		if id, err := h.BootID(); err != nil || id != before {
			t.Fatalf("BootID inside %q, harness %q (%v)", before, id, err)
		}
		boots := h.Boots()
		if err := l.ScheduleReboot(ctx, time.Time{}, ""); err != nil {
			t.Fatal(err)
		}
		if err := h.WaitReboot(ctx, before, boots); err != nil {
			t.Fatal(err)
		}
		var after string
		runProbe(t, &after, "bootid")
		if after == before || after == "" {
			t.Fatalf("boot ID %q after reboot, %q before", after, before)
		}
	})
}

// waitBlockers polls until ok accepts the blockers (logind registers an
// inhibitor a moment after its program starts, and drops it after it ends).
func waitBlockers(t *testing.T, l Logind, ok func([]Blocker) bool) []Blocker {
	t.Helper()
	var b []Blocker
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err = l.Blockers(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ok(b) {
			return b
		}
	}
	t.Fatalf("blockers: %+v", b)
	return nil
}
