package vmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, file, s string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, file string) string {
	sum := sha256.Sum256([]byte(readFile(t, file)))
	return hex.EncodeToString(sum[:])
}

// tinyDeb builds NAME_VERSION_all.deb (a file, a conffile, md5sums, a
// multi-line Description) in a new temporary directory.
func tinyDeb(t *testing.T, name, version string) string {
	t.Helper()
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "DEBIAN/control"), "Package: "+name+"\nVersion: "+version+
		"\nArchitecture: all\nMaintainer: Speedia tests <tests@speedia.invalid>\nDescription: tiny test package\n"+
		" kept over rebuilds\n", 0o644)
	writeFile(t, filepath.Join(tree, "DEBIAN/conffiles"), "/etc/"+name+".conf\n", 0o644)
	writeFile(t, filepath.Join(tree, "etc", name+".conf"), "x=1\n", 0o644)
	writeFile(t, filepath.Join(tree, "usr/share", name, "version"), version+"\n", 0o644)
	writeFile(t, filepath.Join(tree, "DEBIAN/md5sums"), "", 0o644)
	if err := writeMD5sums(tree); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), debName(Package{Name: name, Version: version, Architecture: "all"}))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "--build", tree, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	return out
}

func debField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s %s: %v", deb, field, err)
	}
	return strings.TrimSpace(string(out))
}

func debContents(t *testing.T, deb string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c %s: %v", deb, err)
	}
	return string(out)
}

func debControlFile(t *testing.T, deb, name string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--ctrl-tarfile", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("tar", "-x", "-C", dir)
	cmd.Stdin = bytes.NewReader(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
	return readFile(t, filepath.Join(dir, name))
}

func TestRebuild(t *testing.T) {
	needTools(t, "dpkg-deb", "tar")
	ctx := context.Background()
	deb := tinyDeb(t, "speedia-tiny", "1.0")
	edit := func(root string) error {
		return os.WriteFile(filepath.Join(root, "usr/share/speedia-tiny/added"), []byte("new\n"), 0o644)
	}
	out, err := Rebuild(ctx, deb, t.TempDir(), "1.0+speedia1", edit)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || filepath.Base(out) != "speedia-tiny_1.0+speedia1_all.deb" || st.Mode().Perm() != 0o644 {
		t.Errorf("output %s: %v", out, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if v := debField(t, out, "Version"); v != "1.0+speedia1" {
		t.Errorf("Version %q", v)
	}
	if d := debField(t, out, "Description"); d != "tiny test package\n kept over rebuilds" {
		t.Errorf("Description %q", d)
	}
	c := debContents(t, out)
	if !regexp.MustCompile(`(?m)^-rw-r--r-- root/root .* \./usr/share/speedia-tiny/added$`).MatchString(c) {
		t.Errorf("edit missing or not owned by root:\n%s", c)
	}
	sums := debControlFile(t, out, "md5sums")
	if !strings.Contains(sums, "  usr/share/speedia-tiny/added\n") || strings.Contains(sums, "etc/") {
		t.Errorf("md5sums (new file in, conffile out):\n%s", sums)
	}
	if cf := debControlFile(t, out, "conffiles"); cf != "/etc/speedia-tiny.conf\n" {
		t.Errorf("conffiles %q", cf)
	}

	// Reproducible: the same input gives the same bytes.
	again, err := Rebuild(ctx, deb, t.TempDir(), "1.0+speedia1", edit)
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, again) != readFile(t, out) {
		t.Error("two rebuilds of one input differ")
	}

	// The epoch is in the control file but not in the file name.
	out, err = Rebuild(ctx, deb, t.TempDir(), "1:1.0+speedia2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(out) != "speedia-tiny_1.0+speedia2_all.deb" || debField(t, out, "Version") != "1:1.0+speedia2" {
		t.Errorf("epoch version: %s, %s", out, debField(t, out, "Version"))
	}
}

func TestRebuildRefusesLostControl(t *testing.T) {
	needTools(t, "dpkg-deb")
	dir := t.TempDir()
	_, err := Rebuild(context.Background(), tinyDeb(t, "speedia-tiny", "1.0"), dir, "2.0", func(root string) error {
		return os.Remove(filepath.Join(root, "DEBIAN/control"))
	})
	if !errors.Is(err, ErrNoControl) {
		t.Fatalf("err = %v, want ErrNoControl", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in outDir: %v", left)
	}
}

func TestSetField(t *testing.T) {
	in := "Package: a\nVersion: 1\nDescription: x\n Version: not a field\n"
	out, err := setField([]byte(in), "Version", "2")
	if err != nil || string(out) != "Package: a\nVersion: 2\nDescription: x\n Version: not a field\n" {
		t.Errorf("setField = %q, %v", out, err)
	}
	if _, err := setField([]byte("Package: a\n Version: 1\n"), "Version", "2"); err == nil {
		t.Error("a continuation line was taken for the field")
	}
}

func TestKernelDep(t *testing.T) {
	for _, c := range []struct{ depends, name, version string }{
		{"linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)", "linux-image-6.12.95+deb12-amd64", "6.12.95-1~bpo12+1"},
		{"kmod, linux-image-6.1.0-40-amd64 (=6.1.153-1) | linux-image-6.1.0-40-amd64-unsigned (= 6.1.153-1)", "linux-image-6.1.0-40-amd64", "6.1.153-1"},
		{"linux-image-6.1.0-40-amd64", "", ""},              // not pinned
		{"linux-image-6.1.0-40-amd64 (>= 6.1)", "", ""},     // not pinned
		{"kmod | linux-image-6.1.0-40-amd64 (= 1)", "", ""}, // only an alternative
		{"", "", ""},
	} {
		name, version, err := kernelDep(c.depends)
		if name != c.name || version != c.version || (err == nil) != (c.name != "") {
			t.Errorf("kernelDep(%q) = %q, %q, %v", c.depends, name, version, err)
		}
	}
}

func TestBreakRuntime(t *testing.T) {
	root := t.TempDir()
	if err := breakRuntime(root); err == nil {
		t.Fatal("a tree without usr/bin/crun was accepted")
	}
	bin := filepath.Join(root, "usr/bin/crun")
	writeFile(t, bin, "\x7fELF the real crun", 0o755)
	if err := breakRuntime(root); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(bin); st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", st.Mode())
	}
	needTools(t, "sh")
	cmd := exec.Command(bin, "run", "x")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || stderr.String() != RuntimeError+"\n" {
		t.Errorf("broken crun: %v, stderr %q", err, stderr.String())
	}
}

func TestBreakInitrd(t *testing.T) {
	needTools(t, "sh")
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "DEBIAN/postinst"), readFile(t, "testdata/initramfs-tools_0.142+deb12u3.postinst"), 0o755)
	if err := breakInitrd(root); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(root, InitrdHook)
	if st, err := os.Stat(hook); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("hook: %v %v", st, err)
	}

	// The hook as mkinitramfs runs it: first for its prerequisites, then
	// with DESTDIR set.
	out, err := exec.Command("sh", hook, "prereqs").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("prereqs: %q, %v", out, err)
	}
	dest := t.TempDir()
	mod := filepath.Join(dest, "usr/lib/modules/6.12.95+deb12-amd64/kernel/fs/btrfs/btrfs.ko.xz")
	other := filepath.Join(dest, "usr/lib/modules/6.12.95+deb12-amd64/kernel/fs/ext4/ext4.ko.xz")
	writeFile(t, mod, "module", 0o644)
	writeFile(t, other, "module", 0o644)
	cmd := exec.Command("sh", hook)
	cmd.Env = append(os.Environ(), "DESTDIR="+dest)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hook: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Dir(mod)); !os.IsNotExist(err) {
		t.Errorf("btrfs is still in the initrd: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the hook removed more than btrfs: %v", err)
	}

	// The package's own postinst is kept: it rebuilds the newest kernel's initrd.
	if got, want := readFile(t, filepath.Join(root, "DEBIAN/postinst")), readFile(t, "testdata/initramfs-tools_0.142+deb12u3.postinst"); got != want {
		t.Errorf("postinst changed:\n%s", got)
	}
}

// TestRebuildCachedReuses checks that a finished rebuild is found again
// without the archive (whose mirror here does not exist).
func TestRebuildCachedReuses(t *testing.T) {
	a := &Archive{Cache: t.TempDir(), Mirror: "http://127.0.0.1:1/none"}
	ctx := context.Background()
	if _, err := Bump(ctx, a, "speedia-tiny", "1.0", 1); err == nil {
		t.Fatal("Bump without a mirror or cache succeeded")
	}
	want := filepath.Join(a.Cache, "built", recipe, "bump", "speedia-tiny_1.0+speedia1_all.deb")
	writeFile(t, want, "cached", 0o644)
	got, err := Bump(ctx, a, "speedia-tiny", "1.0", 1)
	if err != nil || got != want {
		t.Errorf("Bump = %s, %v; want the cached %s", got, err, want)
	}
	if _, err := Bump(ctx, a, "speedia-tiny", "1.0", 2); err == nil {
		t.Error("Bump 2 took Bump 1's result")
	}
	// crun bumped once and crun broken share a version: not a file.
	writeFile(t, filepath.Join(a.Cache, "built", recipe, "bump", "crun_1.0+speedia1_amd64.deb"), "bumped", 0o644)
	if _, err := BrokenRuntime(ctx, a, "1.0"); err == nil {
		t.Error("BrokenRuntime took Bump's result")
	}
}
