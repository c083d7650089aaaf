//go:build integration

package health

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// TestGateOnBootedHost runs the gate inside a booted test host against its
// real systemd, breaking the host one way at a time.
func TestGateOnBootedHost(t *testing.T) {
	ctx := context.Background()
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-health-it", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "healthcheck")
	if err := testhost.BuildGo(ctx, "updater/health/testdata/healthcheck", bin); err != nil {
		t.Fatal(err)
	}
	gate, err := h.Install(bin)
	if err != nil {
		t.Fatal(err)
	}
	sh := func(t *testing.T, script string) string {
		t.Helper()
		out, err := h.Direct(ctx, "sh", "-c", script)
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return out
	}
	runGate := func(t *testing.T, args ...string) Result {
		t.Helper()
		out, err := h.Run(ctx, nil, nil, append([]string{gate}, args...)...)
		if err != nil {
			t.Fatalf("healthcheck %s: %v\n%s", args, err, out)
		}
		var res Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("healthcheck output %q: %v", out, err)
		}
		t.Logf("gate: %v; notes %q", res, res.Notes)
		return res
	}
	const base = "multi-user.target,dbus.service,systemd-journald.service,systemd-logind.service"

	// Units the cases use: an enabled daemon, an enabled oneshot that ran,
	// an idle unit and one that fails.
	h.WriteFile("/etc/systemd/system/speedia-daemon.service",
		"[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n")
	h.WriteFile("/etc/systemd/system/speedia-once.service",
		"[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
	h.WriteFile("/etc/systemd/system/speedia-idle.service", "[Service]\nExecStart=/bin/sleep infinity\n")
	h.WriteFile("/etc/systemd/system/speedia-broken.service",
		"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo broken on purpose; exit 3'\n")
	sh(t, "systemctl daemon-reload && systemctl enable --now speedia-daemon.service speedia-once.service")

	t.Run("healthy", func(t *testing.T) {
		res := runGate(t, "-critical", base+",speedia-daemon.service,speedia-once.service", "-dir", "/etc/speedia/health.d")
		if !res.OK || len(res.Checks) != 7 {
			t.Fatalf("healthy host: %v (%d checks)", res, len(res.Checks))
		}
		if !strings.HasPrefix(res.Checks[0].Detail, "system running") {
			t.Errorf("boot check %+v", res.Checks[0])
		}
		if want := (Check{"unit speedia-once.service", true, "inactive (dead), ran successfully"}); res.Checks[6] != want {
			t.Errorf("oneshot check %+v, want %+v", res.Checks[6], want)
		}
	})

	t.Run("waits for start-up", func(t *testing.T) {
		// Boot with a slow unit and the gate started before it, as a simple
		// service (so boot does not wait for the gate, which waits for boot).
		h.WriteFile("/etc/systemd/system/speedia-slow.service",
			"[Service]\nType=oneshot\nExecStart=/bin/sleep 3\n[Install]\nWantedBy=multi-user.target\n")
		h.WriteFile("/etc/systemd/system/speedia-gate.service", "[Unit]\nBefore=speedia-slow.service\n"+
			"[Service]\nExecStart="+gate+" -critical "+base+",speedia-slow.service\n"+
			"StandardOutput=file:/run/speedia-gate.json\n[Install]\nWantedBy=multi-user.target\n")
		sh(t, "systemctl daemon-reload && systemctl enable speedia-slow.service speedia-gate.service")
		defer sh(t, "systemctl disable speedia-slow.service speedia-gate.service")
		if err := h.Reboot(ctx); err != nil {
			t.Fatal(err)
		}
		// The harness saw "running" too; the gate may still be printing.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if out, _ := h.Direct(ctx, "systemctl", "is-active", "speedia-gate.service"); strings.TrimSpace(out) != "active" {
				break
			}
		}
		// The gate finishes after start-up has: it waited.
		show := sh(t, "systemctl show -p ExecMainExitTimestampMonotonic --value speedia-slow.service speedia-gate.service")
		var slowDone, gateDone int64
		if _, err := fmt.Sscan(show, &slowDone, &gateDone); err != nil || slowDone == 0 || gateDone <= slowDone {
			t.Fatalf("exit times: slow unit %d, gate %d (%v)", slowDone, gateDone, err)
		}
		var res Result
		if out := sh(t, "cat /run/speedia-gate.json"); json.Unmarshal([]byte(out), &res) != nil || !res.OK {
			t.Fatalf("gate at boot: %q", out)
		}
		if want := (Check{"unit speedia-slow.service", true, "inactive (dead), ran successfully"}); res.Checks[5] != want {
			t.Errorf("slow unit check %+v", res.Checks[5])
		}
	})

	t.Run("failed critical unit", func(t *testing.T) {
		h.Direct(ctx, "systemctl", "start", "speedia-broken.service") // fails, as meant
		defer h.Direct(ctx, "systemctl", "reset-failed", "speedia-broken.service")
		res := runGate(t, "-critical", base+",speedia-broken.service")
		want := []Check{{"unit speedia-broken.service", false, "failed, result exit-code"}}
		if res.OK || !reflect.DeepEqual(res.Failures(), want) {
			t.Fatalf("failures %+v, want %+v", res.Failures(), want)
		}
		// Not critical: the host is degraded, which the gate reports but accepts.
		res = runGate(t, "-critical", base)
		if !res.OK || res.Checks[0].Detail != "system degraded; failed units: speedia-broken.service" {
			t.Fatalf("with a non-critical failed unit: %v; boot %+v", res, res.Checks[0])
		}
	})

	t.Run("enabled critical unit stopped", func(t *testing.T) {
		sh(t, "systemctl stop speedia-daemon.service")
		defer sh(t, "systemctl start speedia-daemon.service")
		res := runGate(t, "-critical", base+",speedia-daemon.service")
		want := []Check{{"unit speedia-daemon.service", false, "not active (enabled): inactive (dead)"}}
		if res.OK || !reflect.DeepEqual(res.Failures(), want) {
			t.Fatalf("failures %+v, want %+v", res.Failures(), want)
		}
	})

	t.Run("health.d", func(t *testing.T) {
		sh(t, "mkdir -p /etc/speedia/health.d")
		defer sh(t, "rm -rf /etc/speedia/health.d")
		h.WriteFile("/etc/speedia/health.d/10-disk", "#!/bin/sh\necho checking /var\necho '/var is 99% full' >&2\nexit 1\n")
		h.WriteFile("/etc/speedia/health.d/20-ok", "#!/bin/sh\necho fine\n")
		h.WriteFile("/etc/speedia/health.d/30-web.units", "# the web stack\nspeedia-daemon\nspeedia-idle.service\n")
		h.WriteFile("/etc/speedia/health.d/README", "not a check\n")
		sh(t, "chmod 755 /etc/speedia/health.d/10-disk /etc/speedia/health.d/20-ok")
		res := runGate(t, "-critical", base)
		want := []Check{
			{"health.d/10-disk", false, "exit 1: checking /var | /var is 99% full"},
			{"health.d/30-web.units speedia-idle.service", false, "not active: inactive (dead)"},
		}
		if res.OK || !reflect.DeepEqual(res.Failures(), want) {
			t.Fatalf("failures %+v\nwant %+v", res.Failures(), want)
		}
		var passed []string
		for _, c := range res.Checks {
			if c.OK {
				passed = append(passed, c.Name)
			}
		}
		if !reflect.DeepEqual(passed[len(passed)-2:], []string{"health.d/20-ok", "health.d/30-web.units speedia-daemon.service"}) {
			t.Errorf("passed checks %q", passed)
		}
		if !reflect.DeepEqual(res.Notes, []string{"README: ignored (neither executable nor *.units)"}) {
			t.Errorf("notes %q", res.Notes)
		}
	})

	t.Run("script timeout", func(t *testing.T) {
		sh(t, "mkdir -p /etc/speedia/health.d")
		defer sh(t, "rm -rf /etc/speedia/health.d")
		h.WriteFile("/etc/speedia/health.d/10-hang", "#!/bin/sh\necho waiting for godot\nexec sleep 1000\n")
		sh(t, "chmod 755 /etc/speedia/health.d/10-hang")
		res := runGate(t, "-critical", base, "-timeout", "3s")
		f := res.Failures()
		if res.OK || len(f) != 1 || f[0].Name != "health.d/10-hang" || !strings.HasPrefix(f[0].Detail, "killed after ") ||
			!strings.HasSuffix(f[0].Detail, "health gate timed out: waiting for godot") {
			t.Fatalf("failures %+v", f)
		}
		// The listing sees speedia-daemon's sleep, but not the hung check's.
		ps := sh(t, `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f; echo; done 2>/dev/null`)
		if !strings.Contains(ps, "/bin/sleep infinity") || strings.Contains(ps, "sleep 1000") {
			t.Errorf("the hung check still runs (or the listing is blind):\n%s", ps)
		}
	})
}
