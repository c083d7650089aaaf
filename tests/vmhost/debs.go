package vmhost

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Bookworm are the suites the host image is built from.
var Bookworm = []string{"bookworm", "bookworm-updates", "bookworm-security"}

// Backports is where a newer kernel than the image's comes from.
const Backports = "bookworm-backports"

// recipe names the edits below in the cache: bump it when an edit changes,
// or reruns keep serving the old rebuilds.
const recipe = "r3"

// rebuildEpoch is SOURCE_DATE_EPOCH for rebuilt debs: dpkg-deb clamps every
// mtime to it, so a rebuild of the same input is byte-identical.
const rebuildEpoch = 1700000000

// ErrNoControl means an edit removed the package's DEBIAN/control.
var ErrNoControl = errors.New("vmhost: rebuilt tree has no DEBIAN/control")

// KernelUpdate downloads the newest linux-image-amd64 of bookworm-backports
// and the kernel package it pins; release is that kernel's uname -r.
func KernelUpdate(ctx context.Context, a *Archive) (debs []string, release string, err error) {
	meta, err := a.Find(ctx, []string{Backports}, "linux-image-amd64", "")
	if err != nil {
		return nil, "", err
	}
	name, version, err := kernelDep(meta.Depends)
	if err != nil {
		return nil, "", fmt.Errorf("vmhost: %s: %w", meta, err)
	}
	image, err := a.Find(ctx, []string{Backports}, name, version)
	if err != nil {
		return nil, "", err
	}
	for _, p := range []Package{meta, image} {
		f, err := a.Download(ctx, p)
		if err != nil {
			return nil, "", err
		}
		debs = append(debs, f)
	}
	return debs, strings.TrimPrefix(name, "linux-image-"), nil
}

var pinnedImage = regexp.MustCompile(`^(linux-image-[^\s(:]+)(?::\S+)?\s*\(\s*=\s*([^\s)]+)\s*\)$`)

// kernelDep finds "linux-image-RELEASE (= VERSION)" in the metapackage's
// Depends (bookworm-backports: exactly that, one entry).
func kernelDep(depends string) (name, version string, err error) {
	for _, d := range strings.Split(depends, ",") {
		first, _, _ := strings.Cut(d, "|")
		if m := pinnedImage.FindStringSubmatch(strings.TrimSpace(first)); m != nil {
			return m[1], m[2], nil
		}
	}
	return "", "", fmt.Errorf("no pinned linux-image-* in Depends %q", depends)
}

// Rebuild unpacks deb, sets its Version, lets edit change the tree (root
// holds DEBIAN/ and the files), and packs it into outDir as
// NAME_VERSION_ARCH.deb. The tree is packed as owned by root, so it fits
// packages whose files all belong to root. DEBIAN/md5sums, if present, is
// recomputed.
func Rebuild(ctx context.Context, deb, outDir, version string, edit func(root string) error) (string, error) {
	tmp, err := os.MkdirTemp("", "vmhost-rebuild-")
	if err != nil {
		return "", fmt.Errorf("vmhost: rebuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := command(ctx, "dpkg-deb", "-R", deb, root); err != nil {
		return "", fmt.Errorf("vmhost: rebuild %s: %w", filepath.Base(deb), err)
	}
	control := filepath.Join(root, "DEBIAN", "control")
	b, err := os.ReadFile(control)
	if err != nil {
		return "", fmt.Errorf("vmhost: rebuild %s: %w", filepath.Base(deb), err)
	}
	b, err = setField(b, "Version", version)
	if err != nil {
		return "", fmt.Errorf("vmhost: rebuild %s: %w", filepath.Base(deb), err)
	}
	if err := os.WriteFile(control, b, 0o644); err != nil {
		return "", fmt.Errorf("vmhost: rebuild %s: %w", filepath.Base(deb), err)
	}
	if edit != nil {
		if err := edit(root); err != nil {
			return "", fmt.Errorf("vmhost: rebuild %s: edit: %w", filepath.Base(deb), err)
		}
	}
	p, err := readControl(control)
	if err != nil {
		return "", fmt.Errorf("vmhost: rebuild %s: %w", filepath.Base(deb), err)
	}
	if err := writeMD5sums(root); err != nil {
		return "", fmt.Errorf("vmhost: rebuild %s: md5sums: %w", filepath.Base(deb), err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("vmhost: rebuild: %w", err)
	}
	out := filepath.Join(outDir, debName(p))
	f, err := os.CreateTemp(outDir, ".tmp-*.deb") // unique: rebuilds may run in parallel
	if err != nil {
		return "", fmt.Errorf("vmhost: rebuild: %w", err)
	}
	f.Close()
	tmpOut := f.Name()
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", root, tmpOut)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.Itoa(rebuildEpoch))
	if err := run(cmd); err != nil {
		os.Remove(tmpOut)
		return "", fmt.Errorf("vmhost: rebuild %s: %w", filepath.Base(deb), err)
	}
	if err := os.Chmod(tmpOut, 0o644); err != nil {
		os.Remove(tmpOut)
		return "", fmt.Errorf("vmhost: rebuild: %w", err)
	}
	if err := os.Rename(tmpOut, out); err != nil {
		os.Remove(tmpOut)
		return "", fmt.Errorf("vmhost: rebuild: %w", err)
	}
	return out, nil
}

func readControl(file string) (Package, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return Package{}, ErrNoControl
	}
	if err != nil {
		return Package{}, err
	}
	defer f.Close()
	ps, err := parseIndex(f, "")
	if err != nil {
		return Package{}, fmt.Errorf("control: %w", err)
	}
	if len(ps) != 1 || ps[0].Version == "" || ps[0].Architecture == "" {
		return Package{}, errors.New("control: want one stanza with Package, Version and Architecture")
	}
	return ps[0], nil
}

// debName is Debian's pool file name: the epoch is not part of it.
func debName(p Package) string {
	v := p.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return p.Name + "_" + v + "_" + p.Architecture + ".deb"
}

// setField replaces the value of a single-line field of a control file.
func setField(control []byte, name, value string) ([]byte, error) {
	lines := strings.SplitAfter(string(control), "\n")
	for i, l := range lines {
		k, _, ok := strings.Cut(l, ":")
		if ok && l[0] != ' ' && l[0] != '\t' && strings.EqualFold(k, name) {
			lines[i] = name + ": " + value + "\n"
			return []byte(strings.Join(lines, "")), nil
		}
	}
	return nil, fmt.Errorf("control has no %s field", name)
}

// writeMD5sums recomputes DEBIAN/md5sums like dh_md5sums (conffiles left
// out), so dpkg --verify on the guest stays quiet after an edit.
func writeMD5sums(root string) error {
	file := filepath.Join(root, "DEBIAN", "md5sums")
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	conffiles := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(root, "DEBIAN", "conffiles")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			conffiles[strings.TrimPrefix(l, "/")] = true
		}
	}
	var buf bytes.Buffer
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "DEBIAN" && d.IsDir() {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || conffiles[rel] {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "%x  %s\n", md5.Sum(b), rel)
		return nil
	})
	if err != nil {
		return err
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

func command(ctx context.Context, name string, args ...string) error {
	return run(exec.CommandContext(ctx, name, args...))
}

func run(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// rebuildCached rebuilds bookworm's NAME at VERSION as VERSION+speediaN
// with edit, into Cache/built/RECIPE/KIND; an existing result is reused
// without touching the network.
func rebuildCached(ctx context.Context, a *Archive, kind, name, version string, n int, edit func(string) error) (string, error) {
	if n < 1 {
		return "", fmt.Errorf("vmhost: %s %s: bump number %d < 1", name, version, n)
	}
	if version == "" {
		return "", fmt.Errorf("vmhost: %s: no version given", name)
	}
	newVersion := fmt.Sprintf("%s+speedia%d", version, n)
	dir := filepath.Join(a.Cache, "built", recipe, kind)
	if m, _ := filepath.Glob(filepath.Join(dir, debName(Package{Name: name, Version: newVersion, Architecture: "*"}))); len(m) == 1 {
		return m[0], nil
	}
	p, err := a.Find(ctx, Bookworm, name, version)
	if err != nil {
		return "", err
	}
	deb, err := a.Download(ctx, p)
	if err != nil {
		return "", err
	}
	return Rebuild(ctx, deb, dir, newVersion, edit)
}

// BrokenRuntime is bookworm's crun at VERSION (the image's) rebuilt as
// VERSION+speedia1 with /usr/bin/crun failing: an update that breaks every
// container start.
func BrokenRuntime(ctx context.Context, a *Archive, version string) (string, error) {
	return rebuildCached(ctx, a, "broken-runtime", "crun", version, 1, breakRuntime)
}

// BrokenInitrd is bookworm's initramfs-tools at VERSION rebuilt as
// VERSION+speedia1 with a hook that keeps btrfs out of every initrd it
// builds; its postinst rebuilds the newest kernel's initrd, so the next
// boot cannot mount the btrfs root.
func BrokenInitrd(ctx context.Context, a *Archive, version string) (string, error) {
	return rebuildCached(ctx, a, "broken-initrd", "initramfs-tools", version, 1, breakInitrd)
}

// Bump is bookworm's NAME at VERSION rebuilt unchanged as VERSION+speediaN:
// a fresh, harmless update.
func Bump(ctx context.Context, a *Archive, name, version string, n int) (string, error) {
	return rebuildCached(ctx, a, "bump", name, version, n, nil)
}

// RuntimeError is what the broken crun prints.
const RuntimeError = "crun: broken by a bad update (speedia e2e)"

const brokenCrun = "#!/bin/sh\necho '" + RuntimeError + "' >&2\nexit 1\n"

func breakRuntime(root string) error {
	bin := filepath.Join(root, "usr", "bin", "crun")
	if st, err := os.Lstat(bin); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", bin)
	}
	if err := os.Remove(bin); err != nil {
		return err
	}
	return os.WriteFile(bin, []byte(brokenCrun), 0o755)
}

// InitrdHook is where BrokenInitrd's hook lands.
const InitrdHook = "/usr/share/initramfs-tools/hooks/zz-speedia-e2e-regression"

// brokenHook follows initramfs-tools(8): answer "prereqs", else work in
// DESTDIR. Hooks run after the modules are copied in (the btrfs hook adds
// btrfs) and before depmod, so the initrd ends up without btrfs.
const brokenHook = `#!/bin/sh
# Speedia e2e regression: a deliberately bad initramfs-tools update. Every
# initrd built with this hook lacks the btrfs module, so the root cannot mount.
PREREQ=""
prereqs()
{
	echo "$PREREQ"
}
case "$1" in
prereqs)
	prereqs
	exit 0
	;;
esac

rm -rf "${DESTDIR}"/usr/lib/modules/*/kernel/fs/btrfs "${DESTDIR}"/lib/modules/*/kernel/fs/btrfs
`

// breakInitrd adds the hook and keeps the package's own postinst: when dpkg
// configures it, it rebuilds the initrd of the newest kernel, the one the
// next boot entry uses.
func breakInitrd(root string) error {
	hook := filepath.Join(root, filepath.FromSlash(InitrdHook))
	if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(hook, []byte(brokenHook), 0o755); err != nil {
		return err
	}
	return os.Chmod(hook, 0o755) // whatever the umask
}
