//go:build integration

package podmantest_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/speedia/host/podman"
	"github.com/speedia/host/podman/podmantest"
	"github.com/speedia/host/tests/testhost"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// defaultState is Podman's machine-wide state, which the harness must not touch.
var defaultState = []string{
	"/var/lib/containers", "/var/lib/containers/cache", "/var/lib/containers/storage",
	"/run/containers", "/run/containers/networks", "/run/libpod", "/run/netns",
	"/etc/containers", "/etc/containers/networks", "/etc/cni/net.d", "/var/lib/cni",
	"/dev/shm/libpod_lock",
}

func joinKeys(a, b map[string]string) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// snapshot maps the paths and their entries to size and mtime.
func snapshot(paths []string) map[string]string {
	m := map[string]string{}
	for _, p := range paths {
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				m[filepath.Join(p, e.Name())] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
			}
		}
		if fi, err := os.Lstat(p); err == nil {
			m[p] = fmt.Sprint(fi.ModTime().UnixNano())
		}
	}
	return m
}

func TestServiceLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := snapshot(defaultState)
	dir := t.TempDir()

	start := time.Now()
	s, err := podmantest.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Logf("Start: %v", time.Since(start))

	conn, err := podman.Connect(ctx, s.Socket)
	if err != nil {
		t.Fatalf("_ping through the bindings: %v", err)
	}
	if v := bindings.ServiceVersion(conn); v == nil || v.Major < 4 {
		t.Fatalf("service version %v, want >= 4", v)
	}
	if got := podmanOut(t, s, "info", "--format", "{{.Store.GraphDriverName}} {{.Host.NetworkBackend}}"); got != "overlay netavark" {
		t.Errorf("storage driver and network backend %q, want overlay netavark", got)
	}

	start = time.Now()
	if err := podmantest.BuildImages(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("BuildImages: %v", time.Since(start))
	for _, tc := range []struct{ ref, version string }{
		{podmantest.ImageV1, "1"}, {podmantest.ImageV2, "2"}, {podmantest.ImageBroken, "broken"},
	} {
		got := podmanOut(t, s, "image", "inspect", "--format", "{{.Labels.version}} {{.Config.Env}}", tc.ref)
		if !strings.HasPrefix(got, tc.version+" ") || !strings.Contains(got, "SPEEDIA_IMAGE_VERSION="+tc.version) {
			t.Errorf("%s: label and env %q, want version %s", tc.ref, got, tc.version)
		}
	}

	start = time.Now()
	podmanOut(t, s, "run", "-d", "--name", "plain", "-p", "18080:8080", podmantest.ImageV1)
	t.Logf("podman run -d: %v", time.Since(start))
	podmanOut(t, s, "run", "-d", "--name", "always", "--restart=always", "-p", "18081:8080", podmantest.ImageV2)
	ids := []string{inspect(t, s, "plain", "{{.Id}}"), inspect(t, s, "always", "{{.Id}}")}
	wantGet(t, s, 18080, "1")
	wantGet(t, s, 18081, "2")

	// What the reboot must undo: overlay and netns mounts in the service's
	// namespace, the service, conmon and container processes.
	mounts := readFile(t, fmt.Sprintf("/proc/%d/mountinfo", s.PID()))
	if strings.Count(mounts, "/merged ") != 2 || strings.Count(mounts, " /run/netns/netns-") != 2 {
		t.Errorf("want 2 overlay and 2 netns mounts in the service namespace:\n%s", mounts)
	}
	procs := descendants(s.PID())
	if len(procs) < 7 { // catatonit, service, 2x (conmon, sh, httpd)
		t.Errorf("%d processes under the service's PID 1, want >= 7", len(procs))
	}
	if got := mountsUnder(t, dir, true); len(got) < 2 {
		t.Errorf("want the overlay mounts under %s seen from /proc, got %v", dir, got)
	}

	start = time.Now()
	if err := s.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Reboot: %v", time.Since(start))
	if left := alive(procs); len(left) != 0 {
		t.Errorf("processes survived the reboot: %v", left)
	}
	if got := mountsUnder(t, dir, true); len(got) != 0 {
		t.Errorf("mounts left by the reboot: %v", got)
	}
	if entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/root/run/netns", s.PID())); len(entries) != 0 {
		t.Errorf("network namespaces after the reboot: %v", entries)
	}
	for _, name := range []string{"plain", "always"} {
		if st := inspect(t, s, name, "{{.State.Status}}"); st == "running" {
			t.Errorf("%s is %s after the reboot, want not running", name, st)
		}
	}

	if err := s.RestartPolicyAlways(ctx); err != nil {
		t.Fatal(err)
	}
	if st := inspect(t, s, "always", "{{.State.Status}}"); st != "running" {
		t.Errorf("restart=always container is %s after boot, want running", st)
	}
	if st := inspect(t, s, "plain", "{{.State.Status}}"); st == "running" {
		t.Errorf("restart=no container was started at boot")
	}
	wantGet(t, s, 18081, "2")

	// The broken image marks and damages /data and fails.
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Podman(ctx, "run", "--name", "broken", "-v", data+":/data", podmantest.ImageBroken); err == nil {
		t.Errorf("broken image exited 0: %s", out)
	}
	ids = append(ids, inspect(t, s, "broken", "{{.Id}}"))
	if _, err := os.Stat(filepath.Join(data, "BROKEN")); err != nil {
		t.Errorf("broken image did not write /data/BROKEN: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "keep")); !os.IsNotExist(err) {
		t.Errorf("broken image did not delete /data/keep: %v", err)
	}

	procs = descendants(s.PID())
	start = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close: %v", time.Since(start))
	if left := alive(procs); len(left) != 0 {
		t.Errorf("processes survived Close: %v", left)
	}
	if pids := processesMentioning(t, dir); len(pids) != 0 {
		t.Errorf("processes mentioning %s after Close: %v", dir, pids)
	}
	if got := mountsUnder(t, dir, false); len(got) != 0 {
		t.Errorf("mounts left by Close: %v", got)
	}
	for _, id := range ids {
		if left, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent/libpod-" + id); len(left) != 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}
	after := snapshot(defaultState)
	for p := range joinKeys(before, after) {
		if st := after[p]; before[p] != st {
			t.Errorf("%s changed (%q -> %q): the harness touched the default Podman state", p, before[p], st)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

func podmanOut(t *testing.T, s *podmantest.Service, args ...string) string {
	t.Helper()
	out, err := s.Podman(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func inspect(t *testing.T, s *podmantest.Service, name, format string) string {
	t.Helper()
	return podmanOut(t, s, "container", "inspect", "--format", format, name)
}

// wantGet fetches /VERSION through a published port.
func wantGet(t *testing.T, s *podmantest.Service, port int, want string) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/VERSION", port)
	var last error
	for i := 0; i < 50; i++ { // httpd may not listen yet right after start
		resp, err := s.HTTPClient().Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(body)); got != want {
				t.Fatalf("GET %s = %q, want %q", url, got, want)
			}
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stat returns the parent and start time (fields 4 and 22 of
// /proc/PID/stat); the start time tells a survivor from a reused PID.
func stat(pid string) (ppid, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return "", "", false
	}
	// The command name (field 2) may hold spaces: parse after its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 20 {
		return "", "", false
	}
	return f[1], f[19], true
}

// descendants maps pid and the processes below it to their start times.
func descendants(pid int) map[int]string {
	type proc struct{ ppid, start string }
	all := map[string]proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if ppid, start, ok := stat(filepath.Base(d)); ok {
			all[filepath.Base(d)] = proc{ppid, start}
		}
	}
	found := map[int]string{}
	var walk func(p string)
	walk = func(p string) {
		n, _ := strconv.Atoi(p)
		found[n] = all[p].start
		for c, pr := range all {
			if pr.ppid == p {
				walk(c)
			}
		}
	}
	if _, ok := all[strconv.Itoa(pid)]; ok {
		walk(strconv.Itoa(pid))
	}
	return found
}

// alive lists the processes of procs that still run.
func alive(procs map[int]string) []string {
	var left []string
	for pid, start := range procs {
		if _, now, ok := stat(strconv.Itoa(pid)); ok && now == start {
			left = append(left, processLine(pid))
		}
	}
	return left
}

func processLine(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(b), "\x00", " "))
}

// mountsUnder lists, over every process's mount table, the mounts below dir.
// With podmanOwn, the graph driver's own bind mount of Root/overlay (which a
// running service keeps) is allowed.
func mountsUnder(t *testing.T, dir string, podmanOwn bool) []string {
	t.Helper()
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process is gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || !strings.HasPrefix(f[4], dir+"/") {
				continue
			}
			if podmanOwn && f[4] == filepath.Join(dir, "root", "overlay") {
				continue
			}
			found = append(found, p+": "+f[4])
		}
	}
	return found
}

// processesMentioning lists processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			found = append(found, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}
