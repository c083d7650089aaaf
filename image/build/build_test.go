package build

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/kiwi"
)

func TestUUIDFromIsStableAndWellFormed(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := uuidFrom("h", "root-fs"), uuidFrom("h", "root-fs")
	if a != b || !re.MatchString(a) {
		t.Errorf("uuidFrom = %q, %q", a, b)
	}
	if uuidFrom("h", "esp") == a || uuidFrom("g", "root-fs") == a {
		t.Error("different inputs gave the same UUID")
	}
}

func TestTreeKeyIgnoresOnlyTheVersion(t *testing.T) {
	mk := func(version, pkg string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.xml"), []byte("<version>"+version+"</version><package name=\""+pkg+"\"/>"), 0o644)
		os.MkdirAll(filepath.Join(dir, "root/usr/bin"), 0o755)
		os.WriteFile(filepath.Join(dir, "root/usr/bin/x"), []byte("bin"), 0o755)
		k, err := treeKey(dir, version)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := mk("1.0.0", "htop")
	if got := mk("1.0.1", "htop"); got != base {
		t.Errorf("version change changed the key: %s vs %s", got, base)
	}
	if got := mk("1.0.0", "nginx"); got == base {
		t.Error("package change kept the key")
	}
}

func TestDpkgPackagesListsInstalledOnly(t *testing.T) {
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "var/lib/dpkg"), 0o755)
	status := `Package: zsh
Status: install ok installed
Version: 5.9-4

Package: gone
Status: deinstall ok config-files
Version: 1.0

Package: apt
Status: install ok installed
Priority: important
Version: 2.6.1
`
	os.WriteFile(filepath.Join(tree, "var/lib/dpkg/status"), []byte(status), 0o644)
	got, err := dpkgPackages(tree)
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{"apt", "2.6.1"}, {"zsh", "5.9-4"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("packages = %v, want %v", got, want)
	}
}

// A rebuild of the same spec with only the version changed (even from a
// renamed file) must find the cached tree: render it for real both ways.
func TestTreeKeyOfRenderedDescriptions(t *testing.T) {
	s, err := spec.Load("../../examples/debian-web.toml")
	if err != nil {
		t.Fatal(err)
	}
	key := func(file, version string) string {
		c := *s
		c.File, c.Version = file, version
		dir := filepath.Join(t.TempDir(), "desc")
		if _, err := kiwi.Render(&c, dir, nil); err != nil {
			t.Fatal(err)
		}
		k, err := treeKey(dir, version)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if a, b := key("a.toml", "1.0.0"), key("b/host.toml", "1.0.1"); a != b {
		t.Errorf("keys differ: %s, %s", a, b)
	}
	c := *s
	c.Packages = append(c.Packages, "vim")
	dir := filepath.Join(t.TempDir(), "desc")
	if _, err := kiwi.Render(&c, dir, nil); err != nil {
		t.Fatal(err)
	}
	if k, _ := treeKey(dir, c.Version); k == key("a.toml", c.Version) {
		t.Error("an added package kept the key")
	}
}

func TestFstabMountsEverySharedSubvolume(t *testing.T) {
	got := fstab(Layout{RootUUID: "R", ESPPartUUID: "E"})
	for _, want := range []string{
		"UUID=R / btrfs defaults 0 0\n",
		"UUID=R /.snapshots btrfs subvol=@/.snapshots 0 0\n",
		"UUID=R /var btrfs subvol=@/var 0 0\n",
		"UUID=R /root btrfs subvol=@/root 0 0\n",
		"UUID=R /home btrfs subvol=@/home 0 0\n",
		"UUID=R /srv btrfs subvol=@/srv 0 0\n",
		"PARTUUID=E /efi vfat umask=0077,noatime 0 2\n",
		"tmpfs /tmp tmpfs mode=1777,", // the read-only root has no writable /tmp otherwise
	} {
		if !strings.Contains(got, want) {
			t.Errorf("fstab lacks %q:\n%s", want, got)
		}
	}
}
