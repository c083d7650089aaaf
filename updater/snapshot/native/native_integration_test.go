//go:build integration

package native_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/snapshot/native"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// rig is one booted test host with the engine's binaries installed.
type rig struct {
	t       *testing.T
	h       *testhost.Host
	updated string // speedia-updated inside the host
	fault   string // faultstage inside the host
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	bin := t.TempDir()
	for _, p := range []string{"cmd/speedia-updated", "tests/faultstage"} {
		if err := testhost.BuildGo(ctx, p, filepath.Join(bin, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-native", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console tail: %s", h.ConsoleTail(30))
		}
		if err := h.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	r := &rig{t: t, h: h}
	if err := os.MkdirAll(filepath.Join(h.Top, "@", espDir, "loader"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r.updated, err = h.Install(filepath.Join(bin, "speedia-updated")); err != nil {
		t.Fatal(err)
	}
	if r.fault, err = h.Install(filepath.Join(bin, "faultstage")); err != nil {
		t.Fatal(err)
	}
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// engine runs speedia-updated inside the host; it returns stdout and the exit code.
// espDir is a stand-in ESP inside the host (a plain directory in /var): the
// engine writes systemd-boot entries there as on a UEFI disk.
const espDir = "/var/lib/speedia-test/esp"

func (r *rig) engine(args ...string) (string, int, string) {
	r.t.Helper()
	return r.runIn(append([]string{r.updated, "--esp", espDir}, args...)...)
}

// entries lists the boot entry files in the stand-in ESP.
func (r *rig) entries() []string {
	r.t.Helper()
	m, _ := filepath.Glob(filepath.Join(r.h.Top, "@", espDir, "loader/entries/*.conf"))
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(p))
	}
	return out
}

// entryKernel returns the content of the kernel an entry boots.
func (r *rig) entryKernel(entry string) string {
	r.t.Helper()
	esp := filepath.Join(r.h.Top, "@", espDir)
	b, err := os.ReadFile(filepath.Join(esp, "loader/entries", entry))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "linux "); ok {
			k, err := os.ReadFile(filepath.Join(esp, strings.TrimSpace(rest)))
			if err != nil {
				r.t.Fatal(err)
			}
			return strings.TrimSpace(string(k))
		}
	}
	r.t.Fatalf("entry %s has no linux line:\n%s", entry, b)
	return ""
}

// runIn runs a command inside the host as a service; stdout, exit code, log.
func (r *rig) runIn(args ...string) (string, int, string) {
	r.t.Helper()
	var log strings.Builder
	out, err := r.h.Run(context.Background(), nil, &log, args...)
	var ee *run.ExitError
	if errors.As(err, &ee) {
		return out, ee.Code, log.String()
	}
	if err != nil {
		r.t.Fatalf("run %v: %v", args, err)
	}
	return out, 0, log.String()
}

func (r *rig) snapshots() []snapshot.Snapshot {
	r.t.Helper()
	out, code, log := r.engine("snapshots", "--json")
	if code != 0 {
		r.t.Fatalf("snapshots: exit %d: %s", code, log)
	}
	var list []snapshot.Snapshot
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		r.t.Fatalf("snapshots output %q: %v", out, err)
	}
	return list
}

func (r *rig) booted() snapshot.Snapshot {
	r.t.Helper()
	b, ok := snapshot.Booted(r.snapshots())
	if !ok {
		r.t.Fatal("no booted snapshot")
	}
	return b
}

func (r *rig) defaultNumber() int {
	r.t.Helper()
	for _, s := range r.snapshots() {
		if s.Default {
			return s.Number
		}
	}
	r.t.Fatal("no default snapshot")
	return 0
}

func (r *rig) read(path string) string {
	r.t.Helper()
	s, err := r.h.ReadFile(path)
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

func (r *rig) reboot() {
	r.t.Helper()
	if err := r.h.Reboot(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// assertWhole checks the booted snapshot is complete and consistent: ready,
// read-only, and its files match its package database.
func (r *rig) assertWhole() snapshot.Snapshot {
	r.t.Helper()
	b := r.booted()
	if b.State != snapshot.StateReady {
		r.t.Fatalf("booted snapshot %d is %s", b.Number, b.State)
	}
	if _, err := r.h.Direct(context.Background(), "touch", "/usr/speedia-rw-probe"); err == nil {
		r.t.Fatalf("root of snapshot %d is writable", b.Number)
	}
	status := r.read("/var/lib/dpkg/status")
	ver := r.read("/usr/share/speedia-testapp/version")
	var stanza string
	for _, st := range strings.Split(status, "\n\n") {
		if strings.HasPrefix(st, "Package: speedia-testapp\n") {
			stanza = st
		}
	}
	if !strings.Contains(stanza, "Status: install ok installed\n") || !strings.Contains(stanza+"\n", "\nVersion: "+ver+"\n") {
		r.t.Fatalf("snapshot %d: testapp files say %s but dpkg status says:\n%s", b.Number, ver, stanza)
	}
	return b
}

func stageResult(t *testing.T, out string) snapshot.StageResult {
	t.Helper()
	var res snapshot.StageResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stage output %q: %v", out, err)
	}
	return res
}

func hasChange(res snapshot.StageResult, name, old, new string) bool {
	for _, c := range res.Changes {
		if c.Name == name && c.Old == old && c.New == new {
			return true
		}
	}
	return false
}

func TestUpdateRebootRollback(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()

	// Snapshot 1 boots read-only with a writable /etc; snapper sees it.
	b := r.assertWhole()
	if b.Number != 1 || !b.Good || !b.Default {
		t.Fatalf("first boot: %+v", b)
	}
	if err := r.h.WriteFile("/etc/speedia-probe", "x"); err != nil {
		t.Fatalf("/etc not writable: %v", err)
	}
	if out, err := r.h.Direct(ctx, "snapper", "--no-dbus", "list"); err != nil || !strings.Contains(out, "first root filesystem") {
		t.Fatalf("snapper list: %v\n%s", err, out)
	}

	// Nothing to update: exit 3, no snapshot made.
	if _, code, log := r.engine("stage"); code != 3 {
		t.Fatalf("stage with nothing to do: exit %d, want 3\n%s", code, log)
	}
	if n := len(r.snapshots()); n != 1 {
		t.Fatalf("%d snapshots after a no-op stage", n)
	}

	// An admin edits a conffile and adds a file before the update.
	if err := r.h.WriteFile("/etc/speedia-testapp.conf", "# admin\nlisten=9090\n"); err != nil {
		t.Fatal(err)
	}
	r.h.WriteFile("/etc/admin-before", "before staging\n")
	if err := r.h.SetRepo("app2"); err != nil {
		t.Fatal(err)
	}
	out, code, log := r.engine("stage", "--json")
	if code != 0 {
		t.Fatalf("stage: exit %d\n%s", code, log)
	}
	res := stageResult(t, out)
	if res.Snapshot.Number != 2 || !hasChange(res, "speedia-testapp", "1.0", "2.0") || res.KernelChanged {
		t.Fatalf("stage app2: %+v", res)
	}
	// The running root is untouched until the reboot.
	if v := r.read("/usr/share/speedia-testapp/version"); v != "1.0" {
		t.Fatalf("running root changed: testapp %s", v)
	}
	if d := r.defaultNumber(); d != 2 {
		t.Fatalf("default = %d, want 2", d)
	}
	if e := fmt.Sprint(r.entries()); e != "[speedia-2+3.conf]" {
		t.Fatalf("boot entries %s, want snapshot 2 with 3 tries", e)
	}
	// An edit made after staging is carried over before the reboot.
	r.h.WriteFile("/etc/admin-after", "after staging\n")
	if _, code, log := r.engine("sync-etc"); code != 0 {
		t.Fatalf("sync-etc: exit %d\n%s", code, log)
	}
	r.reboot()
	b = r.assertWhole()
	if b.Number != 2 || r.read("/usr/share/speedia-testapp/version") != "2.0" {
		t.Fatalf("after reboot: snapshot %d, testapp %s", b.Number, r.read("/usr/share/speedia-testapp/version"))
	}
	if got := r.read("/etc/speedia-testapp.conf"); got != "# admin\nlisten=9090" {
		t.Errorf("admin's conffile edit lost: %q", got)
	}
	if got := r.read("/etc/speedia-testapp.conf.dpkg-dist"); !strings.Contains(got, "speedia-testapp 2.0") {
		t.Errorf("package's new conffile not kept beside: %q", got)
	}
	for _, f := range []string{"/etc/admin-before", "/etc/admin-after"} {
		if _, err := r.h.ReadFile(f); err != nil {
			t.Errorf("admin file %s lost: %v", f, err)
		}
	}
	if out, _ := r.h.Direct(ctx, "snapper", "--no-dbus", "list"); !strings.Contains(out, "speedia update") {
		t.Errorf("snapper does not list the new snapshot:\n%s", out)
	}

	// A kernel update is flagged.
	r.h.SetRepo("kernel2")
	out, code, log = r.engine("stage", "--json")
	if code != 0 {
		t.Fatalf("stage kernel2: exit %d\n%s", code, log)
	}
	res = stageResult(t, out)
	if !res.KernelChanged || !hasChange(res, "speedia-testkernel", "1.0", "2.0") || res.Snapshot.Number != 3 {
		t.Fatalf("stage kernel2: %+v", res)
	}
	r.reboot()
	if b = r.assertWhole(); b.Number != 3 {
		t.Fatalf("booted %d, want 3", b.Number)
	}
	if _, err := r.h.ReadFile("/usr/lib/modules/6.1.0-speedia2/vmlinuz"); err != nil {
		t.Fatalf("new kernel missing: %v", err)
	}
	if k := r.entryKernel("speedia-3+3.conf"); k != "fake kernel image 6.1.0-speedia2" {
		t.Fatalf("entry of snapshot 3 boots %q", k)
	}

	// A failing update changes nothing: same default, no leftover, clear error.
	r.h.SetRepo("broken")
	before := r.snapshots()
	_, code, log = r.engine("stage")
	if code != 1 || !strings.Contains(log, "speedia-testbroken") || !strings.Contains(log, "stage-4.log") {
		t.Fatalf("broken update: exit %d, want 1 with the failing package and the log named\n%s", code, log)
	}
	after := r.snapshots()
	if len(after) != len(before) || r.defaultNumber() != 3 {
		t.Fatalf("failed update left changes: before %+v after %+v", before, after)
	}
	if _, err := os.Stat(filepath.Join(r.h.Top, "@/.snapshots/4")); !os.IsNotExist(err) {
		t.Fatalf("leftover snapshot directory 4: %v", err)
	}

	// Rollback to the previous snapshot, then to the first: v1 again. An
	// /etc edit made under the newer snapshot comes along.
	r.h.WriteFile("/etc/admin-in-3", "made while 3 ran\n")
	if _, code, log := r.engine("rollback"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s", code, log)
	}
	if d := r.defaultNumber(); d != 2 {
		t.Fatalf("rollback picked %d, want 2", d)
	}
	if _, code, log := r.engine("rollback", "1"); code != 0 {
		t.Fatalf("rollback 1: exit %d\n%s", code, log)
	}
	r.reboot()
	b = r.assertWhole()
	if b.Number != 1 || r.read("/usr/share/speedia-testapp/version") != "1.0" {
		t.Fatalf("after rollback: snapshot %d testapp %s", b.Number, r.read("/usr/share/speedia-testapp/version"))
	}
	if _, err := r.h.ReadFile("/usr/lib/modules/6.1.0-speedia2"); err == nil {
		t.Fatal("rolled-back snapshot still has the new kernel")
	}
	if got := r.read("/etc/admin-in-3"); got != "made while 3 ran" {
		t.Errorf("admin edit not carried on rollback: %q", got)
	}

	// Cleanup keeps the booted, the default and the last known good.
	if _, code, log := r.engine("mark-good", "1"); code != 0 {
		t.Fatalf("mark-good: exit %d\n%s", code, log)
	}
	out, code, log = r.engine("cleanup", "--keep", "0", "--json")
	if code != 0 {
		t.Fatalf("cleanup: exit %d\n%s", code, log)
	}
	var deleted []int
	json.Unmarshal([]byte(out), &deleted)
	if fmt.Sprint(deleted) != "[2 3]" {
		t.Fatalf("cleanup deleted %v, want [2 3] (1 is booted, default and good)", deleted)
	}
	if l := r.snapshots(); len(l) != 1 || l[0].Number != 1 {
		t.Fatalf("after cleanup: %+v", l)
	}
	// Blessed (no more counting), and the deleted snapshots' entries are gone.
	if e := fmt.Sprint(r.entries()); e != "[speedia-1.conf]" {
		t.Fatalf("boot entries after cleanup: %s", e)
	}
	if k := r.entryKernel("speedia-1.conf"); k != "fake kernel image 6.1.0-speedia1" {
		t.Fatalf("entry of snapshot 1 boots %q", k)
	}
}

// TestKillAtEveryStep kills the engine with SIGKILL before each step of a
// transaction, reboots, and checks the host boots a whole snapshot, old or
// new, and that the next run cleans up what the dead one left.
func TestKillAtEveryStep(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.h.SetRepo("app2")

	// While the transaction runs, logind holds a block inhibitor for it.
	go r.h.Run(ctx, nil, nil, r.fault, "--pause-at", string(native.StepUpdate))
	deadline := time.Now().Add(60 * time.Second)
	var pid string
	for pid == "" && time.Now().Before(deadline) {
		pid, _ = r.h.ReadFile("/run/speedia-fault-paused")
		time.Sleep(100 * time.Millisecond)
	}
	if pid == "" {
		t.Fatal("faultstage never paused")
	}
	inh, err := r.h.Direct(ctx, "systemd-inhibit", "--list", "--no-pager")
	if err != nil || !strings.Contains(inh, "speedia-updated") || !strings.Contains(inh, "block") {
		t.Fatalf("no block inhibitor while staging: %v\n%s", err, inh)
	}
	if _, err := r.h.Direct(ctx, "sh", "-c", "kill -KILL "+strings.TrimSpace(pid)); err != nil {
		t.Fatal(err)
	}
	r.h.Direct(ctx, "rm", "-f", "/run/speedia-fault-paused")

	for _, step := range native.StageSteps {
		t.Run(string(step), func(t *testing.T) {
			r.t = t
			old := r.booted().Number
			_, code, log := r.runIn(r.fault, "--kill-at", string(step))
			if code == 0 {
				t.Fatalf("faultstage survived --kill-at %s: %s", step, log)
			}
			r.reboot()
			b := r.assertWhole()
			wantNew := step == native.StepDone
			if (b.Number != old) != wantNew {
				t.Fatalf("killed before %s: booted %d (was %d), want new=%v", step, b.Number, old, wantNew)
			}
			// The next transaction's recovery removes half-made snapshots.
			if _, code, log := r.engine("cleanup", "--keep", "10"); code != 0 {
				t.Fatalf("cleanup: exit %d\n%s", code, log)
			}
			for _, s := range r.snapshots() {
				if s.State == snapshot.StateStaging {
					t.Fatalf("snapshot %d still staging after cleanup", s.Number)
				}
			}
		})
	}
	r.t = t
}
