//go:build integration

package podman

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/pods"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/speedia/host/podman/podmantest"
	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/errkind"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// lab is one test's own Podman service with the test images and a Manager
// on it.
type lab struct {
	t   *testing.T
	ctx context.Context
	svc *podmantest.Service
	m   *Manager
}

func newLab(t *testing.T) *lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// Not t.TempDir(): Podman refuses a runroot longer than 50 characters,
	// and the test's name makes that path long.
	dir, err := os.MkdirTemp("", "pm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	svc, err := podmantest.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := podmantest.BuildImages(ctx, svc); err != nil {
		t.Fatal(err)
	}
	m := &Manager{
		Socket: svc.Socket, Dir: t.TempDir(), Settle: time.Second, Timeout: 30 * time.Second, Dial: svc.DialContext,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return &lab{t: t, ctx: ctx, svc: svc, m: m}
}

// testWriter sends the Manager's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// pm runs the podman CLI in the service's world and returns its trimmed
// output; a failure ends the test.
func (l *lab) pm(args ...string) string {
	l.t.Helper()
	out, err := l.svc.Podman(l.ctx, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// inspect reads a container through the API, as the product does.
func (l *lab) inspect(name string) *define.InspectContainerData {
	l.t.Helper()
	conn, err := Connect(l.ctx, l.svc.Socket)
	if err != nil {
		l.t.Fatal(err)
	}
	d, err := containers.Inspect(conn, name, nil)
	if err != nil {
		l.t.Fatalf("inspect %s: %v", name, err)
	}
	return d
}

func running(d *define.InspectContainerData) bool { return d.State != nil && d.State.Running }

// createPod creates a pod through the API: the service builds Podman's
// pause image itself (the CLI, run through nsenter, fails to).
func (l *lab) createPod(name string) {
	l.t.Helper()
	conn, err := Connect(l.ctx, l.svc.Socket)
	if err != nil {
		l.t.Fatal(err)
	}
	spec := &types.PodSpec{PodSpecGen: specgen.PodSpecGenerator{PodBasicConfig: specgen.PodBasicConfig{Name: name}}}
	if _, err := pods.CreatePodFromSpec(conn, spec); err != nil {
		l.t.Fatalf("create pod %s: %v", name, err)
	}
}

// allNames lists every container, running or not.
func (l *lab) allNames() []string {
	l.t.Helper()
	out := strings.Fields(l.pm("ps", "-a", "--format", "{{.Names}}"))
	sort.Strings(out)
	return out
}

// get fetches /VERSION through a published port, waiting for httpd to
// listen.
func (l *lab) get(port int) string {
	l.t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/VERSION", port)
	var last error
	for i := 0; i < 50; i++ {
		resp, err := l.svc.HTTPClient().Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.TrimSpace(string(body))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Errorf("GET %s: %v", url, last)
	return ""
}

// volumePath is a named volume's directory on the machine.
func (l *lab) volumePath(name string) string {
	l.t.Helper()
	return l.pm("volume", "inspect", "--format", "{{.Mountpoint}}", name)
}

// records returns the Manager's kept upgrades; an error ends the test.
func (l *lab) records() []*Record {
	l.t.Helper()
	recs, err := l.m.Records()
	if err != nil {
		l.t.Fatal(err)
	}
	return recs
}

// snapshotsLeft lists what is under the Manager's snapshot directory.
func (l *lab) snapshotsLeft() []string {
	entries, _ := os.ReadDir(filepath.Join(l.m.Dir, "snapshots"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func mustT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fillData puts what a database keeps into dir: a few MB of random bytes,
// subdirectories, a symlink, an empty file, and several modes and owners.
func fillData(t *testing.T, dir string) {
	t.Helper()
	big := make([]byte, 3<<20+12345)
	_, err := rand.Read(big)
	mustT(t, err)
	mustT(t, os.MkdirAll(filepath.Join(dir, "db/sub/deeper"), 0o750))
	mustT(t, os.WriteFile(filepath.Join(dir, "db/ibdata1"), big, 0o640))
	mustT(t, os.WriteFile(filepath.Join(dir, "db/sub/deeper/row"), big[:4096], 0o600))
	mustT(t, os.WriteFile(filepath.Join(dir, "db/sub/empty"), nil, 0o444))
	mustT(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("keep me\n"), 0o644))
	mustT(t, os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o4755))
	mustT(t, os.Symlink("db/ibdata1", filepath.Join(dir, "current")))
	mustT(t, os.Lchown(filepath.Join(dir, "db"), 999, 999))
	mustT(t, os.Lchown(filepath.Join(dir, "db/ibdata1"), 999, 998))
	mustT(t, os.Lchown(filepath.Join(dir, "db/sub/deeper/row"), 33, 33))
	mustT(t, os.Lchown(filepath.Join(dir, "current"), 1000, 1000))
	mustT(t, os.Chmod(filepath.Join(dir, "run.sh"), 0o4755)) // chown cleared setuid
	mustT(t, os.Chmod(filepath.Join(dir, "db/sub"), 0o2770))
}

// loop is the shell of the test-1 containers: log the start, log the stop
// on SIGTERM (and exit at once), run extra, then idle.
func loop(name, extra string) string {
	return fmt.Sprintf(`N=%s; echo "$N start $(date +%%s)" >> /log/events
trap 'echo "$N stop" >> /log/events; exit 0' TERM
%s
while :; do sleep 3600 & wait $!; done`, name, extra)
}

// TestInventoryStopRebootStart takes the inventory of a host's containers,
// stops them for a reboot, reboots Podman, lets podman-restart do its part
// and starts the rest in order, waiting for health.
func TestInventoryStopRebootStart(t *testing.T) {
	l := newLab(t)
	logDir := t.TempDir()
	events := filepath.Join(logDir, "events")
	mustT(t, os.WriteFile(events, nil, 0o666))
	vol := logDir + ":/log"
	// Exits at once after the reboot: the marker file is made before Start.
	failAfterReboot := "test -f /log/rebooted && { echo \"$N exits\" >> /log/events; exit 3; }"

	l.pm("run", "-d", "--name", "db", "-v", vol,
		"--health-cmd", "test -f /tmp/ready", "--health-interval", "1h", "--health-retries", "100",
		podmantest.ImageV1, "sh", "-c",
		loop("db", `rm -f /tmp/ready; (sleep 2; touch /tmp/ready; echo "db ready" >> /log/events) &`))
	l.pm("run", "-d", "--name", "web", "-v", vol, "--label", LabelAfter+"=db", podmantest.ImageV1, "sh", "-c", loop("web", ""))
	l.pm("run", "-d", "--name", "worker", "-v", vol, "--requires", "db", podmantest.ImageV1, "sh", "-c", loop("worker", ""))
	l.pm("run", "-d", "--name", "always", "-v", vol, "--restart", "always", podmantest.ImageV1, "sh", "-c", loop("always", ""))
	l.pm("run", "-d", "--name", "quits", "-v", vol, podmantest.ImageV1, "sh", "-c", loop("quits", failAfterReboot))
	l.pm("run", "-d", "--name", "crit", "-v", vol, "--label", LabelCritical+"=true", podmantest.ImageV1, "sh", "-c", loop("crit", failAfterReboot))
	l.createPod("pod1")
	l.pm("run", "-d", "--name", "podapp", "--pod", "pod1", "-v", vol, podmantest.ImageV1, "sh", "-c", loop("podapp", ""))
	infra := l.inspect(l.pm("pod", "inspect", "--format", "{{.InfraContainerID}}", "pod1")).Name
	l.pm("run", "-d", "--name", "stopped-before", podmantest.ImageV1)
	l.pm("stop", "stopped-before")

	inv, err := l.m.Take(l.ctx)
	mustT(t, err)
	t.Logf("inventory: %v, notes %q", inv.Names(), inv.Notes)
	want := []string{"always", "crit", "db", infra, "podapp", "quits", "web", "worker"}
	sort.Strings(want)
	if got := inv.Names(); !slices.Equal(got, want) {
		t.Fatalf("inventory %v, want the running containers %v", got, want)
	}
	if len(inv.Notes) != 0 {
		t.Errorf("inventory notes %q, want none", inv.Notes)
	}
	byName := map[string]Container{}
	for _, c := range inv.Containers {
		byName[c.Name] = c
	}
	for _, tc := range []struct {
		name     string
		after    []string
		health   bool
		restart  string
		critical bool
		infra    bool
	}{
		{name: "db", health: true},
		{name: "web", after: []string{"db"}},
		{name: "worker", after: []string{"db"}},
		{name: "always", restart: "always"},
		{name: "quits"},
		{name: "crit", critical: true},
		{name: "podapp", after: []string{infra}},
		{name: infra, infra: true},
	} {
		c := byName[tc.name]
		if !slices.Equal(c.After, tc.after) || c.Health != tc.health || c.Critical != tc.critical || c.Infra != tc.infra {
			t.Errorf("%s: After %v Health %v Critical %v Infra %v; want %v %v %v %v",
				tc.name, c.After, c.Health, c.Critical, c.Infra, tc.after, tc.health, tc.critical, tc.infra)
		}
		if r := c.Restart; r != tc.restart && !(tc.restart == "" && r == "no") {
			t.Errorf("%s: Restart %q, want %q", tc.name, r, tc.restart)
		}
		if c.ID == "" || c.ImageID == "" {
			t.Errorf("%s: ID %q ImageID %q, want both", tc.name, c.ID, c.ImageID)
		}
	}

	// Stop: dependents first, each stopped gracefully (its TERM trap ran).
	rep, err := l.m.Stop(l.ctx, inv)
	if err != nil {
		t.Fatalf("Stop: %v (%+v)", err, rep)
	}
	for _, r := range rep.Results {
		if !r.OK || r.Action != "stopped" {
			t.Errorf("stop %s: %+v", r.Name, r)
		}
	}
	for _, name := range inv.Names() {
		if d := l.inspect(name); running(d) {
			t.Errorf("%s still running after Stop", name)
		}
	}
	log1 := readLines(t, events)
	for _, pair := range [][2]string{{"web", "db"}, {"worker", "db"}} {
		dep, base := index(log1, pair[0]+" stop"), index(log1, pair[1]+" stop")
		if dep < 0 || base < 0 || dep > base {
			t.Errorf("%s must stop (gracefully) before %s; log:\n%s", pair[0], pair[1], strings.Join(log1, "\n"))
		}
	}

	// Reboot; podman-restart.service starts the restart=always one; then
	// Speedia starts the inventory.
	mustT(t, l.svc.Reboot(l.ctx))
	appendLine(t, events, "--- reboot")
	mustT(t, os.WriteFile(filepath.Join(logDir, "rebooted"), nil, 0o644))
	for _, name := range inv.Names() {
		if running(l.inspect(name)) {
			t.Errorf("%s running right after the reboot", name)
		}
	}
	mustT(t, l.svc.RestartPolicyAlways(l.ctx))
	if !running(l.inspect("always")) {
		t.Fatal("podman-restart did not start the restart=always container")
	}
	t0 := time.Now()
	rep, err = l.m.Start(l.ctx, inv)
	mustT(t, err)
	t.Logf("Start took %v", time.Since(t0))
	for _, r := range rep.Results {
		t.Logf("start %s: ok=%v action=%q took=%v err=%q", r.Name, r.OK, r.Action, r.Took.Round(time.Millisecond), r.Error)
	}
	results := map[string]Result{}
	for _, r := range rep.Results {
		results[r.Name] = r
	}
	if len(results) != len(inv.Containers) {
		t.Errorf("%d results for %d containers", len(results), len(inv.Containers))
	}
	for _, name := range []string{"db", "web", "worker", "podapp", infra} {
		if r := results[name]; !r.OK || r.Action != "started" {
			t.Errorf("%s: %+v, want OK and started", name, r)
		}
	}
	if r := results["always"]; !r.OK || r.Action != "already running" {
		t.Errorf("always: %+v, want OK and already running", r)
	}
	for _, name := range []string{"quits", "crit"} {
		if r := results[name]; r.OK || !strings.Contains(r.Error, "exit code 3") {
			t.Errorf("%s exits at once: %+v, want failed with its exit code", name, r)
		}
	}
	if cf := rep.CriticalFailures(); len(cf) != 1 || !strings.HasPrefix(cf[0], "container crit: ") {
		t.Errorf("CriticalFailures %q, want crit only", cf)
	}
	for _, name := range []string{"db", "web", "worker", "always", "podapp", infra} {
		if !running(l.inspect(name)) {
			t.Errorf("%s not running after Start", name)
		}
	}

	log2 := readLines(t, events)
	log2 = log2[index(log2, "--- reboot")+1:]
	t.Logf("log after the reboot:\n%s", strings.Join(log2, "\n"))
	if n := count(log2, "always start"); n != 1 {
		t.Errorf("the restart=always container started %d times after the reboot, want once", n)
	}
	ready := index(log2, "db ready")
	for _, name := range []string{"web", "worker"} {
		if i := index(log2, name+" start"); ready < 0 || i < ready {
			t.Errorf("%s started (line %d) before db was ready (line %d)", name, i, ready)
		}
	}
	if index(log2, "db start") < 0 || index(log2, "podapp start") < 0 {
		t.Error("db or podapp did not log their start")
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	mustT(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	mustT(t, err)
	_, err = fmt.Fprintln(f, line)
	mustT(t, errors.Join(err, f.Close()))
}

// index is the first line that starts with prefix, or -1.
func index(lines []string, prefix string) int {
	return slices.IndexFunc(lines, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

func count(lines []string, prefix string) int {
	n := 0
	for _, s := range lines {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// site is a stateful container as an admin makes one: a named volume, a
// writable bind mount, its own env and label, a published port, a restart
// policy and a memory limit.
type site struct {
	id, vol, bind   string // container ID, the volume's and the bind mount's dirs
	volSum, bindSum string
}

func (l *lab) makeSite(restart string) site {
	l.t.Helper()
	bind := l.t.TempDir()
	mustT(l.t, os.WriteFile(filepath.Join(bind, "site.conf"), []byte("listen 8080\n"), 0o600))
	l.pm("run", "-d", "--name", "site", "-v", "sitedata:/data", "-v", bind+":/conf",
		"-e", "USER_SET=1", "--label", "app=site", "-p", "18080:8080",
		"--restart", restart, "--memory", "64m", podmantest.ImageV1)
	s := site{id: l.inspect("site").ID, vol: l.volumePath("sitedata"), bind: bind}
	fillData(l.t, s.vol)
	s.volSum, s.bindSum = treeSum(l.t, s.vol), treeSum(l.t, s.bind)
	if got := l.get(18080); got != "1" {
		l.t.Fatalf("site serves %q before the upgrade, want 1", got)
	}
	return s
}

// checkSite checks that "site" keeps what the admin set, and runs image
// version ver.
func (l *lab) checkSite(s site, restart, image, ver string) *define.InspectContainerData {
	l.t.Helper()
	d := l.inspect("site")
	if !running(d) {
		l.t.Errorf("site not running")
	}
	if d.ImageName != image {
		l.t.Errorf("site runs image %q, want %s", d.ImageName, image)
	}
	if !slices.Contains(d.Config.Env, "USER_SET=1") || !slices.Contains(d.Config.Env, "SPEEDIA_IMAGE_VERSION="+ver) {
		l.t.Errorf("site env %q, want USER_SET=1 and SPEEDIA_IMAGE_VERSION=%s", d.Config.Env, ver)
	}
	if d.Config.Labels["app"] != "site" || d.Config.Labels["version"] != ver {
		l.t.Errorf("site labels %v, want app=site and version=%s", d.Config.Labels, ver)
	}
	if p := d.HostConfig.PortBindings["8080/tcp"]; len(p) != 1 || p[0].HostPort != "18080" {
		l.t.Errorf("site ports %v, want 18080->8080", d.HostConfig.PortBindings)
	}
	if rp := d.HostConfig.RestartPolicy; rp == nil || rp.Name != restart {
		l.t.Errorf("site restart policy %+v, want %s", rp, restart)
	}
	if d.HostConfig.Memory != 64<<20 {
		l.t.Errorf("site memory limit %d, want 64 MiB", d.HostConfig.Memory)
	}
	var mounts []string
	for _, m := range d.Mounts {
		mounts = append(mounts, fmt.Sprintf("%s %s %s rw=%v", m.Type, m.Name+m.Source, m.Destination, m.RW))
	}
	sort.Strings(mounts)
	want := []string{
		fmt.Sprintf("bind %s /conf rw=true", s.bind),
		fmt.Sprintf("volume sitedata%s /data rw=true", s.vol),
	}
	if !slices.Equal(mounts, want) {
		l.t.Errorf("site mounts %q, want %q", mounts, want)
	}
	if got := l.get(18080); got != ver {
		l.t.Errorf("site serves %q, want %s", got, ver)
	}
	return d
}

// TestUpgradeKeepsDataAndRollsBack hard-upgrades v1 to v2 and back.
func TestUpgradeKeepsDataAndRollsBack(t *testing.T) {
	l := newLab(t)
	s := l.makeSite("on-failure")

	t0 := time.Now()
	rec, err := l.m.Upgrade(l.ctx, "site", podmantest.ImageV2, UpgradeOptions{})
	if err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	t.Logf("Upgrade took %v; kept %s, tag %s, data %+v", time.Since(t0), rec.Kept, rec.KeepTag, rec.Data)
	d := l.checkSite(s, "on-failure", podmantest.ImageV2, "2")
	if d.ID == s.id || d.ID != rec.NewID {
		t.Errorf("site is %s, want the new container %s (old %s)", d.ID, rec.NewID, s.id)
	}
	if got := treeSum(t, s.vol); got != s.volSum {
		t.Errorf("volume after the upgrade %s, want %s", got, s.volSum)
	}
	if got := treeSum(t, s.bind); got != s.bindSum {
		t.Errorf("bind mount after the upgrade %s, want %s", got, s.bindSum)
	}
	if rec.OldID != s.id || rec.Kept == "" {
		t.Fatalf("record OldID %s Kept %q, want %s kept", rec.OldID, rec.Kept, s.id)
	}
	if old := l.inspect(rec.Kept); old.ID != s.id || running(old) {
		t.Errorf("kept container %s is %s running=%v, want the old one, stopped", rec.Kept, old.ID, running(old))
	}
	if got, want := l.allNames(), []string{"site", rec.Kept}; !slices.Equal(got, want) && !slices.Equal(got, []string{rec.Kept, "site"}) {
		t.Errorf("containers %v, want %v", got, want)
	}
	if len(rec.Data.Items) != 2 {
		t.Errorf("snapshot items %+v, want the volume and the bind mount", rec.Data.Items)
	}
	for _, it := range rec.Data.Items {
		if _, err := os.Stat(it.Copy); err != nil {
			t.Errorf("snapshot of %s: %v", it.Name, err)
		}
	}
	if rec.KeepTag == "" {
		t.Error("record has no KeepTag")
	} else {
		l.pm("image", "exists", rec.KeepTag)
	}
	if recs := l.records(); len(recs) != 1 || recs[0].NewID != rec.NewID {
		t.Errorf("Records() = %v, want this upgrade", recs)
	}

	// What the new version does with the data; the rollback undoes it.
	mustT(t, os.WriteFile(filepath.Join(s.vol, "keep"), []byte("changed by v2\n"), 0o644))
	mustT(t, os.WriteFile(filepath.Join(s.vol, "v2-only"), []byte("x"), 0o644))
	mustT(t, os.WriteFile(filepath.Join(s.bind, "site.conf"), []byte("listen 9090\n"), 0o600))

	t0 = time.Now()
	if _, err := l.m.Rollback(l.ctx, "site"); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	t.Logf("Rollback took %v", time.Since(t0))
	d = l.checkSite(s, "on-failure", podmantest.ImageV1, "1")
	if d.ID != s.id {
		t.Errorf("site after the rollback is %s, want the old container %s", d.ID, s.id)
	}
	if got := treeSum(t, s.vol); got != s.volSum {
		t.Errorf("volume after the rollback %s, want as at upgrade time %s", got, s.volSum)
	}
	if got := treeSum(t, s.bind); got != s.bindSum {
		t.Errorf("bind mount after the rollback %s, want as at upgrade time %s", got, s.bindSum)
	}
	if got := l.allNames(); !slices.Equal(got, []string{"site"}) {
		t.Errorf("containers after the rollback %v, want site only", got)
	}
	if recs := l.records(); len(recs) != 0 {
		t.Errorf("Records() after the rollback = %v, want none", recs)
	}
	if left := l.snapshotsLeft(); len(left) != 0 {
		t.Errorf("snapshots left after the rollback: %v", left)
	}
	if rec.KeepTag != "" {
		if _, err := l.svc.Podman(l.ctx, "image", "exists", rec.KeepTag); err == nil {
			t.Errorf("image tag %s still there after the rollback", rec.KeepTag)
		}
	}
}

// TestBrokenUpgradeRollsBack: the new container fails (it damages the data
// and exits, or runc cannot even create it); the upgrade puts back the old
// container and the data exactly.
func TestBrokenUpgradeRollsBack(t *testing.T) {
	for _, tc := range []struct{ name, image, why string }{
		{"exits", podmantest.ImageBroken, "exit code 1"},
		// runc create fails: Podman 4.3 then keeps the published port
		// bound for a while (a leaked socket), which the old container needs.
		{"cannot start", noStartImage, "OCI runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			if tc.image == noStartImage {
				l.pm("create", "--name", "base", podmantest.ImageV1)
				l.pm("commit", "-q", "--change", `CMD ["/nosuch"]`, "base", noStartImage)
				l.pm("rm", "base")
			}
			s := l.makeSite("on-failure")

			t0 := time.Now()
			rec, err := l.m.Upgrade(l.ctx, "site", tc.image, UpgradeOptions{})
			t.Logf("Upgrade took %v: %v", time.Since(t0), err)
			if err == nil || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "rolled back") || strings.Contains(err.Error(), "FAILED") {
				t.Fatalf("Upgrade to a failing image: %v (record %v); want an error saying why (%s) and that it rolled back", err, rec, tc.why)
			}
			d := l.checkSite(s, "on-failure", podmantest.ImageV1, "1")
			if d.ID != s.id {
				t.Errorf("site is %s, want the old container %s", d.ID, s.id)
			}
			if got := treeSum(t, s.vol); got != s.volSum {
				t.Errorf("volume after the failed upgrade %s, want %s", got, s.volSum)
			}
			if _, err := os.Stat(filepath.Join(s.vol, "BROKEN")); !os.IsNotExist(err) {
				t.Errorf("BROKEN still in the volume: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(s.vol, "keep")); err != nil || string(b) != "keep me\n" {
				t.Errorf("keep after the failed upgrade: %q %v", b, err)
			}
			if got := l.allNames(); !slices.Equal(got, []string{"site"}) {
				t.Errorf("containers after the failed upgrade %v, want site only", got)
			}
			if recs := l.records(); len(recs) != 0 {
				t.Errorf("Records() = %v, want none", recs)
			}
			if left := l.snapshotsLeft(); len(left) != 0 {
				t.Errorf("snapshots left under %s: %v", l.m.Dir, left)
			}
		})
	}
}

// noStartImage is ImageV1 with a command that does not exist.
const noStartImage = "localhost/speedia-test:nostart"

// TestUpgradeErrorsChangeNothing: refused upgrades say why and leave the
// container as it was.
func TestUpgradeErrorsChangeNothing(t *testing.T) {
	l := newLab(t)
	s := l.makeSite("on-failure")
	images := l.pm("images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, tc := range []struct {
		name, container, image string
		is                     error
		says                   string
	}{
		{"missing container", "nosuch", podmantest.ImageV2, errkind.NotFound, "nosuch"},
		{"missing image", "site", "localhost/nosuch:9", errkind.NotFound, "localhost/nosuch:9"},
		{"same image", "site", podmantest.ImageV1, errkind.NothingToDo, podmantest.ImageV1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := l.m.Upgrade(l.ctx, tc.container, tc.image, UpgradeOptions{})
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Upgrade(%s, %s) = %v, %v; want %v naming %q", tc.container, tc.image, rec, err, tc.is, tc.says)
			}
			if d := l.inspect("site"); d.ID != s.id || !running(d) {
				t.Errorf("site is %s running=%v, want %s running", d.ID, running(d), s.id)
			}
			if got := l.allNames(); !slices.Equal(got, []string{"site"}) {
				t.Errorf("containers %v, want site only", got)
			}
			if got := l.pm("images", "--format", "{{.Repository}}:{{.Tag}}"); got != images {
				t.Errorf("images changed:\n%s\nwant:\n%s", got, images)
			}
			if recs, left := l.records(), l.snapshotsLeft(); len(recs) != 0 || len(left) != 0 {
				t.Errorf("records %v, snapshots %v; want none", recs, left)
			}
		})
	}
	if _, err := l.m.Rollback(l.ctx, "site"); !errors.Is(err, errkind.NotFound) {
		t.Errorf("Rollback without an upgrade: %v, want errkind.NotFound", err)
	}
	if got := treeSum(t, s.vol); got != s.volSum {
		t.Errorf("volume changed: %s, want %s", got, s.volSum)
	}

	mustT(t, l.svc.Close())
	_, err := l.m.Upgrade(l.ctx, "site", podmantest.ImageV2, UpgradeOptions{})
	if err == nil || !strings.Contains(err.Error(), l.svc.Socket) {
		t.Errorf("Upgrade with the service stopped: %v; want an error naming %s", err, l.svc.Socket)
	}
	if _, err := l.m.Take(l.ctx); err == nil || !strings.Contains(err.Error(), l.svc.Socket) {
		t.Errorf("Take with the service stopped: %v; want an error naming %s", err, l.svc.Socket)
	}
	if recs, left := l.records(), l.snapshotsLeft(); len(recs) != 0 || len(left) != 0 {
		t.Errorf("records %v, snapshots %v; want none", recs, left)
	}
}

// TestUpgradeKeepsLayerFiles: files a container wrote into its own layer
// are not carried over yet, so an upgrade refuses it without force; with
// force the old container keeps them, stopped and with its restart policy
// disabled, so that nothing starts it at boot, and a rollback gets them
// back with the policy. For every policy that starts containers.
func TestUpgradeKeepsLayerFiles(t *testing.T) {
	for _, restart := range []string{"always", "unless-stopped", "on-failure"} {
		t.Run(restart, func(t *testing.T) { testUpgradeKeepsLayerFiles(t, restart) })
	}
}

func testUpgradeKeepsLayerFiles(t *testing.T, restart string) {
	l := newLab(t)
	s := l.makeSite(restart)
	l.pm("exec", "site", "sh", "-c", "mkdir -p /srv/site && echo customer > /srv/site/index.html && echo edited >> /etc/profile")

	rec, err := l.m.Upgrade(l.ctx, "site", podmantest.ImageV2, UpgradeOptions{})
	if !errors.Is(err, errkind.Refused) || !strings.Contains(err.Error(), "A /srv/site/index.html") || !strings.Contains(err.Error(), " /etc/profile") {
		t.Fatalf("Upgrade without force = %v, %v; want refused, naming the files", rec, err)
	}
	if d := l.inspect("site"); d.ID != s.id || !running(d) {
		t.Errorf("site after the refusal is %s running=%v, want %s running", d.ID, running(d), s.id)
	}
	if recs, left := l.records(), l.snapshotsLeft(); len(recs) != 0 || len(left) != 0 {
		t.Errorf("after the refusal: records %v, snapshots %v; want none", recs, left)
	}

	rec, err = l.m.Upgrade(l.ctx, "site", podmantest.ImageV2, UpgradeOptions{Force: true})
	if err != nil {
		t.Fatalf("Upgrade with force: %v", err)
	}
	t.Logf("layer %+v, kept %s, restart %+v", rec.Layer, rec.Kept, rec.KeptRestart)
	l.checkSite(s, restart, podmantest.ImageV2, "2")
	if want := []string{"A /etc/profile", "A /srv", "A /srv/site", "A /srv/site/index.html"}; rec.Layer.User != 4 || !slices.Equal(rec.Layer.Paths, want) {
		t.Errorf("record layer %+v, want %q", rec.Layer, want)
	}
	if rec.Kept == "" || rec.KeptRestart.Policy != restart {
		t.Fatalf("record kept %q with restart %+v, want the old container kept, its policy %s remembered", rec.Kept, rec.KeptRestart, restart)
	}
	keptFile := func() string {
		out := filepath.Join(t.TempDir(), "index.html")
		l.pm("cp", rec.Kept+":/srv/site/index.html", out)
		b, err := os.ReadFile(out)
		mustT(t, err)
		return string(b)
	}
	checkKept := func(when string) {
		t.Helper()
		old := l.inspect(rec.Kept)
		if old.ID != s.id || running(old) {
			t.Errorf("%s: kept %s is %s running=%v, want the old container, stopped", when, rec.Kept, old.ID, running(old))
		}
		if rp := old.HostConfig.RestartPolicy; rp != nil && rp.Name != "" && rp.Name != "no" {
			t.Errorf("%s: kept container's restart policy %q, want disabled", when, rp.Name)
		}
		if got := keptFile(); got != "customer\n" {
			t.Errorf("%s: the kept container's /srv/site/index.html is %q", when, got)
		}
	}
	checkKept("after the upgrade")

	// A reboot: what podman-restart.service starts is the new container
	// only; the kept one stays down with the customer's files.
	mustT(t, l.svc.Reboot(l.ctx))
	mustT(t, l.svc.RestartPolicyAlways(l.ctx))
	if restart == "always" {
		if got := l.get(18080); got != "2" {
			t.Errorf("after a reboot site serves %q, want 2", got)
		}
	} else {
		l.pm("start", "site")
	}
	checkKept("after a reboot")

	if _, err := l.m.Rollback(l.ctx, "site"); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	d := l.checkSite(s, restart, podmantest.ImageV1, "1")
	if d.ID != s.id {
		t.Errorf("site after the rollback is %s, want the old container %s", d.ID, s.id)
	}
	if got := l.pm("exec", "site", "cat", "/srv/site/index.html"); got != "customer" {
		t.Errorf("after the rollback /srv/site/index.html is %q, want customer", got)
	}
	if got := l.allNames(); !slices.Equal(got, []string{"site"}) {
		t.Errorf("containers after the rollback %v, want site only", got)
	}
	if restart == "always" { // the policy given back works at boot
		mustT(t, l.svc.Reboot(l.ctx))
		mustT(t, l.svc.RestartPolicyAlways(l.ctx))
		if got := l.get(18080); got != "1" {
			t.Errorf("after the rollback and a reboot site serves %q, want 1", got)
		}
	}

	// Upgraded again and pruned: the old container goes, the new one stays.
	if restart != "always" {
		return
	}
	rec, err = l.m.Upgrade(l.ctx, "site", podmantest.ImageV2, UpgradeOptions{Force: true})
	if err != nil {
		t.Fatalf("second Upgrade: %v", err)
	}
	if _, err := l.m.Prune(l.ctx, "site"); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if got := l.allNames(); !slices.Equal(got, []string{"site"}) {
		t.Errorf("containers after the prune %v, want site only", got)
	}
	if recs, left := l.records(), l.snapshotsLeft(); len(recs) != 0 || len(left) != 0 {
		t.Errorf("after the prune: records %v, snapshots %v; want none", recs, left)
	}
	if _, err := l.svc.Podman(l.ctx, "image", "exists", rec.KeepTag); err == nil {
		t.Errorf("image tag %s still there after the prune", rec.KeepTag)
	}
	if got := l.get(18080); got != "2" {
		t.Errorf("after the prune site serves %q, want 2", got)
	}
	if _, err := l.m.Prune(l.ctx, "site"); !errors.Is(err, errkind.NotFound) {
		t.Errorf("second Prune: %v, want not found", err)
	}
}
