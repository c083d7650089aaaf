//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/client"
)

// The test's containers keep a log in the shared /var: a line per start and
// per stop. Podman stops them with USR1 (--stop-signal), systemd's shutdown
// would send TERM, so the log tells whether the daemon stopped them before
// the reboot ("stopped") or the reboot did ("terminated" or nothing).
const (
	ctImage   = "localhost/busybox:test"
	ctData    = "/var/lib/speedia-test"
	webPort   = "8080"
	newKernel = "6.1.0-speedia2" // installed by the kernel2 test repository
	traps     = `trap 'echo stopped >> /data/log; exit 0' USR1; trap 'echo terminated >> /data/log; exit 0' TERM; `
	// web serves /data/www on 127.0.0.1 (host network: the test host has
	// only lo).
	webCmd = `echo started >> /data/log; ` + traps +
		`httpd -f -p 127.0.0.1:` + webPort + ` -h /data/www & wait`
	// db is critical and refuses to start on a snapshot with the new kernel
	// (the host's /usr/lib/modules, read-only): it makes that update fail.
	dbCmd = `if [ -e /host-modules/` + newKernel + ` ]; then echo refused >> /data/log; exit 1; fi; ` +
		`echo started >> /data/log; ` + traps + `while :; do sleep 1 & wait; done`
)

// ctState is the part of `podman inspect` State this test reads.
type ctState struct {
	Status    string    `json:"Status"`
	Running   bool      `json:"Running"`
	ExitCode  int       `json:"ExitCode"`
	StartedAt time.Time `json:"StartedAt"`
}

func (c *cycle) podman(args ...string) string {
	c.t.Helper()
	out, err := c.h.Podman(c.ctx, args...)
	if err != nil {
		c.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cycle) ctState(name string) ctState {
	c.t.Helper()
	var st ctState
	out := c.podman("inspect", "--format", "{{json .State}}", name)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("podman inspect %s: %v\n%s", name, err, out)
	}
	return st
}

// runningSince fails unless the containers run and were (re)started after t.
func (c *cycle) runningSince(t time.Time, names ...string) {
	c.t.Helper()
	for _, n := range names {
		st := c.ctState(n)
		if !st.Running || !st.StartedAt.After(t) {
			logs, _ := c.h.Podman(c.ctx, "logs", n)
			c.t.Errorf("container %s: %+v, want running since %s; logs: %s", n, st, t.Format(time.RFC3339Nano), logs)
		}
	}
}

// ctLog is a container's start/stop log as lines.
func (c *cycle) ctLog(name string) []string {
	c.t.Helper()
	out, err := c.h.ReadFile(ctData + "/" + name + "/log")
	if err != nil {
		c.t.Fatalf("log of %s: %v", name, err)
	}
	return strings.Fields(out)
}

func (c *cycle) wantLog(name string, want ...string) {
	c.t.Helper()
	if got := c.ctLog(name); strings.Join(got, " ") != strings.Join(want, " ") {
		c.t.Errorf("container %s log: %q, want %q", name, got, want)
	}
}

// serves fetches web's page from inside the host.
func (c *cycle) serves() {
	c.t.Helper()
	var out string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, err = c.h.Direct(c.ctx, "busybox", "wget", "-qO-", "http://127.0.0.1:"+webPort+"/"); err == nil {
			break
		}
	}
	if err != nil || strings.TrimSpace(out) != "hello from web" {
		c.t.Errorf("web does not serve: %v %q", err, out)
	}
}

// lastRun is the daemon's last container stop or bring-back; it fails if
// the daemon still lists containers as stopped for a reboot.
func (c *cycle) lastRun() client.ContainerRun {
	c.t.Helper()
	out, code := c.cli("container", "list", "--json")
	var r client.Containers
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Last == nil {
		c.t.Fatalf("container list --json: exit %d: %s", code, out)
	}
	if len(r.Stopped) > 0 {
		c.t.Errorf("containers still stopped for a reboot: %v", r.Stopped)
	}
	return *r.Last
}

// journalOnFailure logs, if the test failed, what the daemon and Podman
// said in every boot (the journal is persistent).
func (c *cycle) journalOnFailure() {
	if !c.t.Failed() {
		return
	}
	dj, _ := c.h.Direct(c.ctx, "journalctl", "--no-pager", "-o", "short-precise", "-n", "300", "-u", "speedia-updated")
	pj, _ := c.h.Direct(c.ctx, "journalctl", "--no-pager", "-o", "short-precise", "-n", "300", "_COMM=podman",
		"--grep", "container (init|start|died|stop|cleanup)|error")
	c.t.Logf("journal of speedia-updated:\n%s\nPodman's container events:\n%s", dj, pj)
}

// TestContainersAcrossUpdateReboots runs the daemon with real rootful Podman
// on the booted test host: the containers it finds running are stopped
// gracefully at the reboot moment and brought back after the boot, and a
// critical container that cannot start on the new snapshot rolls the update
// back, after which all of them run again on the old snapshot.
func TestContainersAcrossUpdateReboots(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	product, err := testhost.BuildProduct(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	config := testhost.WindowConfig(time.Now().Add(-30*time.Minute)) +
		"[containers]\nsettle = \"2s\"\ntimeout = \"30s\"\nauto_upgrade = false\n"
	prepare := func(root string) error {
		// A persistent journal: each boot's daemon log stays readable.
		if err := os.MkdirAll(root+"/var/log/journal", 0o755); err != nil {
			return err
		}
		return product.Prepare(config)(root)
	}
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-containers", Podman: true, Logf: t.Logf, Prepare: prepare})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	c := &cycle{t: t, ctx: ctx, h: h}
	c.waitStatus("first check", 60*time.Second, func(s status) bool { return s.Phase == "idle" && s.LastCheckResult != "" })

	if err := h.BusyboxImage(ctx, ctImage); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"web/www", "db"} {
		if err := os.MkdirAll(fmt.Sprintf("/proc/%d/root%s/%s", h.PID(), ctData, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.WriteFile(ctData+"/web/www/index.html", "hello from web\n"); err != nil {
		t.Fatal(err)
	}
	c.podman("run", "-d", "--name", "web", "--network", "host", "--stop-signal", "USR1", "--stop-timeout", "5",
		"-v", ctData+"/web:/data", ctImage, "sh", "-c", webCmd)
	c.podman("run", "-d", "--name", "db", "--network", "none", "--stop-signal", "USR1", "--stop-timeout", "5", "--label", "speedia.critical=true",
		"-v", ctData+"/db:/data", "-v", "/usr/lib/modules:/host-modules:ro", ctImage, "sh", "-c", dbCmd)
	c.runningSince(start, "web", "db")
	c.serves()
	t.Logf("host booted with web and db running after %s", time.Since(start).Round(time.Second))

	t.Run("containers are stopped before the update reboot and come back after it", func(t *testing.T) {
		c := &cycle{t: t, ctx: ctx, h: h}
		defer c.journalOnFailure()
		if err := h.SetRepo("app2"); err != nil {
			t.Fatal(err)
		}
		before, boots, checked := c.bootID(), h.Boots(), time.Now()
		if out, code := c.cli("check"); code != 0 {
			t.Fatalf("check: exit %d: %s", code, out)
		}
		c.rebooted(before, boots)
		s := c.waitStatus("verified", 90*time.Second, func(s status) bool {
			return s.Phase == "idle" && s.Booted == 2 && s.LastGood == s.Booted
		})
		if s.LastError != "" {
			t.Errorf("last error after the verified update: %s", s.LastError)
		}
		// A graceful stop before the reboot, then a start after it.
		c.wantLog("web", "started", "stopped", "started")
		c.wantLog("db", "started", "stopped", "started")
		c.runningSince(checked, "web", "db")
		c.serves()
		run := c.lastRun()
		if run.What != "start" || len(run.Results) != 2 || run.Error != "" {
			t.Fatalf("last container run: %+v", run)
		}
		for _, r := range run.Results {
			if !r.OK || r.Action != "started" {
				t.Errorf("container %s after the reboot: %+v", r.Name, r)
			}
		}
		t.Logf("update with containers verified %s after the start", time.Since(start).Round(time.Second))
	})

	t.Run("a critical container that does not come back rolls the update back", func(t *testing.T) {
		c := &cycle{t: t, ctx: ctx, h: h}
		defer c.journalOnFailure()
		if err := h.SetRepo("kernel2"); err != nil {
			t.Fatal(err)
		}
		before, boots, checked := c.bootID(), h.Boots(), time.Now()
		if out, code := c.cli("check"); code != 0 {
			t.Fatalf("check: exit %d: %s", code, out)
		}
		c.rebooted(before, boots)
		// Booted the new snapshot, db failed the gate, rolled back, rebooted.
		deadline := time.Now().Add(90 * time.Second)
		for h.Boots() < boots+2 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if err := h.WaitRunning(ctx); err != nil {
			t.Fatal(err)
		}
		s := c.waitStatus("rolled back", 90*time.Second, func(s status) bool { return s.Phase == "idle" && s.Booted == 2 })
		if len(s.BadUpdates) != 1 || !strings.Contains(s.LastError, "container db") {
			t.Fatalf("after the rollback: %+v", s)
		}
		if _, err := h.ReadFile("/usr/lib/modules/" + newKernel + "/modules.dep"); err == nil {
			t.Fatal("the host still runs the new kernel's snapshot")
		}
		hist, _ := c.cli("history", "--json")
		if !strings.Contains(hist, `"health-failed"`) || !strings.Contains(hist, "container db") {
			t.Errorf("history does not say that db failed the health gate:\n%s", hist)
		}
		// Update reboot: both stopped; new snapshot: db refused, web came
		// up and was stopped again for the rollback reboot; old snapshot:
		// both back.
		c.wantLog("web", "started", "stopped", "started", "stopped", "started", "stopped", "started")
		c.wantLog("db", "started", "stopped", "started", "stopped", "refused", "started")
		c.runningSince(checked, "web", "db")
		c.serves()
		run := c.lastRun()
		if run.What != "start" || len(run.Results) != 2 {
			t.Fatalf("last container run: %+v", run)
		}
		for _, r := range run.Results {
			if !r.OK {
				t.Errorf("container %s after the rollback: %+v", r.Name, r)
			}
		}
		t.Logf("rollback with containers done %s after the start", time.Since(start).Round(time.Second))
	})
}
