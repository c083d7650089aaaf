//go:build integration

package units_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/units"
	"github.com/speedia/host/updater/msgid"
	"github.com/speedia/host/updater/run"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// unitHost is a booted test host with the units installed (and a stand-in
// daemon as /usr/bin/speedia-updated), as an image build would install them.
type unitHost struct {
	t *testing.T
	h *testhost.Host
}

func (u unitHost) sh(args ...string) string {
	u.t.Helper()
	out, err := u.h.Direct(context.Background(), args...)
	if err != nil {
		u.t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out)
}

// as runs a command inside the host as uid/gid 65534 with the given extra
// groups; returns stdout and stderr.
func (u unitHost) as(groups string, args ...string) (string, error) {
	g := "--clear-groups"
	if groups != "" {
		g = "--groups=" + groups
	}
	out, err := u.h.Direct(context.Background(), append([]string{"setpriv", "--reuid=65534", "--regid=65534", g}, args...)...)
	var ee *run.ExitError
	if errors.As(err, &ee) {
		return out, fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return out, err
}

func (u unitHost) show(prop string) string {
	return u.sh("systemctl", "show", "-P", prop, units.Service)
}

// waitFor polls the host until cond holds: systemd acts asynchronously.
func (u unitHost) waitFor(what string, cond func() bool) {
	u.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			u.t.Fatalf("timed out waiting for %s; journal:\n%s", what, u.sh("journalctl", "-u", units.Service, "--no-pager", "-n", "30"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deniedByPolicy tells dbus-daemon's refusals (busctl prints the message
// only) from the daemon's own errors.
func deniedByPolicy(err error) bool {
	for _, s := range []string{"Rejected send message", "due to security policies", "Access denied", "AccessDenied"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

func TestUnitsOnBootedHost(t *testing.T) {
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "speedia-updated")
	if err := testhost.BuildGo(ctx, "units/internal/testdaemon", bin); err != nil {
		t.Fatal(err)
	}
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-units", Logf: t.Logf, Prepare: func(root string) error {
		if err := units.Install(root, map[string]string{"speedia-updated": bin}); err != nil {
			return err
		}
		// The step docs/units.md leaves to the image builder.
		if out, err := exec.Command("journalctl", "--root="+root, "--update-catalog").CombinedOutput(); err != nil {
			return fmt.Errorf("journalctl --update-catalog: %v: %s", err, out)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("unit", func(t *testing.T) {
		u := unitHost{t, h}
		if cat := u.sh("systemctl", "cat", units.Service); !strings.Contains(cat, "ExecStart=/usr/bin/speedia-updated daemon") {
			t.Errorf("systemctl cat:\n%s", cat)
		}
		if out, err := h.Direct(ctx, "systemd-analyze", "verify", units.Service); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		// Enabled by the installer's link, started at boot, ready (Type=notify).
		u.waitFor("the daemon to start", func() bool { return u.show("ActiveState") == "active" })
		if got := u.sh("systemctl", "is-enabled", units.Service); got != "enabled" {
			t.Errorf("is-enabled = %q", got)
		}
		// The preset enables it again after an admin's disable.
		u.sh("systemctl", "disable", units.Service)
		u.sh("systemctl", "preset", units.Service)
		if got := u.sh("systemctl", "is-enabled", units.Service); got != "enabled" {
			t.Errorf("after preset: is-enabled = %q", got)
		}
	})

	// The first-boot unit ran at boot, found no config drive and marked the
	// first boot done (image/configdrive's integration test runs it with a
	// drive).
	t.Run("firstboot unit", func(t *testing.T) {
		u := unitHost{t, h}
		show := func(prop string) string { return u.sh("systemctl", "show", "-P", prop, units.Firstboot) }
		if got := show("ActiveState") + " " + show("Result"); got != "active success" {
			t.Errorf("state %q; journal:\n%s", got, u.sh("journalctl", "-u", units.Firstboot, "--no-pager"))
		}
		if got := u.sh("cat", "/var/lib/speedia/firstboot.done"); got != "source: none" {
			t.Errorf("done marker: %q", got)
		}
		// In sysinit, before what reads its work.
		if got := show("WantedBy"); got != "sysinit.target" {
			t.Errorf("WantedBy = %q", got)
		}
		before := " " + show("Before") + " "
		for _, unit := range []string{"sysinit.target", "network-pre.target", "ssh.service", "systemd-user-sessions.service", units.Service} {
			if !strings.Contains(before, " "+unit+" ") {
				t.Errorf("not ordered before %s: Before=%s", unit, before)
			}
		}
		u.sh("systemctl", "disable", units.Firstboot)
		if got, _ := h.Direct(ctx, "systemctl", "is-enabled", units.Firstboot); strings.TrimSpace(got) != "disabled" {
			t.Errorf("after disable: is-enabled = %q", got)
		}
		u.sh("systemctl", "preset", units.Firstboot)
		if got := u.sh("systemctl", "is-enabled", units.Firstboot); got != "enabled" {
			t.Errorf("after preset: is-enabled = %q", got)
		}
	})

	t.Run("tmpfiles and sysusers", func(t *testing.T) {
		u := unitHost{t, h}
		for dir, want := range map[string]string{
			"/var/lib/speedia":      "700 root root directory",
			"/run/speedia":          "755 root root directory",
			"/etc/speedia":          "755 root root directory",
			"/etc/speedia/update.d": "755 root root directory",
			"/etc/speedia/health.d": "755 root root directory",
		} {
			if got := u.sh("stat", "-c", "%a %U %G %F", dir); got != want {
				t.Errorf("%s: %q, want %q", dir, got, want)
			}
		}
		if got := u.sh("getent", "group", "speedia-admin"); !strings.HasPrefix(got, "speedia-admin:x:") {
			t.Errorf("getent group speedia-admin = %q", got)
		}
	})

	t.Run("bus policy", func(t *testing.T) {
		u := unitHost{t, h}
		gid := strings.Split(u.sh("getent", "group", "speedia-admin"), ":")[2]
		busctl := []string{"busctl", "call", "org.speedia.Update1", "/org/speedia/Update1"}
		apply := append(busctl, "org.speedia.Update1", "Apply")
		for _, tc := range []struct {
			name   string
			root   bool
			groups string
			args   []string
			denied bool
			want   string
		}{
			{"root Apply", true, "", apply, false, "u 7"},
			{"root Reload", true, "", append(busctl, "org.speedia.Update1", "Reload"), false, ""},
			{"nobody Apply", false, "", apply, true, ""},
			{"nobody Reload", false, "", append(busctl, "org.speedia.Update1", "Reload"), true, ""},
			{"nobody History", false, "", append(busctl, "org.speedia.Update1", "History", "u", "0"), false, `s "[]"`},
			{"nobody Snapshots", false, "", append(busctl, "org.speedia.Update1", "Snapshots"), false, `s "[]"`},
			{"nobody GetAll", false, "", append(busctl, "org.freedesktop.DBus.Properties", "GetAll", "s", "org.speedia.Update1"), false, `"Phase" s "idle"`},
			{"nobody Get", false, "", append(busctl, "org.freedesktop.DBus.Properties", "Get", "ss", "org.speedia.Update1", "Phase"), false, `v s "idle"`},
			{"nobody Set", false, "", append(busctl, "org.freedesktop.DBus.Properties", "Set", "ssv", "org.speedia.Update1", "Phase", "s", "x"), true, ""},
			{"nobody Introspect", false, "", append(busctl, "org.freedesktop.DBus.Introspectable", "Introspect"), false, "History"},
			{"nobody Ping", false, "", append(busctl, "org.freedesktop.DBus.Peer", "Ping"), false, ""},
			{"nobody owns the name", false, "", []string{"busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su", "org.speedia.Update1", "4"}, true, ""},
			{"speedia-admin Apply", false, gid, apply, false, "u 7"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out string
				var err error
				if tc.root {
					out, err = h.Direct(ctx, tc.args...)
				} else {
					out, err = u.as(tc.groups, tc.args...)
				}
				switch {
				case tc.denied && err == nil:
					t.Fatalf("allowed: %s", out)
				case tc.denied && !deniedByPolicy(err):
					t.Fatalf("failed, but not by the bus policy: %v", err)
				case tc.denied:
					t.Logf("denied: %v", err)
				case err != nil:
					t.Fatalf("%v", err)
				case !strings.Contains(out, tc.want):
					t.Fatalf("output %q lacks %q", out, tc.want)
				}
			})
		}
		if got := u.sh("cat", "/run/speedia/test-reloads"); got != "1" {
			t.Errorf("reloads = %q: a denied Reload reached the daemon", got)
		}
		// systemctl reload goes through ExecReload (busctl as root).
		u.sh("systemctl", "reload", units.Service)
		if got := u.sh("cat", "/run/speedia/test-reloads"); got != "2" {
			t.Errorf("after systemctl reload: reloads = %q", got)
		}
		if out, err := u.as("", "/usr/bin/speedia-updated", "watch"); err != nil || !strings.Contains(out, "PhaseChanged") {
			t.Errorf("an unprivileged client got no signal: %q, %v", out, err)
		}
	})

	t.Run("metrics socket", func(t *testing.T) {
		u := unitHost{t, h}
		if got := u.sh("stat", "-c", "%a %U %F", "/run/speedia/metrics.sock"); got != "600 root socket" {
			t.Errorf("metrics socket: %q", got)
		}
		sock := fmt.Sprintf("/proc/%d/root/run/speedia/metrics.sock", h.PID())
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		resp, err := c.Get("http://localhost/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 1<<16)
		n, _ := resp.Body.Read(b)
		if !strings.Contains(string(b[:n]), "speedia_update_phase") {
			t.Errorf("scrape: %s", b[:n])
		}
	})

	t.Run("SIGKILL restarts and kills the children", func(t *testing.T) {
		u := unitHost{t, h}
		main := u.show("MainPID")
		child := u.sh("cat", "/run/speedia/test-child.pid")
		restarts, _ := strconv.Atoi(u.show("NRestarts"))
		u.sh("sh", "-c", "kill -KILL "+main) // no procps in the host: the shell's kill
		u.waitFor("a restart", func() bool {
			pid := u.show("MainPID")
			return pid != "0" && pid != main && u.show("ActiveState") == "active"
		})
		if got, _ := strconv.Atoi(u.show("NRestarts")); got != restarts+1 {
			t.Errorf("NRestarts = %d, want %d", got, restarts+1)
		}
		if out, err := h.Direct(ctx, "test", "-e", "/proc/"+child); err == nil {
			t.Errorf("the old daemon's child %s survived: %s", child, u.sh("cat", "/proc/"+child+"/cmdline"))
		} else if _, ok := err.(*run.ExitError); !ok {
			t.Fatal(out, err)
		}
	})

	t.Run("bus activation", func(t *testing.T) {
		u := unitHost{t, h}
		u.sh("systemctl", "stop", units.Service)
		// RuntimeDirectoryPreserve=yes: the engine lock's directory stays.
		if got := u.sh("stat", "-c", "%F", "/run/speedia"); got != "directory" {
			t.Errorf("/run/speedia after stop: %q", got)
		}
		// An unprivileged read starts the daemon through systemd.
		if out, err := u.as("", "busctl", "call", "org.speedia.Update1", "/org/speedia/Update1", "org.speedia.Update1", "History", "u", "0"); err != nil {
			t.Fatalf("History while stopped: %v %s", err, out)
		}
		if got := u.show("ActiveState"); got != "active" {
			t.Errorf("after activation: %s", got)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		u := unitHost{t, h}
		list := u.sh("journalctl", "--list-catalog")
		for _, id := range []string{msgid.Staged, msgid.RolledBack, msgid.GaveUp} {
			if !strings.Contains(list, id+" speedia-host: ") {
				t.Errorf("%s not in journalctl --list-catalog", id)
			}
		}
		// A message as the daemon will log it: journalctl -x explains it
		// with the fields substituted.
		u.sh("sh", "-c", "printf 'MESSAGE=staged\\nMESSAGE_ID="+msgid.Staged+"\\nSNAPSHOT=7\\nUPDATE=u42\\nCHANGES=hello 1 -> 2\\nSYSLOG_IDENTIFIER=speedia-units-test\\n' | logger --journald")
		u.waitFor("the journal entry", func() bool {
			out, _ := h.Direct(ctx, "journalctl", "-x", "--no-pager", "-t", "speedia-units-test", "MESSAGE_ID="+msgid.Staged)
			return strings.Contains(out, "Subject: Update staged into snapshot 7") && strings.Contains(out, "u42: hello 1 -> 2")
		})
	})
}
