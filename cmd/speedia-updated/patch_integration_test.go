//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/client"
)

// TestContainerPatchThroughTheDaemon patches the packages inside a Debian
// container the way an admin does, through the whole product on the booted
// test host: speedia-update -> D-Bus -> speedia-updated -> the helper ->
// rootful Podman -> apt inside the container.
func TestContainerPatchThroughTheDaemon(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache := "/var/cache/speedia-test"
	tarball, err := testhost.RootfsTarball(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := testhost.TestRepos(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	product, err := testhost.BuildProduct(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	config := testhost.WindowConfig(time.Now().Add(-30*time.Minute)) + "[containers]\nsettle = \"1s\"\nauto_upgrade = false\n"
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-patch", Podman: true, Logf: t.Logf, Prepare: product.Prepare(config)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	c := &cycle{t: t, ctx: ctx, h: h}
	c.waitStatus("first check", 60*time.Second, func(s status) bool { return s.Phase == "idle" && s.LastCheckResult != "" })

	// What the host sees at /var/lib/speedia-test: the base tarball and the
	// container's apt repository.
	inHost := func(p string) string { return fmt.Sprintf("/proc/%d/root%s", h.PID(), p) }
	repo := ctData + "/repo"
	publish := func(name string) {
		t.Helper()
		mustRun(t, "sh", "-c", `mkdir -p "$1" && rm -rf "$1"/* && cp -a "$2"/. "$1"/`, "-", inHost(repo), filepath.Join(repos, name))
	}
	mustRun(t, "cp", tarball, inHost("/var/tmp/debian.tar"))
	publish("web1")
	c.podman("import", "--change", `CMD ["/usr/bin/speedia-testweb"]`, "/var/tmp/debian.tar", "localhost/debian-base:12")
	c.podman("run", "-d", "--name", "setup", "-v", repo+":/srv/repo:ro", "localhost/debian-base:12", "sleep", "600")
	c.podman("cp", "/bin/busybox", "setup:/usr/local/bin/busybox")
	c.podman("exec", "setup", "sh", "-c", `rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* &&
		echo "deb [trusted=yes] file:/srv/repo ./" > /etc/apt/sources.list.d/test.list &&
		apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y speedia-testweb >/dev/null && mkdir -p /srv/www`)
	c.podman("commit", "-q", "--change", `CMD ["/usr/bin/speedia-testweb"]`, "setup", "localhost/debian-web:1")
	c.podman("rm", "-f", "-t", "1", "setup")
	c.podman("run", "-d", "--name", "shop", "--network", "host", "--stop-timeout", "2", "-v", repo+":/srv/repo:ro", "localhost/debian-web:1")
	c.podman("exec", "shop", "sh", "-c", "echo customer-page > /srv/www/index.html")
	serves := func(when string) {
		t.Helper()
		var out string
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if out, err = c.h.Direct(c.ctx, "busybox", "wget", "-qO-", "http://127.0.0.1:8080/index.html"); err == nil {
				break
			}
		}
		if err != nil || strings.TrimSpace(out) != "customer-page" {
			t.Fatalf("%s: shop serves %q (%v)", when, out, err)
		}
	}
	serves("before the patch")

	publish("web2")
	out, code := c.cli("container", "check", "shop")
	t.Logf("# speedia-update container check shop\n%s", out)
	if code != 0 || !strings.Contains(out, "speedia-testweb  1.0 -> 2.0") {
		t.Fatalf("container check: exit %d\n%s", code, out)
	}
	out, code = c.cli("container", "patch", "shop")
	t.Logf("# speedia-update container patch shop\n%s", out)
	if code != 0 || !strings.Contains(out, "shop: patched, 1 packages upgraded") {
		t.Fatalf("container patch: exit %d\n%s", code, out)
	}
	// (no -f=${Version}: systemd-run, which runs podman in the host, expands it)
	if v := c.podman("exec", "shop", "dpkg-query", "-W", "speedia-testweb"); strings.Fields(v)[1] != "2.0" {
		t.Errorf("after the patch speedia-testweb is %q, want 2.0", v)
	}
	serves("after the patch")
	out, code = c.cli("container", "status")
	t.Logf("# speedia-update container status\n%s", out)
	js, _ := c.cli("container", "status", "--json")
	var st []client.ContainerPatchStatus
	if err := json.Unmarshal([]byte(js), &st); err != nil || code != 0 || len(st) != 1 {
		t.Fatalf("container status --json: %v\n%s", err, js)
	}
	if s := st[0]; s.Manager != "apt" || s.OS == nil || s.OS.VersionID != "12" || s.Last == nil || s.Last.Step != "done" || s.Last.Image == "" {
		t.Errorf("status after the patch: %+v", s)
	}
	out, code = c.cli("container", "patch", "shop")
	if code != 0 || !strings.Contains(out, "shop: no updates.") {
		t.Errorf("a second patch: exit %d\n%s", code, out)
	}

	out, code = c.cli("container", "rollback", "shop")
	t.Logf("# speedia-update container rollback shop\n%s", out)
	if code != 0 || !strings.Contains(out, "the patch of 1 packages is undone") {
		t.Fatalf("container rollback: exit %d\n%s", code, out)
	}
	if v := c.podman("exec", "shop", "dpkg-query", "-W", "speedia-testweb"); strings.Fields(v)[1] != "1.0" {
		t.Errorf("after the rollback speedia-testweb is %q, want 1.0", v)
	}
	serves("after the rollback")
	if out, code := c.cli("container", "patch", "shop"); code != 6 {
		t.Errorf("patching the rolled back set again: exit %d, want 6 (bad)\n%s", code, out)
	}
	out, _ = c.cli("history", "-n", "3")
	t.Logf("# speedia-update history -n 3\n%s", out)
	js, _ = c.cli("history", "--json", "-n", "0")
	var events []string
	for _, l := range strings.Split(js, "\n") {
		for _, e := range []string{`"container-patched"`, `"container-rolled-back"`} {
			if strings.Contains(l, e) {
				events = append(events, e)
			}
		}
	}
	if strings.Join(events, " ") != `"container-patched" "container-rolled-back"` {
		t.Errorf("history has %v, want the patch and its rollback:\n%s", events, js)
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
