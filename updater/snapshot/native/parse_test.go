package native

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
)

// Output of apt-get -s dist-upgrade (bookworm), trimmed.
const simulation = `Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  libc6 speedia-testapp
Inst libc6 [2.36-9+deb12u4] (2.36-9+deb12u10 Debian:12.11/stable [amd64])
Inst speedia-testapp [1.0] (2.0 localhost [all])
Inst linux-image-6.1.0-37-amd64 (6.1.140-1 Debian-Security:12/stable-security [amd64])
Remv old-pkg [0.9]
Conf libc6 (2.36-9+deb12u10 Debian:12.11/stable [amd64])
`

func TestParseSimulation(t *testing.T) {
	want := []pkgver.Change{
		{Name: "libc6", Old: "2.36-9+deb12u4", New: "2.36-9+deb12u10", Kind: "upgrade"},
		{Name: "speedia-testapp", Old: "1.0", New: "2.0", Kind: "upgrade"},
		{Name: "linux-image-6.1.0-37-amd64", New: "6.1.140-1", Kind: "install"},
		{Name: "old-pkg", Old: "0.9", Kind: "remove"},
	}
	if got := parseSimulation([]byte(simulation)); !reflect.DeepEqual(got, want) {
		t.Fatalf("parseSimulation:\n got %+v\nwant %+v", got, want)
	}
	if got := parseSimulation([]byte("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")); len(got) != 0 {
		t.Fatalf("nothing to do parsed as %+v", got)
	}
}

func TestInstalledPackages(t *testing.T) {
	status := `Package: a
Status: install ok installed
Version: 1.0
Description: multi
 line

Package: removed
Status: deinstall ok config-files
Version: 2.0

Package: b
Version: 1:3.0-1
Status: install ok installed
`
	got, err := installedPackages(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "1.0", "b": "1:3.0-1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("installedPackages = %v, want %v", got, want)
	}
}

func TestFirstError(t *testing.T) {
	log := `Setting up speedia-testbroken (2.0) ...
speedia-testbroken: postinst fails on purpose
dpkg: error processing package speedia-testbroken (--configure):
 installed speedia-testbroken package post-installation script subprocess returned error exit status 1
Errors were encountered while processing:
E: Sub-process /usr/bin/dpkg returned an error code (1)`
	if got := firstError(log); got != "dpkg: error processing package speedia-testbroken (--configure):" {
		t.Fatalf("firstError = %q", got)
	}
}

func TestInfoRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "info.xml")
	in := &info{Type: "single", Num: 4, Date: "2026-11-22 01:02:03", Description: "speedia update"}
	in.set("speedia.state", "ready")
	in.set("speedia.parent", "3")
	in.set("speedia.good", "yes")
	if err := writeInfo(p, in); err != nil {
		t.Fatal(err)
	}
	back, err := readInfo(p)
	if err != nil {
		t.Fatal(err)
	}
	s := toSnapshot(4, back, nil)
	if s.State != snapshot.StateReady || s.Parent != 3 || !s.Good || s.Date.Format(snapperDate) != "2026-11-22 01:02:03" {
		t.Fatalf("round trip: %+v", s)
	}
	// snapper's own snapshots carry no speedia.state: foreign, never ours to boot or delete.
	if s := toSnapshot(5, &info{Num: 5, Description: "boot"}, nil); s.State != snapshot.StateForeign {
		t.Fatalf("snapper snapshot is %s", s.State)
	}
	// A directory without info.xml is a transaction killed right after mkdir.
	if s := toSnapshot(6, nil, nil); s.State != snapshot.StateStaging {
		t.Fatalf("bare directory is %s", s.State)
	}
}
