//go:build integration

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/version"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// status is the part of `speedia-update status --json` this test reads.
type status struct {
	Phase            string `json:"phase"`
	Booted           uint32 `json:"booted"`
	Pending          uint32 `json:"pending"`
	LastGood         uint32 `json:"last_good"`
	NextReboot       *time.Time
	NextRebootRaw    json.RawMessage `json:"next_reboot"`
	NextRebootReason string          `json:"next_reboot_reason"`
	LastCheckResult  string          `json:"last_check_result"`
	LastError        string          `json:"last_error"`
	RestartNeeded    []string        `json:"restart_needed"`
	BadUpdates       []struct {
		ID string `json:"id"`
	} `json:"bad_updates"`
}

type cycle struct {
	t   *testing.T
	ctx context.Context
	h   *testhost.Host
}

// cli runs speedia-update inside the host as a client of the real daemon;
// returns its output and exit code.
func (c *cycle) cli(args ...string) (string, int) {
	c.t.Helper()
	out, err := c.h.Run(c.ctx, nil, nil, append([]string{"/usr/bin/speedia-update"}, args...)...)
	var ee *run.ExitError
	if errors.As(err, &ee) {
		return out + ee.Stderr, ee.Code
	}
	if err != nil {
		c.t.Fatalf("speedia-update %v: %v", args, err)
	}
	return out, 0
}

func (c *cycle) status() status {
	c.t.Helper()
	out, code := c.cli("status", "--json")
	if code != 0 {
		c.t.Fatalf("status: exit %d: %s", code, out)
	}
	var s status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		c.t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(s.NextRebootRaw) > 0 && string(s.NextRebootRaw) != "null" {
		var t time.Time
		if json.Unmarshal(s.NextRebootRaw, &t) == nil && !t.IsZero() {
			s.NextReboot = &t
		}
	}
	return s
}

// waitStatus polls the daemon's status until cond holds (bounded).
func (c *cycle) waitStatus(what string, limit time.Duration, cond func(status) bool) status {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s := c.status()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			out, _ := c.h.Direct(c.ctx, "journalctl", "-u", "speedia-updated", "--no-pager", "-n", "60")
			c.t.Fatalf("waiting for %s: status %+v\njournal:\n%s", what, s, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// config writes /etc/speedia/update.toml with a window that opens at
// start and reloads the daemon.
func (c *cycle) config(start time.Time) {
	c.t.Helper()
	toml := testhost.WindowConfig(start)
	if err := c.h.WriteFile("/etc/speedia/update.toml", toml); err != nil {
		c.t.Fatal(err)
	}
	if out, code := c.cli("reload"); code != 0 {
		c.t.Fatalf("reload: exit %d: %s", code, out)
	}
}

func (c *cycle) rebooted(before string, boots int) {
	c.t.Helper()
	if err := c.h.WaitReboot(c.ctx, before, boots); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cycle) bootID() string {
	c.t.Helper()
	id, err := c.h.BootID()
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

func (c *cycle) kill() {
	c.t.Helper()
	pid := c.mainPID()
	if _, err := c.h.Direct(c.ctx, "systemctl", "kill", "-s", "KILL", "speedia-updated"); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p := c.mainPID(); p != "0" && p != pid {
			if out, _ := c.h.Direct(c.ctx, "systemctl", "is-active", "speedia-updated"); strings.TrimSpace(out) == "active" {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("speedia-updated did not come back after SIGKILL")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *cycle) mainPID() string {
	out, _ := c.h.Direct(c.ctx, "systemctl", "show", "-P", "MainPID", "speedia-updated")
	return strings.TrimSpace(out)
}

// TestDaemonCycle runs the daemon as a real systemd service on the booted
// test host: unattended update in an open window, a window in the future,
// a failing admin health check that rolls back, SIGKILL in each phase, and
// the bus policy.
func TestDaemonCycle(t *testing.T) {
	ctx := context.Background()
	product, err := testhost.BuildProduct(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-daemon", Logf: t.Logf, Prepare: product.Prepare("")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	c := &cycle{t: t, ctx: ctx, h: h}
	if out, err := h.Direct(ctx, "systemctl", "is-active", "speedia-updated"); strings.TrimSpace(out) != "active" {
		j, _ := h.Direct(ctx, "journalctl", "-u", "speedia-updated", "--no-pager")
		t.Fatalf("speedia-updated is %q (%v):\n%s", out, err, j)
	}
	now := time.Now()
	c.config(now.Add(-30 * time.Minute))
	c.waitStatus("first check", 60*time.Second, func(s status) bool { return s.Phase == "idle" && s.LastCheckResult != "" })

	t.Run("metrics and reload: the release version, and keys that need a restart", func(t *testing.T) {
		hc := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", fmt.Sprintf("/proc/%d/root/run/speedia/metrics.sock", h.PID()))
			}}}
		resp, err := hc.Get("http://speedia/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := `version="` + version.Version + `"`; !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
		drop := "/etc/speedia/update.d/90-metrics.toml"
		if _, err := h.Direct(ctx, "mkdir", "-p", "/etc/speedia/update.d"); err != nil {
			t.Fatal(err)
		}
		if err := h.WriteFile(drop, "[metrics]\nlisten = \"127.0.0.1:9846\"\n"); err != nil {
			t.Fatal(err)
		}
		out, code := c.cli("reload")
		if code != 0 || !strings.Contains(out, "restart speedia-updated': metrics.listen") {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		if s := c.status(); len(s.RestartNeeded) != 1 || s.RestartNeeded[0] != "metrics.listen" {
			t.Fatalf("restart_needed %v", s.RestartNeeded)
		}
		if _, err := h.Direct(ctx, "rm", drop); err != nil {
			t.Fatal(err)
		}
		if out, code := c.cli("reload"); code != 0 || strings.Contains(out, "restart") {
			t.Fatalf("reload after undoing it: exit %d: %s", code, out)
		}
		if s := c.status(); len(s.RestartNeeded) != 0 {
			t.Fatalf("restart_needed %v after undoing the change", s.RestartNeeded)
		}
	})

	t.Run("unattended cycle in an open window", func(t *testing.T) {
		if err := h.SetRepo("app2"); err != nil {
			t.Fatal(err)
		}
		before, boots := c.bootID(), h.Boots()
		if out, code := c.cli("check"); code != 0 {
			t.Fatalf("check: exit %d: %s", code, out)
		}
		c.rebooted(before, boots)
		s := c.waitStatus("verified", 90*time.Second, func(s status) bool { return s.Phase == "idle" && s.LastGood == s.Booted })
		if s.Booted != 2 {
			t.Fatalf("booted %d, want snapshot 2", s.Booted)
		}
		if v, _ := h.ReadFile("/usr/share/speedia-testapp/version"); strings.TrimSpace(v) != "2.0" {
			t.Fatalf("app version %q after the update", v)
		}
		if _, err := h.ReadFile("/run/reboot-needed"); err == nil {
			t.Error("/run/reboot-needed left after the verified update")
		}
	})

	t.Run("window in the future: no reboot", func(t *testing.T) {
		c.config(now.Add(48 * time.Hour))
		if err := h.SetRepo("kernel2"); err != nil {
			t.Fatal(err)
		}
		boots := h.Boots()
		if out, code := c.cli("check"); code != 0 {
			t.Fatalf("check: exit %d: %s", code, out)
		}
		s := c.waitStatus("pending", 60*time.Second, func(s status) bool { return s.Phase == "pending" && s.NextReboot != nil })
		if !s.NextReboot.After(now.Add(24 * time.Hour)) {
			t.Fatalf("next reboot %v, want the window in two days", s.NextReboot)
		}
		time.Sleep(3 * time.Second)
		if h.Boots() != boots {
			t.Fatal("the host rebooted outside its window")
		}
		// Other tools (kured, motd) see the pending reboot.
		for _, marker := range []string{"/run/reboot-needed", "/var/run/reboot-required"} {
			if _, err := h.ReadFile(marker); err != nil {
				t.Errorf("%s while an update is pending: %v", marker, err)
			}
		}
		// SIGKILL while pending: same plan after the restart.
		c.kill()
		s2 := c.waitStatus("pending again", 30*time.Second, func(s status) bool { return s.Phase == "pending" })
		if s2.Pending != s.Pending || s2.NextReboot == nil || !s2.NextReboot.Equal(*s.NextReboot) {
			t.Fatalf("after SIGKILL: %+v, before %+v", s2, s)
		}
	})

	t.Run("failing health check rolls back and the update is not staged again", func(t *testing.T) {
		check := "#!/bin/sh\n# fails on the new kernel package\nv=$(dpkg-query -W -f='${Version}' speedia-testkernel)\n" +
			"[ \"$v\" = 1.0 ] || { echo \"speedia-testkernel $v is not allowed\"; exit 1; }\n"
		if err := os.MkdirAll(fmt.Sprintf("/proc/%d/root/etc/speedia/health.d", h.PID()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := h.WriteFile("/etc/speedia/health.d/10-kernel", check); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Direct(ctx, "chmod", "755", "/etc/speedia/health.d/10-kernel"); err != nil {
			t.Fatal(err)
		}
		before, boots := c.bootID(), h.Boots()
		pending := c.status().Pending
		// Opening the window now lets the pending update reboot.
		c.config(time.Now().Add(-time.Minute))
		c.rebooted(before, boots)
		// Booted the new snapshot, failed the gate, rolled back, rebooted.
		deadline := time.Now().Add(90 * time.Second)
		for h.Boots() < boots+2 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if err := h.WaitRunning(ctx); err != nil {
			t.Fatal(err)
		}
		s := c.waitStatus("rolled back", 90*time.Second, func(s status) bool { return s.Phase == "idle" && s.Booted == 2 })
		if len(s.BadUpdates) != 1 || s.LastError == "" {
			t.Fatalf("after rollback: %+v", s)
		}
		list, _ := c.cli("snapshots", "--json")
		out, code := c.cli("check")
		if code != 6 {
			t.Fatalf("check of the bad update: exit %d, want 6: %s", code, out)
		}
		if list2, _ := c.cli("snapshots", "--json"); list2 != list {
			t.Fatalf("the bad update was staged again:\n%s\n%s", list, list2)
		}
		hist, _ := c.cli("history", "--json")
		for _, ev := range []string{`"staged"`, `"rebooting"`, `"health-failed"`, `"rolled-back"`, `"skipped"`, `"verified"`} {
			if !strings.Contains(hist, ev) {
				t.Errorf("history lacks %s:\n%s", ev, hist)
			}
		}
		if !regexp.MustCompile(fmt.Sprintf(`"snapshot":\s*%d\b`, pending)).MatchString(hist) {
			t.Errorf("history does not name snapshot %d", pending)
		}
		if _, err := h.Direct(ctx, "rm", "/etc/speedia/health.d/10-kernel"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("non-root callers read but may not change", func(t *testing.T) {
		nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
		out, err := h.Run(ctx, nil, nil, append(nobody, "/usr/bin/speedia-update", "status")...)
		if err != nil {
			t.Fatalf("status as nobody: %v %s", err, out)
		}
		calls := [][]string{{"Check"}, {"Apply"}, {"Reboot", "s", "now"}, {"CancelReboot"}, {"Rollback", "us", "0", ""},
			{"Hold", "st", "x", "0"}, {"Unhold"}, {"ClearBad", "s", ""}, {"Reload"}}
		for _, call := range calls {
			args := append(append(nobody, "busctl", "call", "org.speedia.Update1", "/org/speedia/Update1", "org.speedia.Update1"), call...)
			out, err := h.Run(ctx, nil, nil, args...)
			var ee *run.ExitError
			if !errors.As(err, &ee) || !strings.Contains(out+ee.Stderr, "ccess denied") && !strings.Contains(out+ee.Stderr, "AccessDenied") {
				t.Errorf("%s as nobody: %v %s", call[0], err, out)
			}
		}
		for _, call := range [][]string{{"History", "u", "0"}, {"Snapshots"}} {
			args := append(append(nobody, "busctl", "call", "org.speedia.Update1", "/org/speedia/Update1", "org.speedia.Update1"), call...)
			if out, err := h.Run(ctx, nil, nil, args...); err != nil {
				t.Errorf("%s as nobody: %v %s", call[0], err, out)
			}
		}
		if _, code := c.cli("hold", "--reason", "test"); code != 0 {
			t.Error("root cannot hold")
		}
		if _, code := c.cli("unhold"); code != 0 {
			t.Error("root cannot unhold")
		}
	})

	t.Run("SIGKILL while checking, staging, rebooting and verifying resumes", func(t *testing.T) {
		// Real hooks hold each phase open until the test releases it.
		gate := func(name string) string {
			return fmt.Sprintf("while [ ! -e /var/lib/speedia-test/go-%s ]; do sleep 0.2; done", name)
		}
		release := func(name string) {
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/var/lib/speedia-test/go-%s", h.PID(), name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(fmt.Sprintf("/proc/%d/root/var/lib/speedia-test", h.PID()), 0o755); err != nil {
			t.Fatal(err)
		}
		apt := fmt.Sprintf("APT::Update::Pre-Invoke { %q; };\nDPkg::Pre-Invoke { %q; };\n", gate("check"), gate("stage"))
		if err := h.WriteFile("/etc/apt/apt.conf.d/99speedia-test-gate", apt); err != nil {
			t.Fatal(err)
		}
		if err := h.WriteFile("/etc/speedia/health.d/20-gate", "#!/bin/sh\n"+gate("verify")+"\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Direct(ctx, "chmod", "755", "/etc/speedia/health.d/20-gate"); err != nil {
			t.Fatal(err)
		}
		// A long reboot delay keeps the rebooting phase open.
		c.config(time.Now().Add(-time.Minute))
		cfg, _ := h.ReadFile("/etc/speedia/update.toml")
		if err := h.WriteFile("/etc/speedia/update.toml", strings.Replace(cfg, `delay = "1s"`, `delay = "1h"`, 1)); err != nil {
			t.Fatal(err)
		}
		if out, code := c.cli("reload"); code != 0 {
			t.Fatalf("reload: %s", out)
		}
		if err := h.SetRepo("bulk2"); err != nil {
			t.Fatal(err)
		}
		go c.h.Run(ctx, nil, nil, "/usr/bin/speedia-update", "check") // returns when the daemon dies
		c.waitStatus("checking", 30*time.Second, func(s status) bool { return s.Phase == "checking" })
		c.kill()
		c.waitStatus("checking again", 30*time.Second, func(s status) bool { return s.Phase == "checking" })
		release("check")
		c.waitStatus("staging", 60*time.Second, func(s status) bool { return s.Phase == "staging" })
		c.kill()
		c.waitStatus("staging again", 60*time.Second, func(s status) bool { return s.Phase == "staging" })
		release("stage")
		s := c.waitStatus("rebooting", 120*time.Second, func(s status) bool { return s.Phase == "rebooting" })
		c.kill()
		s2 := c.waitStatus("still rebooting", 30*time.Second, func(s status) bool { return s.Phase == "rebooting" })
		if s2.Pending != s.Pending {
			t.Fatalf("pending %d became %d", s.Pending, s2.Pending)
		}
		if out, _ := h.Direct(ctx, "busctl", "get-property", "org.freedesktop.login1", "/org/freedesktop/login1",
			"org.freedesktop.login1.Manager", "ScheduledShutdown"); !strings.Contains(out, "reboot") {
			t.Fatalf("logind lost the scheduled reboot: %s", out)
		}
		if out, code := c.cli("cancel"); code != 0 {
			t.Fatalf("cancel: %s", out)
		}
		before, boots := c.bootID(), h.Boots()
		if out, code := c.cli("reboot", "--now"); code != 0 {
			t.Fatalf("reboot --now: %s", out)
		}
		c.rebooted(before, boots)
		c.waitStatus("verifying", 60*time.Second, func(s status) bool { return s.Phase == "verifying" })
		c.kill()
		c.waitStatus("verifying again", 60*time.Second, func(s status) bool { return s.Phase == "verifying" })
		release("verify")
		s = c.waitStatus("verified", 60*time.Second, func(s status) bool { return s.Phase == "idle" })
		if s.Booted != s2.Pending || s.LastGood != s.Booted {
			t.Fatalf("after the cycle: %+v (pending was %d)", s, s2.Pending)
		}
		if v, _ := h.ReadFile("/usr/share/speedia-testbulk/f0"); !strings.HasPrefix(v, "2.0-0") {
			t.Fatalf("bulk package not updated: %.20q", v)
		}
	})
}
