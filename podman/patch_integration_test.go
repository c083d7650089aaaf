//go:build integration

package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/images"

	"github.com/speedia/host/podman/patch"
	"github.com/speedia/host/podman/podmantest"
	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/errkind"
)

// webLab is a Debian container that an admin set up by hand: a base image,
// then apt-get install of a web server from a local repository bind-mounted
// read-only at /srv/repo, serving one file from its writable layer and one
// from a named volume on a published loopback port.
type webLab struct {
	*lab
	repos  string // the test repositories (web1, web2, web3)
	repo   string // what the container's apt source points at
	port   int
	token  string
	aptDrv patch.Driver
}

func newWebLab(t *testing.T) *webLab {
	t.Helper()
	l := newLabFor(t, 8*time.Minute)
	cache := "/var/cache/speedia-test"
	tarball, err := testhost.RootfsTarball(l.ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := testhost.TestRepos(l.ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	w := &webLab{lab: l, repos: repos, repo: filepath.Join(t.TempDir(), "repo"), port: 18091, token: fmt.Sprint(time.Now().UnixNano())}
	w.aptDrv = patch.AptDriver{}
	w.publish("web1")
	t0 := time.Now()
	defer func() { t.Logf("the web container took %s to set up", time.Since(t0).Round(time.Second)) }()
	l.t.Logf("images and repos ready after %s", time.Since(t0).Round(time.Second))
	l.pm("import", "--change", `CMD ["/usr/bin/speedia-testweb"]`, tarball, "localhost/debian-base:12")
	l.pm("run", "-d", "--name", "setup", "-v", w.repo+":/srv/repo:ro", "localhost/debian-base:12", "sleep", "600")
	l.pm("cp", podmantest.BusyboxBin, "setup:/usr/local/bin/busybox")
	l.pm("exec", "setup", "sh", "-c", `rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* &&
		echo "deb [trusted=yes] file:/srv/repo ./" > /etc/apt/sources.list.d/test.list &&
		apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y speedia-testweb >/dev/null && mkdir -p /srv/www/vol`)
	l.t.Logf("setup container ready after %s", time.Since(t0).Round(time.Second))
	l.pm("commit", "-q", "--change", `CMD ["/usr/bin/speedia-testweb"]`, "setup", "localhost/debian-web:1")
	l.pm("rm", "-f", "-t", "1", "setup")
	l.pm("run", "-d", "--name", "web", "--stop-timeout", "2", "-p", fmt.Sprintf("%d:8080", w.port),
		"-v", "webdata:/srv/www/vol", "-v", w.repo+":/srv/repo:ro", "localhost/debian-web:1")
	l.pm("exec", "web", "sh", "-c", "echo layer-"+w.token+" > /srv/www/layer.txt && echo vol-"+w.token+" > /srv/www/vol/vol.txt")
	w.serves("before any patch")
	return w
}

// newLabFor is newLab with a longer time limit (apt runs inside).
func newLabFor(t *testing.T, d time.Duration) *lab {
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	l.ctx = ctx
	return l
}

// publish makes the container's apt source the test repository name. The
// directory stays (the container's bind mount holds it); its contents
// change.
func (w *webLab) publish(name string) {
	w.t.Helper()
	mustT(w.t, os.MkdirAll(w.repo, 0o755))
	old, err := os.ReadDir(w.repo)
	mustT(w.t, err)
	for _, e := range old {
		mustT(w.t, os.RemoveAll(filepath.Join(w.repo, e.Name())))
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(w.repos, name)+"/.", w.repo).CombinedOutput(); err != nil {
		w.t.Fatalf("cp: %v: %s", err, out)
	}
}

func (w *webLab) fetch(path string) (string, error) {
	c := w.svc.HTTPClient()
	c.Timeout = 3 * time.Second
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", w.port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

// serves checks that the container serves both files, waiting a little
// for its server to listen.
func (w *webLab) serves(when string) {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, err1 := w.fetch("/layer.txt")
		b, err2 := w.fetch("/vol/vol.txt")
		if err1 == nil && err2 == nil && a == "layer-"+w.token && b == "vol-"+w.token {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := w.svc.Podman(w.ctx, "logs", "--tail", "20", "web")
			ps, _ := w.svc.Podman(w.ctx, "ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Ports}}")
			w.t.Fatalf("%s: layer %q (%v), volume %q (%v)\ncontainers:\n%s\nweb's log:\n%s", when, a, err1, b, err2, ps, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *webLab) version() string {
	w.t.Helper()
	return w.pm("exec", "web", "dpkg-query", "-W", "-f=${Version}", "speedia-testweb")
}

func (w *webLab) imageExists(ref string) bool {
	conn, err := Connect(w.ctx, w.svc.Socket)
	if err != nil {
		w.t.Fatal(err)
	}
	ok, err := images.Exists(conn, ref, nil)
	return err == nil && ok
}

// The whole patch cycle on real Podman and real apt: a new version is
// installed and the service serves the same data; a held dpkg lock makes
// the patch wait, then fail with nothing changed; a package whose
// maintainer script breaks the service is rolled back (old version, both
// files, what was written since kept aside), marked bad and not retried.
func TestPatchInsideContainer(t *testing.T) {
	w := newWebLab(t)
	opt := PatchOptions{Driver: w.aptDrv, LockTimeout: 3 * time.Second}
	t0 := time.Now()
	w.checkFiles()
	t.Logf("files read in %s", time.Since(t0).Round(time.Millisecond))

	if _, err := w.m.Patch(w.ctx, "web", opt); !errors.Is(err, errkind.NothingToDo) {
		t.Fatalf("patch with nothing new: %v, want nothing to do", err)
	}

	t.Logf("nothing to do found in %s", time.Since(t0).Round(time.Millisecond))
	w.publish("web2")
	w.pm("create", "--name", "bb", "--label", LabelPatch+"=off", podmantest.ImageV1)
	st, err := w.m.CheckPatches(w.ctx, nil, "security", true)
	mustT(t, err)
	got := map[string]PatchStatus{}
	for _, s := range st {
		got[s.Name] = s
	}
	if s := got["web"]; !s.Patchable || !s.Checked || s.Manager != patch.Apt || len(s.Pending) != 1 || s.Pending[0].New != "2.0" || s.Policy != "security" {
		t.Errorf("CheckPatches web: %+v", s)
	}
	if s := got["bb"]; s.Patchable || s.Checked || s.Reason != "no known package manager: not patchable" || s.Policy != "off" || s.Error != "" {
		t.Errorf("CheckPatches bb: %+v", s)
	}
	w.pm("rm", "bb")
	dry := opt
	dry.DryRun = true
	rec, err := w.m.Patch(w.ctx, "web", dry)
	if err != nil || len(rec.Updates) != 1 || rec.Updates[0].Name != "speedia-testweb" || rec.Updates[0].Old != "1.0" || rec.Updates[0].New != "2.0" {
		t.Fatalf("dry run: %+v %v", rec, err)
	}
	if v := w.version(); v != "1.0" {
		t.Fatalf("the dry run installed %s", v)
	}
	before := w.inspect("web").ID
	rec, err = w.m.Patch(w.ctx, "web", opt)
	if err != nil {
		t.Fatal(err)
	}
	if v := w.version(); v != "2.0" {
		t.Fatalf("after the patch: speedia-testweb %s, want 2.0", v)
	}
	if d := w.inspect("web"); d.ID != before || !running(d) {
		t.Fatalf("the patched container is not the same running container: %s running=%v", d.ID, running(d))
	}
	w.serves("after the patch")
	if rec.Step != StepDone || !w.imageExists(rec.Image) {
		t.Fatalf("record %+v: no rollback point image", rec)
	}

	// A dpkg lock held inside: the patch waits for it, then fails and
	// changes nothing.
	w.publish("web3")
	// apt locks with fcntl (flock(1) would not conflict); perl-base is in
	// every Debian.
	w.pm("exec", "-d", "web", "perl", "-MFcntl", "-e", `open(my $f, ">>", "/var/lib/dpkg/lock-frontend") or die $!;
		my $l = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die "lock: $!";
		open(my $p, ">", "/tmp/lock.pid") or die $!; print $p "$$\n"; close $p; sleep 120`)
	w.waitFor("/tmp/lock.pid")
	start := time.Now()
	rec, err = w.m.Patch(w.ctx, "web", opt)
	if !errors.Is(err, errkind.Busy) || !errors.Is(err, patch.ErrLocked) {
		t.Fatalf("patch under a held lock: %v", err)
	}
	if waited := time.Since(start); waited < opt.LockTimeout {
		t.Errorf("gave up after %s, before the lock timeout %s", waited, opt.LockTimeout)
	}
	if v := w.version(); v != "2.0" || w.inspect("web").ID != before || w.imageExists(rec.Image) {
		t.Fatalf("after the lock failure: version %s, container %s (was %s), point image kept %v", v, w.inspect("web").ID, before, w.imageExists(rec.Image))
	}
	w.pm("exec", "web", "sh", "-c", "kill $(cat /tmp/lock.pid)")

	// A broken package: restored, what was written meanwhile kept aside.
	broken := opt
	broken.BeforeStep = func(step string) error {
		if step == StepUpgrade { // a customer writes while the patch runs
			w.pm("exec", "web", "sh", "-c", "echo late-"+w.token+" > /srv/www/vol/late.txt")
		}
		return nil
	}
	rec, err = w.m.Patch(w.ctx, "web", broken)
	if err == nil || !strings.Contains(err.Error(), "restored the rollback point") {
		t.Fatalf("patch with a breaking postinst: %v", err)
	}
	d := w.inspect("web")
	if !running(d) || d.ID == before {
		t.Fatalf("after the restore: running=%v id %s", running(d), d.ID)
	}
	if v := w.version(); v != "2.0" {
		t.Fatalf("after the restore: speedia-testweb %s, want 2.0 (the rollback point)", v)
	}
	w.serves("after the restore")
	if rec.Aside == nil || !asideHas(t, rec.Aside, "late-"+w.token) {
		t.Fatalf("the data written during the patch was not kept aside: %+v", rec.Aside)
	}
	if rec.Failed == "" || !w.imageExists(rec.Failed) {
		t.Fatalf("the patched container's layer is not kept as an image: %q", rec.Failed)
	}
	if _, err := w.m.Patch(w.ctx, "web", opt); !errors.Is(err, errkind.Bad) {
		t.Fatalf("the failed package set was tried again: %v", err)
	}
	if v := w.version(); v != "2.0" {
		t.Fatalf("a refused patch changed the version to %s", v)
	}

	// The admin undoes the good patch: its rollback point (1.0) runs
	// again with the data of that moment; what came since is kept aside.
	w.pm("exec", "web", "sh", "-c", "echo since-"+w.token+" > /srv/www/vol/since.txt")
	rec, err = w.m.RollbackPatch(w.ctx, "web", true)
	if err != nil {
		t.Fatalf("RollbackPatch: %v", err)
	}
	if v := w.version(); v != "1.0" || rec.Step != StepRestored {
		t.Fatalf("after the admin's rollback: speedia-testweb %s, step %s; want 1.0, restored", v, rec.Step)
	}
	w.serves("after the admin's rollback")
	if rec.Aside == nil || !asideHas(t, rec.Aside, "since-"+w.token) {
		t.Errorf("the data written since the patch was not kept aside: %+v", rec.Aside)
	}
	if _, err := w.m.RollbackPatch(w.ctx, "web", false); !errors.Is(err, errkind.NotFound) {
		t.Errorf("a second rollback: %v, want not found", err)
	}

	// The helper dies after the upgrade ran inside, before the restart:
	// its context goes, so nothing more happens and the record stays at
	// a step in the middle. The next helper puts the rollback point back.
	w.publish("web3")
	killed, kill := context.WithCancel(w.ctx)
	dying := opt
	dying.BeforeStep = func(step string) error {
		if step == StepRestart {
			kill()
			return errors.New("killed")
		}
		return nil
	}
	if _, err := w.m.Patch(killed, "web", dying); err == nil {
		t.Fatal("the killed patch succeeded")
	}
	if v := w.version(); v != "3.0" {
		t.Fatalf("the killed patch left speedia-testweb %s, want 3.0 (upgraded, not restored)", v)
	}
	recs, _ := w.m.PatchRecords("web")
	if last := recs[len(recs)-1]; last.Step != StepRestore {
		t.Fatalf("the killed patch's record is at step %s, want %s", last.Step, StepRestore)
	}
	done, err := w.m.RecoverPatches(w.ctx)
	if err != nil || len(done) != 1 {
		t.Fatalf("RecoverPatches = %v, %v", done, err)
	}
	if v := w.version(); v != "1.0" {
		t.Errorf("after the recovery speedia-testweb is %s, want 1.0 (the rollback point)", v)
	}
	w.serves("after the recovery")
	if done, err := w.m.RecoverPatches(w.ctx); err != nil || len(done) != 0 {
		t.Errorf("a second RecoverPatches = %v, %v; want nothing to do", done, err)
	}

	// Someone removes the container during its patch: it is made again
	// from the rollback point, with its volume's data.
	removing := opt
	removing.BeforeStep = func(step string) error {
		if step == StepRestart {
			w.pm("rm", "-f", "-t", "1", "web")
		}
		return nil
	}
	if _, err := w.m.Patch(w.ctx, "web", removing); err == nil || !strings.Contains(err.Error(), "restored the rollback point") {
		t.Fatalf("a patch whose container was removed: %v, want it restored", err)
	}
	if v := w.version(); v != "1.0" || !running(w.inspect("web")) {
		t.Errorf("after the removal: speedia-testweb %s, running %v; want 1.0 from the rollback point, running", v, running(w.inspect("web")))
	}
	w.serves("after the container was removed during its patch")
}

// waitFor waits until a file exists in the container.
func (w *webLab) waitFor(p string) {
	w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := w.svc.Podman(w.ctx, "exec", "web", "test", "-e", p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s did not appear in the container", p)
		}
	}
}

// checkFiles reads a container's files through the copy API, without
// starting anything in it: os-release through its symbolic link, the
// package manager, and a busybox container (never started) that has none.
func (w *webLab) checkFiles() {
	t := w.t
	conn, err := Connect(w.ctx, w.svc.Socket)
	mustT(t, err)
	files := ContainerFiles(conn, w.inspect("web").ID)
	o, ok := patch.ReadOS(files)
	if !ok || o.ID != "debian" || o.VersionID != "12" || o.Codename != "bookworm" {
		t.Errorf("ReadOS = %+v %v, want Debian 12 bookworm", o, ok)
	}
	if d := patch.Find(files); d == nil || d.Manager() != patch.Apt {
		t.Errorf("Find = %v, want apt", d)
	}
	if _, err := files("/etc/nosuch"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
	w.pm("create", "--name", "bb", podmantest.ImageV1)
	bb := ContainerFiles(conn, w.inspect("bb").ID)
	if _, ok := patch.ReadOS(bb); ok {
		t.Error("the busybox container has an os-release")
	}
	if d := patch.Find(bb); d != nil {
		t.Errorf("Find(busybox) = %v, want not patchable", d.Manager())
	}
	if running(w.inspect("bb")) {
		t.Error("reading files started the container")
	}
	w.pm("rm", "bb")
}

// asideHas reports whether a kept-aside data snapshot holds want in some file.
func asideHas(t *testing.T, s *DataSnapshot, want string) bool {
	t.Helper()
	for _, it := range s.Items {
		out, err := exec.Command("sh", "-c", `if [ -d "$1" ]; then cat "$1"/* 2>/dev/null; else tar -xOf "$1" 2>/dev/null; fi`, "-", it.Copy).Output()
		if err == nil && strings.Contains(string(out), want) {
			return true
		}
	}
	return false
}
