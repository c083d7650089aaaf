package vmhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get200(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	// A conditional request must still get the file: generations change
	// faster than Last-Modified's one-second resolution.
	req.Header.Set("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func serveRepo(t *testing.T) (*Repo, string, *bytes.Buffer) {
	t.Helper()
	r, err := NewRepo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r.Log = &log
	port, err := r.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, fmt.Sprintf("http://127.0.0.1:%d", port), &log
}

func TestRepoGenerations(t *testing.T) {
	needTools(t, "dpkg-deb", "dpkg-scanpackages")
	r, url, log := serveRepo(t)

	if got := get200(t, url+"/Packages"); got != "" {
		t.Errorf("new repo serves Packages %q, want empty", got)
	}
	if rel := get200(t, url+"/Release"); !strings.Contains(rel, " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 Packages\n") {
		t.Errorf("empty repo's Release lacks the empty Packages' hash:\n%s", rel)
	}

	v1 := tinyDeb(t, "speedia-tiny", "1.0")
	v2 := tinyDeb(t, "speedia-tiny", "2.0")
	if err := r.Publish(context.Background(), v1); err != nil {
		t.Fatal(err)
	}
	pk := get200(t, url+"/Packages")
	for _, want := range []string{"Package: speedia-tiny\n", "Version: 1.0\n", "Filename: ./speedia-tiny_1.0_all.deb\n", "SHA256: " + sha256File(t, v1) + "\n"} {
		if !strings.Contains(pk, want) {
			t.Errorf("Packages lacks %q:\n%s", want, pk)
		}
	}
	if got, want := get200(t, url+"/speedia-tiny_1.0_all.deb"), readFile(t, v1); got != want {
		t.Error("served deb differs from the published one")
	}

	if err := r.Publish(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	pk = get200(t, url+"/Packages")
	if !strings.Contains(pk, "Version: 2.0\n") || strings.Contains(pk, "Version: 1.0\n") {
		t.Errorf("second generation serves:\n%s", pk)
	}
	if s := status(t, url+"/speedia-tiny_1.0_all.deb"); s != http.StatusNotFound {
		t.Errorf("old deb: status %d, want 404", s)
	}

	if err := r.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := get200(t, url+"/Packages"); got != "" {
		t.Errorf("emptied repo serves Packages %q", got)
	}
	gens, _ := filepath.Glob(filepath.Join(r.dir, "gen-*"))
	if len(gens) != 2 {
		t.Errorf("generations on disk: %v, want the current and the one before", gens)
	}

	reqs := r.Requests()
	last := reqs[len(reqs)-1]
	if last != (Request{"GET", "/Packages", 200}) {
		t.Errorf("last request %v", last)
	}
	if !strings.Contains(log.String(), "repo: GET /speedia-tiny_1.0_all.deb 404\n") {
		t.Errorf("log lacks the 404:\n%s", log)
	}
}

func TestRepoRefusesDuplicateNames(t *testing.T) {
	needTools(t, "dpkg-deb", "dpkg-scanpackages")
	r, url, _ := serveRepo(t)
	a := tinyDeb(t, "speedia-tiny", "1.0")
	b := tinyDeb(t, "speedia-tiny", "1.0")
	if err := r.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), a, b); err == nil {
		t.Fatal("publishing two debs of one name succeeded")
	}
	// The failed publish left the served generation alone.
	if pk := get200(t, url+"/Packages"); !strings.Contains(pk, "Version: 1.0\n") {
		t.Errorf("after a failed publish:\n%s", pk)
	}
}

// TestRepoApt has the real apt read the repository as the generations
// change: within one second (equal Dates), and after the host's clock went
// back (apt ignores a Release older than the one it has).
func TestRepoApt(t *testing.T) {
	needTools(t, "dpkg-deb", "dpkg-scanpackages", "apt-get", "apt-cache")
	r, url, _ := serveRepo(t)
	apt := newApt(t, url)

	if out := apt.run("apt-get", "update"); strings.Contains(out, "W: ") {
		t.Errorf("apt warns about the empty repo:\n%s", out)
	}
	t0 := time.Now()
	for _, c := range []struct {
		v   string
		now time.Time
	}{{"1.0", t0}, {"2.0", t0}, {"3.0", t0.Add(-time.Minute)}} {
		r.now = func() time.Time { return c.now }
		v := c.v
		if err := r.Publish(context.Background(), tinyDeb(t, "speedia-tiny", v)); err != nil {
			t.Fatal(err)
		}
		if out := apt.run("apt-get", "update"); strings.Contains(out, "W: ") {
			t.Errorf("apt warns:\n%s", out)
		}
		if out := apt.run("apt-cache", "policy", "speedia-tiny"); !strings.Contains(out, "Candidate: "+v+"\n") {
			t.Errorf("after publishing %s apt says:\n%s", v, out)
		}
	}
	apt.run("apt-get", "download", "speedia-tiny")
	if _, err := os.Stat(filepath.Join(apt.dir, "speedia-tiny_3.0_all.deb")); err != nil {
		t.Errorf("apt-get download: %v", err)
	}
}

type aptRoot struct {
	t   *testing.T
	dir string
	env []string
}

// newApt makes an apt configuration of its own (lists, cache, an empty
// dpkg status), so apt runs without root and without the machine's sources.
func newApt(t *testing.T, url string) *aptRoot {
	root := t.TempDir()
	for _, d := range []string{"etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d",
		"etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"var/lib/dpkg/status":  "",
		"etc/apt/sources.list": "deb [trusted=yes] " + url + "/ ./\n",
		"apt.conf": fmt.Sprintf("Dir %q;\nDir::State::status %q;\nDebug::NoLocking \"true\";\n"+
			"Acquire::Languages \"none\";\n", root+"/", root+"/var/lib/dpkg/status"),
	}
	if os.Getuid() == 0 {
		files["apt.conf"] += "APT::Sandbox::User \"root\";\n"
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &aptRoot{t, root, append(os.Environ(), "APT_CONFIG="+filepath.Join(root, "apt.conf"), "LC_ALL=C")}
}

func (a *aptRoot) run(args ...string) string {
	a.t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = a.env, a.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		a.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
