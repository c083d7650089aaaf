package vmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

func TestParseIndex(t *testing.T) {
	f, err := os.Open("testdata/Packages")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseIndex(f, "http://m/debian")
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{
		Name: "crun", Version: "1.8.1-1", Architecture: "amd64",
		Filename: "pool/main/c/crun/crun_1.8.1-1_amd64.deb",
		SHA256:   "1f3d4c1a8e4b4a0b2e3b2d6c1d8a9f6e0a6e5d4c3b2a19080706050403020100",
		Depends:  "libc6 (>= 2.34), libcap2 (>= 1:2.10),\nlibseccomp2 (>= 2.2.1),\nlibyajl2 (>= 2.0.4)",
		Size:     289104, Base: "http://m/debian",
	}, {
		Name: "crun", Version: "1.10-1", Architecture: "amd64",
		Filename: "pool/main/c/crun/crun_1.10-1_amd64.deb",
		SHA256:   "2f3d4c1a8e4b4a0b2e3b2d6c1d8a9f6e0a6e5d4c3b2a19080706050403020100",
		Size:     300000, Base: "http://m/debian",
	}, {
		Name: "initramfs-tools", Version: "0.142+deb12u3", Architecture: "all",
		Filename: "pool/main/i/initramfs-tools/initramfs-tools_0.142+deb12u3_all.deb",
		SHA256:   "3f3d4c1a8e4b4a0b2e3b2d6c1d8a9f6e0a6e5d4c3b2a19080706050403020100",
		Depends:  "initramfs-tools-core (= 0.142+deb12u3), linux-base",
		Size:     16028, Base: "http://m/debian",
	}, {
		Name: "linux-image-amd64", Version: "6.12.95-1~bpo12+1", Architecture: "amd64",
		Filename: "pool/main/l/linux-signed-amd64/linux-image-amd64_6.12.95-1~bpo12+1_amd64.deb",
		SHA256:   "4f440c12df7999107660c2f7140defeceab9142cf1cbc19b34679bc53a5eb70d",
		Depends:  "linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)",
		Size:     1484, Base: "http://m/debian",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseIndex:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseIndexErrors(t *testing.T) {
	for _, in := range []string{
		" continuation first\n",
		"Package: a\nno colon here\n",
		"Package: a\nSize: big\n",
		"Package: a\n\nVersion: 1\n", // a stanza without Package
	} {
		if _, err := parseIndex(strings.NewReader(in), ""); err == nil {
			t.Errorf("parseIndex(%q) succeeded", in)
		}
	}
}

// mirror is a fake archive: Packages.xz per "root/suite", files by path.
type mirror struct {
	mu      sync.Mutex
	indexes map[string]string // "/debian/bookworm" -> Packages text
	files   map[string][]byte // "/debian/pool/..." -> content
	fail    bool
	hits    map[string]int
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hits[r.URL.Path]++
	if m.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if b, ok := m.files[r.URL.Path]; ok {
		w.Write(b)
		return
	}
	root, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/dists/")
	suite, file, _ := strings.Cut(rest, "/")
	text, ok := m.indexes["/"+root+"/"+suite]
	if !ok || file != "main/binary-amd64/Packages.xz" {
		http.NotFound(w, r)
		return
	}
	zw, _ := xz.NewWriter(w)
	zw.Write([]byte(text))
	zw.Close()
}

func (m *mirror) count(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[path]
}

func (m *mirror) set(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

func newMirror(t *testing.T) (*mirror, *Archive) {
	m := &mirror{indexes: map[string]string{}, files: map[string][]byte{}, hits: map[string]int{}}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	a := &Archive{Mirror: srv.URL + "/debian", SecurityMirror: srv.URL + "/debian-security", Cache: t.TempDir()}
	return m, a
}

func stanza(name, version string) string {
	return "Package: " + name + "\nVersion: " + version + "\nArchitecture: amd64\nFilename: pool/" + name + "_" + version + ".deb\n\n"
}

func TestFind(t *testing.T) {
	m, a := newMirror(t)
	m.set(func() {
		m.indexes["/debian/bookworm"] = stanza("crun", "1.8.1-1") + stanza("crun", "1.10-1~rc1") + stanza("podman", "4.3.1")
		m.indexes["/debian/bookworm-updates"] = ""
		m.indexes["/debian-security/bookworm-security"] = stanza("crun", "1.8.1-1+deb12u1")
	})
	suites := []string{"bookworm", "bookworm-updates", "bookworm-security"}
	ctx := context.Background()
	for _, c := range []struct{ name, version, want, base string }{
		{"crun", "1.8.1-1", "1.8.1-1", "/debian"},
		{"crun", "1.8.1-1+deb12u1", "1.8.1-1+deb12u1", "/debian-security"},
		{"crun", "", "1.10-1~rc1", "/debian"}, // by Debian's order, not by string
		{"podman", "", "4.3.1", "/debian"},
	} {
		p, err := a.Find(ctx, suites, c.name, c.version)
		if err != nil || p.Version != c.want || !strings.HasSuffix(p.Base, c.base) {
			t.Errorf("Find(%s %q) = %+v, %v; want %s from %s", c.name, c.version, p, err, c.want, c.base)
		}
	}
	_, err := a.Find(ctx, suites, "crun", "9.9")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "crun 9.9 in bookworm, bookworm-updates, bookworm-security") ||
		!strings.Contains(err.Error(), "1.8.1-1+deb12u1 (bookworm-security)") {
		t.Errorf("missing version: %v", err)
	}
	if _, err := a.Find(ctx, suites, "nosuch", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing package: %v", err)
	}
	if _, err := a.Find(ctx, []string{"trixie"}, "crun", ""); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("missing suite: %v", err)
	}
}

func TestIndexCache(t *testing.T) {
	m, a := newMirror(t)
	var log bytes.Buffer
	a.Log = &log
	const path = "/debian/dists/bookworm/main/binary-amd64/Packages.xz"
	ctx := context.Background()
	versions := func() string {
		t.Helper()
		pkgs, err := a.Index(ctx, "bookworm", "main")
		if err != nil {
			t.Fatal(err)
		}
		var v []string
		for _, p := range pkgs {
			v = append(v, p.Version)
		}
		return strings.Join(v, ",")
	}
	file := filepath.Join(a.Cache, "index", flatName(strings.TrimPrefix(a.Mirror, "http://")+"/dists/bookworm/main/binary-amd64/Packages"))
	age := func(d time.Duration) { // the clock, D after the cached file was written
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		a.now = func() time.Time { return st.ModTime().Add(d) }
	}

	m.set(func() { m.indexes["/debian/bookworm"] = stanza("crun", "1") })
	if v := versions(); v != "1" || m.count(path) != 1 {
		t.Fatalf("first: %s, %d fetches", v, m.count(path))
	}
	m.set(func() { m.indexes["/debian/bookworm"] = stanza("crun", "2") })
	age(11 * time.Hour)
	if v := versions(); v != "1" || m.count(path) != 1 {
		t.Errorf("within 12 h: %s, %d fetches", v, m.count(path))
	}
	age(13 * time.Hour)
	if v := versions(); v != "2" || m.count(path) != 2 {
		t.Errorf("after 12 h: %s, %d fetches", v, m.count(path))
	}
	m.set(func() { m.fail = true })
	age(13 * time.Hour)
	if v := versions(); v != "2" || m.count(path) != 3 {
		t.Errorf("mirror down: %s, %d fetches", v, m.count(path))
	}
	if !strings.Contains(log.String(), "refetching dists/bookworm/main/binary-amd64/Packages.xz failed, using the copy of") {
		t.Errorf("log: %q", log.String())
	}
	if _, err := a.Index(ctx, "bookworm-updates", "main"); err == nil {
		t.Error("mirror down and nothing cached: no error")
	}
	if left, _ := filepath.Glob(filepath.Join(a.Cache, "index", ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestDownload(t *testing.T) {
	m, a := newMirror(t)
	ctx := context.Background()
	good := []byte("a real deb")
	sum := sha256.Sum256(good)
	p := Package{Name: "crun", Version: "1", Filename: "pool/main/c/crun/crun_1_amd64.deb",
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(good)), Base: a.Mirror}
	m.set(func() { m.files["/debian/"+p.Filename] = good })

	file, err := a.Download(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if file != filepath.Join(a.Cache, "debs", "crun_1_amd64.deb") || readFile(t, file) != string(good) {
		t.Errorf("downloaded %s: %q", file, readFile(t, file))
	}
	if _, err := a.Download(ctx, p); err != nil || m.count("/debian/"+p.Filename) != 1 {
		t.Errorf("second download: %v, %d fetches (want the cached file)", err, m.count("/debian/"+p.Filename))
	}

	// A damaged cached file is fetched again.
	writeFile(t, file, "damaged", 0o644)
	if _, err := a.Download(ctx, p); err != nil || readFile(t, file) != string(good) {
		t.Errorf("repair: %v, %q", err, readFile(t, file))
	}

	// A corrupt download never gets the final name.
	bad := p
	bad.Filename = "pool/main/c/crun/crun_2_amd64.deb"
	m.set(func() { m.files["/debian/"+bad.Filename] = []byte("a real deb, tampered") })
	bad.Size = 0
	if _, err := a.Download(ctx, bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("corrupt download: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(a.Cache, "debs")); len(left) != 1 {
		t.Errorf("debs dir after a corrupt download: %v", left)
	}

	noSum := p
	noSum.SHA256 = ""
	if _, err := a.Download(ctx, noSum); err == nil {
		t.Error("a package without SHA256 was downloaded")
	}
}
