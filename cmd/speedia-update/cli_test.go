package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/client/clienttest"
	"github.com/speedia/host/updater/errkind"
)

// These tests run the CLI in process against a real dbus-daemon and the
// fake daemon of clienttest, connecting as in production: through
// DBUS_SYSTEM_BUS_ADDRESS.

var cliNow = time.Date(2026, 11, 22, 10, 0, 0, 0, cet) // a Sunday

type result struct {
	code           int
	stdout, stderr string
}

func startFake(t *testing.T, policy string) *clienttest.Server {
	t.Helper()
	addr := clienttest.StartBus(t, policy)
	srv := clienttest.NewServer(t, addr)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	return srv
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut strings.Builder
	e := &env{
		stdout: &out, stderr: &errOut,
		now: func() time.Time { return cliNow }, loc: cet,
		connect: client.Connect,
	}
	code := run(context.Background(), args, e)
	return result{code, out.String(), errOut.String()}
}

// lastCall is the fake's last call other than property reads.
func lastCall(t *testing.T, srv *clienttest.Server) clienttest.Call {
	t.Helper()
	calls := srv.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if !strings.HasPrefix(calls[i].Method, "Properties.") && calls[i].Method != "Snapshots" {
			return calls[i]
		}
	}
	t.Fatalf("no method called: %v", calls)
	return clienttest.Call{}
}

func TestCLICallsTheRightMethod(t *testing.T) {
	micros := func(tm time.Time) uint64 { return uint64(tm.UnixMicro()) }
	tests := []struct {
		args   []string
		method string
		want   []any
		stdout string
	}{
		{[]string{"cancel"}, "CancelReboot", nil, "Scheduled reboot cancelled.\n"},
		{[]string{"reboot"}, "Reboot", []any{"next-window"}, "Reboot scheduled for Sun 2026-11-29 03:17 CET.\n"},
		{[]string{"reboot", "--next-window"}, "Reboot", []any{"next-window"}, ""},
		{[]string{"reboot", "--now"}, "Reboot", []any{"now"}, "Rebooting now.\n"},
		{[]string{"reboot", "--at", "22:30"}, "Reboot", []any{"2026-11-22T22:30:00+01:00"}, ""},
		{[]string{"reboot", "--at", "+30m"}, "Reboot", []any{"2026-11-22T10:30:00+01:00"}, ""},
		{[]string{"rollback"}, "Rollback", []any{uint32(0), ""}, "Snapshot 4 is the next boot.\nIt takes effect at the next reboot: speedia-update reboot\n"},
		{[]string{"rollback", "3", "--reboot", "now"}, "Rollback", []any{uint32(3), "now"}, ""},
		{[]string{"rollback", "--reboot", "next-window"}, "Rollback", []any{uint32(0), "next-window"}, ""},
		{[]string{"rollback", "--reboot", "03:00"}, "Rollback", []any{uint32(0), "2026-11-23T03:00:00+01:00"}, ""},
		{[]string{"hold"}, "Hold", []any{"", uint64(0)}, "Updates held until speedia-update unhold.\n"},
		{[]string{"hold", "--until", "3d", "--reason", "release week"}, "Hold", []any{"release week", micros(cliNow.Add(72 * time.Hour))},
			"Updates held until Wed 2026-11-25 10:00 CET: release week.\n"},
		{[]string{"hold", "--until", "2026-12-01 08:00"}, "Hold", []any{"", micros(time.Date(2026, 12, 1, 8, 0, 0, 0, cet))}, ""},
		{[]string{"unhold"}, "Unhold", nil, "Updates resumed.\n"},
		{[]string{"clear-bad", "3f9c2a"}, "ClearBad", []any{"3f9c2a"}, "Bad-update mark 3f9c2a cleared.\n"},
		{[]string{"clear-bad"}, "ClearBad", []any{""}, "Every bad-update mark cleared.\n"},
		{[]string{"history"}, "History", []any{uint32(20)}, "No history yet.\n"},
		{[]string{"history", "-n", "0"}, "History", []any{uint32(0)}, ""},
		{[]string{"reload"}, "Reload", nil, "Configuration reloaded.\n"},
		{[]string{"check"}, "Check", nil, "Found updates for 3 packages.\nPhase: idle — nothing staged\n"},
		{[]string{"--json", "check"}, "Check", nil, "{\n  \"changes\": 3\n}\n"},
		{[]string{"--json", "reboot"}, "Reboot", []any{"next-window"}, "{\n  \"at\": \"2026-11-29T03:17:00+01:00\"\n}\n"},
		{[]string{"rollback", "--json"}, "Rollback", []any{uint32(0), ""}, "{\n  \"snapshot\": 4\n}\n"},
		{[]string{"unhold", "--json"}, "Unhold", nil, ""},
		{[]string{"container", "upgrade", "db", "--image", "localhost/db:2"}, "ContainerUpgrade", []any{"db", "localhost/db:2", false},
			"Upgrading db to localhost/db:2 (stop, snapshot data, start, wait until healthy)…\n" +
				"Upgraded db: localhost/db:1 -> localhost/db:2\n" +
				"Kept until 2026-11-25 10:00 for 'speedia-update container rollback db': container db-speedia-old-1 (stopped, restart policy always disabled until a rollback), volume data (tar)\n" +
				"Note: 4 package-manager or runtime files in the old container's writable layer were left behind (the new image brings its own)\n"},
		{[]string{"container", "upgrade", "db", "--image", "localhost/db:2", "--force"}, "ContainerUpgrade", []any{"db", "localhost/db:2", true}, ""},
		{[]string{"container", "rollback", "db"}, "ContainerRollback", []any{"db"}, "db runs localhost/db:1 again, with its data from 2026-11-22 10:00.\n"},
		{[]string{"container", "prune", "db"}, "ContainerPrune", []any{"db"}, "Discarded the upgrade of db kept since 2026-11-22 10:00: old container db-speedia-old-1 and its data snapshot.\n"},
		{[]string{"container", "list"}, "Containers", nil, "No containers stopped or brought back since the daemon started.\nNo kept upgrades.\n"},
	}
	srv := startFake(t, "")
	srv.Reply("Reboot", uint64(time.Date(2026, 11, 29, 3, 17, 0, 0, cet).UnixMicro()))
	srv.Reply("Rollback", uint32(4))
	srv.Reply("Check", uint32(3))
	upg := `{"name":"db","at":"2026-11-22T09:00:00Z","keep_until":"2026-11-25T09:00:00Z","old_image":"localhost/db:1",` +
		`"new_image":"localhost/db:2","kept":"db-speedia-old-1","kept_restart":{"policy":"always"},"writable_layer":{"user":0,"churn":4},` +
		`"data":[{"kind":"volume","name":"data","path":"/v","method":"tar"}]}`
	srv.Reply("ContainerUpgrade", upg)
	srv.Reply("ContainerRollback", upg)
	srv.Reply("ContainerPrune", upg)
	srv.SetProperty("Phase", "idle")
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			c := lastCall(t, srv)
			if c.Method != tt.method || !reflect.DeepEqual(c.Args, tt.want) && len(c.Args)+len(tt.want) > 0 {
				t.Errorf("called %s%v, want %s%v", c.Method, c.Args, tt.method, tt.want)
			}
			if tt.stdout != "" && r.stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.stdout)
			}
		})
	}
}

func TestCLIStatus(t *testing.T) {
	srv := startFake(t, "")
	srv.SetProperty("Phase", "pending")
	srv.SetProperty("Strategy", "periodic")
	srv.SetProperty("BootedSnapshot", uint32(4))
	srv.SetProperty("PendingSnapshot", uint32(5))
	srv.SetProperty("LastGoodSnapshot", uint32(4))
	srv.SetProperty("NextReboot", uint64(time.Date(2026, 11, 29, 3, 17, 0, 0, cet).UnixMicro()))
	srv.SetProperty("NextRebootReason", "maintenance window Sun 03:00-05:00")
	srv.SetProperty("PendingChanges", []struct{ N, O, W, K string }{{"openssl", "3.0.14", "3.0.15", "upgrade"}})
	srv.SetProperty("ConfigError", "bad window")
	srv.Reply("Snapshots", `[{"number":5,"date":"2026-11-22T03:10:00+01:00","description":"update","state":"ready","booted":false,"default":true,"good":false}]`)

	r := runCLI(t, "status")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"Phase:       pending — snapshot 5 staged 2026-11-22 03:10, reboots Sun 2026-11-29 03:17 CET (maintenance window Sun 03:00-05:00)\n",
		"  openssl  3.0.14  3.0.15  upgrade\n",
		"Warning: the configuration on disk is not in force: bad window\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t, "status", "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stdout)
	}
	if got["phase"] != "pending" || got["pending"] != 5.0 || got["next_reboot"] != "2026-11-29T03:17:00+01:00" ||
		got["config_error"] != "bad window" {
		t.Errorf("json: %v", got)
	}
	if _, ok := got["last_check"]; ok {
		t.Errorf("a zero time is in the JSON: %v", got["last_check"])
	}
}

func TestCLIStatusFollow(t *testing.T) {
	srv := startFake(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	// Reading the status (GetAll) happens after the subscription, so the
	// fake can emit from there and the events must all arrive.
	srv.Handle("Properties.GetAll", func(...any) ([]any, *dbus.Error) {
		go func() {
			srv.Emit("PhaseChanged", "checking", "")
			srv.Emit("PhaseChanged", "staging", "3 packages")
		}()
		return nil, nil
	})
	var out strings.Builder
	e := &env{stdout: writerFunc(func(p []byte) (int, error) {
		out.Write(p)
		if strings.Contains(string(p), "staging") {
			cancel()
		}
		return len(p), nil
	}), stderr: &strings.Builder{}, now: func() time.Time { return cliNow }, loc: cet, connect: client.Connect}
	code := run(ctx, []string{"status", "--follow"}, e)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "10:00:00  checking\n10:00:00  staging: 3 packages\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("got:\n%s\nwant suffix:\n%s", out.String(), want)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestCLIApplyStreamsProgress(t *testing.T) {
	srv := startFake(t, "")
	srv.Handle("Apply", func(...any) ([]any, *dbus.Error) {
		for _, l := range []string{"Reading package lists...", "Unpacking openssl (3.0.15) ...", "Setting up openssl (3.0.15) ..."} {
			srv.Emit("Progress", l)
		}
		return []any{uint32(6)}, nil
	})
	r := runCLI(t, "apply")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if want := "Reading package lists...\nUnpacking openssl (3.0.15) ...\nSetting up openssl (3.0.15) ...\n"; r.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	if !strings.HasPrefix(r.stdout, "Staged snapshot 6.\n") {
		t.Errorf("stdout: %s", r.stdout)
	}
	r = runCLI(t, "apply", "--quiet", "--json")
	if r.code != 0 || r.stderr != "" || r.stdout != "{\n  \"snapshot\": 6\n}\n" {
		t.Errorf("quiet json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestCLIExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		method string
		args   []string
		error  string // D-Bus error name the fake returns
		code   int
		stderr string
	}{
		{"nothing to apply", "Apply", []string{"apply", "-q"}, errkind.NothingToDo.DBusName(), 3, ""},
		{"busy", "Apply", []string{"apply", "-q"}, errkind.Busy.DBusName(), 4, "speedia-update: Apply: the daemon says why\n"},
		{"no such snapshot", "Rollback", []string{"rollback", "9"}, errkind.NotFound.DBusName(), 5, ""},
		{"no such container", "ContainerUpgrade", []string{"container", "upgrade", "x", "--image", "i"}, errkind.NotFound.DBusName(), 5, ""},
		{"upgrade put back", "ContainerUpgrade", []string{"container", "upgrade", "x", "--image", "i"}, errkind.FailedName, 1,
			"speedia-update: ContainerUpgrade: the daemon says why\n"},
		{"no kept upgrade", "ContainerRollback", []string{"container", "rollback", "x"}, errkind.NotFound.DBusName(), 5, ""},
		{"files in the layer", "ContainerUpgrade", []string{"container", "upgrade", "x", "--image", "i"}, errkind.Refused.DBusName(), 6, ""},
		{"nothing to prune", "ContainerPrune", []string{"container", "prune", "x"}, errkind.NotFound.DBusName(), 5, ""},
		{"refused", "Reboot", []string{"reboot"}, errkind.Refused.DBusName(), 6, ""},
		{"held", "Check", []string{"check"}, errkind.Held.DBusName(), 6, ""},
		{"bad", "Apply", []string{"apply", "-q"}, errkind.Bad.DBusName(), 6, ""},
		{"invalid", "Reboot", []string{"reboot", "--at", "+1h"}, errkind.Invalid.DBusName(), 2, ""},
		{"nothing found", "Check", []string{"check"}, errkind.NothingToDo.DBusName(), 3, ""},
		{"daemon denies", "Hold", []string{"hold"}, "org.freedesktop.DBus.Error.AccessDenied", 7,
			"speedia-update: Hold: access denied: run as root or as a member of the speedia-admin group\n"},
		{"other failure", "Reload", []string{"reload"}, "org.freedesktop.DBus.Error.Failed", 1, ""},
	}
	srv := startFake(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Fail(tt.method, tt.error, "the daemon says why")
			r := runCLI(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if tt.stderr != "" && r.stderr != tt.stderr {
				t.Errorf("stderr %q, want %q", r.stderr, tt.stderr)
			}
			if c := lastCall(t, srv); c.Method != tt.method {
				t.Errorf("called %s", c.Method)
			}
		})
	}
	t.Run("check found none", func(t *testing.T) {
		srv.Reply("Check", uint32(0))
		r := runCLI(t, "check")
		if r.code != 3 || r.stdout != "No updates available.\n" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

func TestCLIBusDeniesAccess(t *testing.T) {
	srv := startFake(t, clienttest.DenyPolicy("Apply"))
	r := runCLI(t, "apply")
	if r.code != 7 || !strings.Contains(r.stderr, "speedia-admin") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if len(srv.Calls()) != 0 {
		t.Errorf("the call got through: %v", srv.Calls())
	}
}

func TestCLINoDaemon(t *testing.T) {
	srv := startFake(t, "")
	srv.Stop()
	r := runCLI(t, "status")
	if r.code != 8 || r.stderr != "speedia-update: status: speedia-updated is not running: systemctl start speedia-updated\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
	if r := runCLI(t, "status"); r.code != 8 {
		t.Errorf("no bus: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	srv := startFake(t, "")
	for _, args := range [][]string{
		{"bogus"},
		{"status", "--bogus"},
		{"status", "extra"},
		{"rollback", "four"},
		{"rollback", "1", "2"},
		{"rollback", "--reboot", "whenever"},
		{"reboot", "--now", "--at", "03:00"},
		{"reboot", "--at", "2020-01-01T00:00:00Z"},
		{"hold", "--until", "soon"},
		{"--timeout", "forever", "status"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if !strings.HasSuffix(r.stderr, "Run 'speedia-update --help' for usage.\n") {
				t.Errorf("stderr %q", r.stderr)
			}
		})
	}
	if c := srv.Calls(); len(c) != 0 {
		t.Errorf("a bad command line reached the daemon: %v", c)
	}
}

func TestCLITimeout(t *testing.T) {
	srv := startFake(t, "")
	release := make(chan struct{})
	defer close(release)
	srv.Handle("Apply", func(...any) ([]any, *dbus.Error) {
		<-release // never answers while the CLI waits
		return []any{uint32(1)}, nil
	})
	r := runCLI(t, "--timeout", "50ms", "apply", "-q")
	if r.code != 1 || !strings.Contains(r.stderr, "timed out") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// Shell completion offers the snapshots one could roll back to and the bad
// update IDs, read from the daemon; nothing when it cannot be reached.
func TestCompletion(t *testing.T) {
	srv := startFake(t, "")
	srv.SetProperty("BadUpdates", []struct{ ID, Summary string }{{"3f9c2a", "curl 8\t(snapshot 3)"}})
	r := runCLI(t, "__complete", "clear-bad", "")
	if r.code != 0 || !strings.Contains(r.stdout, "3f9c2a\tcurl 8 (snapshot 3)\n") {
		t.Fatalf("clear-bad completion: %+v", r)
	}
	srv.Reply("Snapshots", `[{"number":3,"date":"2026-11-15T03:10:00+01:00","description":"update","state":"ready","booted":false},`+
		`{"number":4,"date":"2026-11-22T03:10:00+01:00","description":"update","state":"ready","booted":true}]`)
	r = runCLI(t, "__complete", "rollback", "")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "3\t2026-11-15 03:10 update\n") || strings.Contains(r.stdout, "4\t") {
		t.Fatalf("rollback completion (snapshot 3, not the booted 4): %+v", r)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	if r := runCLI(t, "__complete", "clear-bad", ""); r.code != 0 || strings.TrimSpace(r.stdout) != ":4" {
		t.Fatalf("completion without a daemon: %+v", r)
	}
}
