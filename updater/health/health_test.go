package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	running := unitState{Load: "loaded", Active: "active", Sub: "running", FileState: "enabled", Type: "simple", Result: "success", Ran: true}
	oneshotDone := unitState{Load: "loaded", Active: "inactive", Sub: "dead", FileState: "enabled", Type: "oneshot", Result: "success", Ran: true}
	neverRan := unitState{Load: "loaded", Active: "inactive", Sub: "dead", FileState: "enabled", Type: "oneshot", Result: "success"}
	skipped := unitState{Load: "loaded", Active: "inactive", Sub: "dead", FileState: "enabled", Type: "simple", Result: "success", ConditionFailed: true}
	failed := unitState{Load: "loaded", Active: "failed", Sub: "failed", FileState: "static", Type: "oneshot", Result: "exit-code", Ran: true}
	staticIdle := unitState{Load: "loaded", Active: "inactive", Sub: "dead", FileState: "static", Type: "simple", Result: "success"}
	disabledIdle := staticIdle
	disabledIdle.FileState = "disabled"
	restarting := unitState{Load: "loaded", Active: "activating", Sub: "auto-restart", FileState: "enabled", Type: "simple", Result: "exit-code", Ran: true}
	targetUp := unitState{Load: "loaded", Active: "active", Sub: "active", FileState: "static"}
	targetDown := unitState{Load: "loaded", Active: "inactive", Sub: "dead", FileState: "static"}
	notFound := unitState{Load: "not-found", Active: "inactive", Sub: "dead"}
	masked := unitState{Load: "masked", Active: "inactive", Sub: "dead", FileState: "masked"}

	for _, tc := range []struct {
		name   string
		unit   string
		u      unitState
		r      rule
		ok     bool
		detail string
	}{
		{"running service", "a.service", running, critical, true, "active (running)"},
		{"oneshot that ran", "a.service", oneshotDone, critical, true, "inactive (dead), ran successfully"},
		{"enabled oneshot that never ran", "a.service", neverRan, critical, false, "not active (enabled): inactive (dead)"},
		{"enabled, condition skipped", "a.service", skipped, critical, false, "not active (enabled): inactive (dead), skipped: condition not met"},
		{"failed", "a.service", failed, critical, false, "failed, result exit-code"},
		{"failed, listed", "a.service", failed, listed, false, "failed, result exit-code"},
		{"static and idle: not failed is enough", "a.service", staticIdle, critical, true, "inactive (dead)"},
		{"disabled and idle", "a.service", disabledIdle, critical, true, "inactive (dead)"},
		{"disabled and idle, listed", "a.service", disabledIdle, listed, false, "not active: inactive (dead)"},
		{"crash loop", "a.service", restarting, critical, false, "not active (enabled): activating (auto-restart), result exit-code"},
		{"target up", "multi-user.target", targetUp, critical, true, "active"},
		{"target down", "multi-user.target", targetDown, critical, false, "not active (static): inactive (dead)"},
		{"not found", "nope.service", notFound, critical, false, "not loaded: not-found"},
		{"masked", "a.service", masked, critical, false, "not loaded: masked"},
		{"listed and running", "a.service", running, listed, true, "active (running)"},
	} {
		ok, detail := judge(tc.unit, tc.u, tc.r)
		if ok != tc.ok || detail != tc.detail {
			t.Errorf("%s: judge = %v, %q; want %v, %q", tc.name, ok, detail, tc.ok, tc.detail)
		}
	}
}

func TestParseUnits(t *testing.T) {
	in := `# web stack
nginx.service
  postgresql@15-main.service   # the database
sshd
podman.socket docker.socket
multi-user.target

bad/name
getty@.service
@.service
`
	units, bad, err := parseUnits(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	wantUnits := []string{"nginx.service", "postgresql@15-main.service", "sshd.service", "podman.socket", "docker.socket", "multi-user.target"}
	wantBad := []string{
		`line 8: "bad/name" is not a unit name`,
		`line 9: "getty@.service" is not a unit name`,
		`line 10: "@.service" is not a unit name`,
	}
	if !reflect.DeepEqual(units, wantUnits) {
		t.Errorf("units = %q\nwant %q", units, wantUnits)
	}
	if !reflect.DeepEqual(bad, wantBad) {
		t.Errorf("bad = %q\nwant %q", bad, wantBad)
	}
}

func TestUnitName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"ssh", "ssh.service", true},
		{"ssh.service", "ssh.service", true},
		{"dev-sda1.device", "dev-sda1.device", true},
		{"foo.bar", "foo.bar.service", true},
		{`var-lib\x2dfoo.mount`, `var-lib\x2dfoo.mount`, true},
		{"getty@tty1", "getty@tty1.service", true},
		{"getty@", "", false},
		{".service", "", false},
		{"a b", "", false},
		{"ü.service", "", false},
		{strings.Repeat("a", 256), "", false},
	} {
		got, ok := unitName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("unitName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func write(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-disk"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(dir, "20-web.units"), "nginx\n", 0o644)
	write(t, filepath.Join(dir, "30-exec.units"), "#!/bin/sh\n", 0o700) // executable wins
	write(t, filepath.Join(dir, "README"), "docs", 0o644)
	write(t, filepath.Join(dir, "web.conf"), "nginx\n", 0o644)
	write(t, filepath.Join(dir, "10-disk~"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(dir, "10-disk.dpkg-old"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(dir, ".10-disk.swp"), "x", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "10-disk"), filepath.Join(dir, "40-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(dir, "50-dangling")); err != nil {
		t.Fatal(err)
	}

	entries, notes, err := scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{"10-disk", filepath.Join(dir, "10-disk"), executable},
		{"20-web.units", filepath.Join(dir, "20-web.units"), unitList},
		{"30-exec.units", filepath.Join(dir, "30-exec.units"), executable},
		{"40-link", filepath.Join(dir, "40-link"), executable},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("entries = %+v\nwant %+v", entries, want)
	}
	wantNotes := []string{
		"10-disk.dpkg-old: ignored (backup file)",
		"10-disk~: ignored (backup file)",
		"50-dangling: ignored (stat " + filepath.Join(dir, "50-dangling") + ": no such file or directory)",
		"README: ignored (neither executable nor *.units)",
		"sub: ignored (directory)",
		"web.conf: ignored (neither executable nor *.units)",
	}
	if !reflect.DeepEqual(notes, wantNotes) {
		t.Errorf("notes = %q\nwant %q", notes, wantNotes)
	}

	for _, missing := range []string{"", filepath.Join(dir, "nope")} {
		if e, n, err := scan(missing); e != nil || n != nil || err != nil {
			t.Errorf("scan(%q) = %v, %v, %v; want nothing", missing, e, n, err)
		}
	}
	if _, _, err := scan(filepath.Join(dir, "README")); err == nil {
		t.Error("scan of a file: no error")
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check")
	write(t, path, "#!/bin/sh\n"+body+"\n", 0o755)
	return path
}

func TestRunExecutable(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
		detail     string
	}{
		{"pass", "echo all good", true, "exit 0: all good"},
		{"pass quietly", "true", true, "exit 0"},
		{"fail with output", "for i in 1 2 3 4 5 6 7; do echo line $i; done; echo oops >&2; exit 1", false,
			"exit 1: line 4 | line 5 | line 6 | line 7 | oops"},
		{"exit code", "exit 42", false, "exit 42"},
		{"signal", "kill -TERM $$", false, "killed by signal terminated"},
		{"minimal environment", `[ "$PATH" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ] && [ -z "$HOME$NOTIFY_SOCKET" ] && [ "$(pwd)" = / ] && [ "$SPEEDIA_HEALTH_CHECK" = 1 ] || { env; exit 1; }`, true, "exit 0"},
		{"stdin is empty", "read x && exit 1; exit 0", true, "exit 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := runExecutable(context.Background(), "health.d/check", script(t, tc.body))
			if c.Name != "health.d/check" || c.OK != tc.ok || c.Detail != tc.detail {
				t.Errorf("got %+v; want ok %v, detail %q", c, tc.ok, tc.detail)
			}
		})
	}
}

func TestRunExecutableTimeout(t *testing.T) {
	// sleep 1000 stands for "never": the check can only end by the deadline.
	ctx, cancel := context.WithTimeoutCause(context.Background(), 100*time.Millisecond, ErrTimeout)
	defer cancel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := runExecutable(ctx, "x", script(t, "echo started; sleep 1000 & echo $! > "+pidFile+"; wait"))
	if c.OK || !strings.HasPrefix(c.Detail, "killed after ") || !strings.HasSuffix(c.Detail, ErrTimeout.Error()+": started") {
		t.Fatalf("got %+v", c)
	}
	assertGone(t, pidFile)

	// No time left: not even started.
	c = runExecutable(ctx, "x", script(t, "touch "+pidFile+".ran"))
	if c.OK || c.Detail != "not run: "+ErrTimeout.Error() {
		t.Fatalf("after the deadline: %+v", c)
	}
	if _, err := os.Stat(pidFile + ".ran"); err == nil {
		t.Fatal("ran after the deadline")
	}
}

func TestRunExecutableLeftoverChild(t *testing.T) {
	// The check passes, but its background child keeps stdout open: the
	// gate does not wait for it (beyond WaitDelay) and kills it.
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := runExecutable(context.Background(), "x", script(t, "sleep 1000 & echo $! > "+pidFile+"; echo done"))
	if !c.OK || c.Detail != "exit 0: done" {
		t.Fatalf("got %+v", c)
	}
	assertGone(t, pidFile)
}

// assertGone checks that the process whose PID is in file has ended.
func assertGone(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	// Killed and reaped by init, or a zombie waiting for it: either way not running.
	for range 100 {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %s still running", pid)
}

func TestTail(t *testing.T) {
	var tl tail
	big := strings.Repeat("a", maxOutput-1) + "\n"
	tl.Write([]byte("first line\n"))
	tl.Write([]byte(big))
	tl.Write([]byte("last\n"))
	s := tl.String()
	if len(s) != maxOutput || !strings.HasSuffix(s, "a\nlast\n") || strings.Contains(s, "first") {
		t.Fatalf("tail kept %d bytes ending %q", len(s), s[len(s)-10:])
	}
	var huge tail
	if n, _ := huge.Write([]byte(strings.Repeat("b", 3*maxOutput) + "end")); n != 3*maxOutput+3 {
		t.Fatalf("Write returned %d", n)
	}
	if s := huge.String(); len(s) != maxOutput || !strings.HasSuffix(s, "end") {
		t.Fatalf("huge tail %d bytes", len(s))
	}
}

// fakeSystemd answers from a script of system states and a unit table.
type fakeSystemd struct {
	states []string // returned in turn; the last one repeats
	units  map[string]unitState
	failed []string
	jobs   []string
	closed bool
}

func (f *fakeSystemd) SystemState(context.Context) (string, error) {
	s := f.states[0]
	if len(f.states) > 1 {
		f.states = f.states[1:]
	}
	return s, nil
}

func (f *fakeSystemd) Unit(_ context.Context, name string) (unitState, error) {
	if u, ok := f.units[name]; ok {
		return u, nil
	}
	return unitState{Load: "not-found", Active: "inactive", Sub: "dead"}, nil
}

func (f *fakeSystemd) FailedUnits(context.Context) ([]string, error) { return f.failed, nil }
func (f *fakeSystemd) Jobs(context.Context) ([]string, error)        { return f.jobs, nil }
func (f *fakeSystemd) Close()                                        { f.closed = true }

var (
	upService   = unitState{Load: "loaded", Active: "active", Sub: "running", FileState: "enabled", Type: "notify", Result: "success", Ran: true}
	downService = unitState{Load: "loaded", Active: "failed", Sub: "failed", FileState: "enabled", Type: "simple", Result: "exit-code", Ran: true}
	upTarget    = unitState{Load: "loaded", Active: "active", Sub: "active", FileState: "static"}
)

func gate(cfg Config, sys *fakeSystemd, extras ...Extra) *Gate {
	g := New(cfg, extras...)
	g.connect = func(context.Context) (systemd, error) { return sys, nil }
	g.sleep = func(context.Context, time.Duration) error { return nil }
	return g
}

func names(cs []Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestGateHealthy(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-ok"), "#!/bin/sh\necho fine\n", 0o755)
	write(t, filepath.Join(dir, "20-web.units"), "# the web stack\nnginx\n", 0o644)
	write(t, filepath.Join(dir, "notes.txt"), "", 0o644)
	sys := &fakeSystemd{
		states: []string{"initializing", "starting", "starting", "running"},
		units:  map[string]unitState{"multi-user.target": upTarget, "dbus.service": upService, "nginx.service": upService},
	}
	var extraRan bool
	g := gate(Config{CriticalUnits: []string{"multi-user.target", "dbus.service"}, Dir: dir}, sys,
		Extra{Name: "containers", Run: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			extraRan = true
			return nil
		}})
	res, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || len(res.Failures()) != 0 {
		t.Fatalf("not healthy: %v", res)
	}
	want := []string{"boot", "unit multi-user.target", "unit dbus.service", "containers", "health.d/10-ok", "health.d/20-web.units nginx.service"}
	if got := names(res.Checks); !reflect.DeepEqual(got, want) {
		t.Errorf("checks %q\nwant %q", got, want)
	}
	if res.Checks[0].Detail != "system running" || !extraRan || !sys.closed {
		t.Errorf("boot %q, extra ran %v, closed %v", res.Checks[0].Detail, extraRan, sys.closed)
	}
	if !reflect.DeepEqual(res.Notes, []string{"notes.txt: ignored (neither executable nor *.units)"}) {
		t.Errorf("notes %q", res.Notes)
	}
	if res.String() != "healthy (6 checks)" {
		t.Errorf("String() = %q", res.String())
	}
}

func TestGateReportsEveryFailure(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-bad"), "#!/bin/sh\necho disk full\nexit 1\n", 0o755)
	write(t, filepath.Join(dir, "20-good"), "#!/bin/sh\nexit 0\n", 0o755)
	write(t, filepath.Join(dir, "30-web.units"), "nginx\nbroken/name\nmissing\n", 0o644)
	write(t, filepath.Join(dir, "40-empty.units"), "# nothing yet\n", 0o644)
	sys := &fakeSystemd{
		states: []string{"degraded"},
		failed: []string{"app.service"},
		units:  map[string]unitState{"multi-user.target": upTarget, "app.service": downService, "nginx.service": upService},
	}
	g := gate(Config{CriticalUnits: []string{"multi-user.target", "app.service"}, Dir: dir}, sys,
		Extra{Name: "containers", Run: func(context.Context) error { return errors.New("web: exited (1)") }})
	res, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK {
		t.Fatal("healthy despite failures")
	}
	want := []Check{
		{"unit app.service", false, "failed, result exit-code"},
		{"containers", false, "web: exited (1)"},
		{"health.d/10-bad", false, "exit 1: disk full"},
		{"health.d/30-web.units", false, `line 2: "broken/name" is not a unit name`},
		{"health.d/30-web.units missing.service", false, "not loaded: not-found"},
	}
	if got := res.Failures(); !reflect.DeepEqual(got, want) {
		t.Errorf("failures:\n got %+v\nwant %+v", got, want)
	}
	if res.Checks[0] != (Check{"boot", true, "system degraded; failed units: app.service"}) {
		t.Errorf("boot check %+v", res.Checks[0])
	}
	if len(res.Checks) != 9 {
		t.Errorf("%d checks, want 9 (the passing ones too): %q", len(res.Checks), names(res.Checks))
	}
	if !reflect.DeepEqual(res.Notes, []string{"40-empty.units: lists no units"}) {
		t.Errorf("notes %q", res.Notes)
	}
	if !strings.HasPrefix(res.String(), "unhealthy: unit app.service: failed, result exit-code; containers: ") {
		t.Errorf("String() = %q", res.String())
	}
}

func TestGateStartup(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(t.TempDir(), "ran")
	write(t, filepath.Join(dir, "10-check"), "#!/bin/sh\ntouch "+ran+"\n", 0o755)
	for _, tc := range []struct {
		name    string
		sys     *fakeSystemd
		timeout time.Duration
		boot    Check
		scripts bool // whether the health.d check ran
	}{
		{"still starting at the deadline", &fakeSystemd{states: []string{"starting"}, jobs: []string{"slow.service/start (running)", "multi-user.target/start (waiting)"}},
			time.Nanosecond, Check{"boot", false, "still starting after 1ns; waiting for: slow.service/start (running), multi-user.target/start (waiting)"}, false},
		{"rescue mode", &fakeSystemd{states: []string{"starting", "maintenance"}}, time.Hour,
			Check{"boot", false, "system maintenance"}, true},
		{"shutting down", &fakeSystemd{states: []string{"stopping"}}, time.Hour,
			Check{"boot", false, "system stopping"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(ran)
			tc.sys.units = map[string]unitState{"multi-user.target": upTarget}
			g := gate(Config{CriticalUnits: []string{"multi-user.target"}, Dir: dir, Timeout: tc.timeout}, tc.sys)
			res, err := g.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.Checks[0] != tc.boot {
				t.Fatalf("OK %v, boot %+v; want %+v", res.OK, res.Checks[0], tc.boot)
			}
			// The unit states are still read and reported.
			if res.Checks[1] != (Check{"unit multi-user.target", true, "active"}) {
				t.Errorf("unit check %+v", res.Checks[1])
			}
			_, err = os.Stat(ran)
			if ran := err == nil; ran != tc.scripts {
				t.Errorf("script ran %v, want %v (%+v)", ran, tc.scripts, res.Checks[2])
			}
			if !tc.scripts && res.Checks[2].Detail != "not run: "+ErrTimeout.Error() {
				t.Errorf("script check %+v", res.Checks[2])
			}
		})
	}
}

func TestGateWithoutSystemd(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-ok"), "#!/bin/sh\nexit 0\n", 0o755)
	attempts := 0
	g := New(Config{CriticalUnits: []string{"dbus.service"}, Dir: dir, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The gate keeps trying to connect until its deadline; this fake deadline
	// is the third sleep.
	gctx, gcancel := context.WithCancelCause(ctx)
	g.connect = func(context.Context) (systemd, error) {
		attempts++
		return nil, fmt.Errorf("dial unix /run/dbus/system_bus_socket: no such file (%d)", attempts)
	}
	g.sleep = func(context.Context, time.Duration) error {
		if attempts == 3 {
			gcancel(ErrTimeout)
		}
		return gctx.Err()
	}
	sys, boot := g.waitStarted(gctx, time.Hour)
	if sys != nil || boot.OK || boot.Detail != "cannot reach systemd: dial unix /run/dbus/system_bus_socket: no such file (3)" {
		t.Fatalf("waitStarted = %v, %+v", sys, boot)
	}
	if c := unitCheck(ctx, nil, "unit dbus.service", "dbus.service", critical); c.OK || c.Detail != "systemd unreachable" {
		t.Fatalf("unit check %+v", c)
	}
}

func TestGateCallerGivesUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := gate(Config{}, &fakeSystemd{states: []string{"starting"}})
	if _, err := g.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
