//go:build e2e

package iso

// A real install: the ISO built from Debian's kernel, systemd-boot and
// busybox-static boots in QEMU (OVMF, q35, TCG) from an AHCI CD drive and
// writes the image onto an empty virtio disk, then powers off.
//
//	go test -tags e2e -count=1 -run E2E -v ./image/iso/
//
// The image tree is made from the Debian packages (apt-get download, then
// dpkg-deb -x, about 10 s) and kept in $SPEEDIA_TEST_CACHE (default
// /var/cache/speedia-test)/iso/, one per kernel ABI.

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/speedia/host/tests/vm"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestE2EInstall(t *testing.T) {
	tree := debianTree(t)
	dir := t.TempDir()
	raw := gptImage(t, filepath.Join(dir, "raw.img"), 64)
	iso := filepath.Join(dir, "install.iso")
	start := time.Now()
	err := Write(context.Background(), Options{
		Tree: tree, Raw: raw, Out: iso, Label: "SPEEDIA_INSTALL", Date: date,
		KernelArgs: []string{"console=ttyS0,115200"}, Log: logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ISO built in %s", time.Since(start).Round(time.Millisecond))

	// Bigger than the image: the installer also clears the disk's end.
	target := filepath.Join(dir, "target.img")
	writeSparse(t, target, 128*MiB, map[int64][]byte{127 * MiB: bytes.Repeat([]byte{0xee}, MiB)})
	start = time.Now()
	v := boot(t, iso, target)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := v.WaitSerial(ctx, regexp.MustCompile(`speedia-install: (done|FAILED)`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l, "done, wrote 7 MiB to /dev/vda") {
		t.Fatalf("%s\n%s", l, v.SerialTail(30))
	}
	if err := v.Wait(ctx); err != nil {
		t.Fatalf("QEMU after the install: %v\n%s", err, v.SerialTail(20))
	}
	t.Logf("boot to power-off in %s; the installer said:\n%s", time.Since(start).Round(time.Second), said(v))
	v.Close()

	want, _ := os.ReadFile(raw)
	got, _ := os.ReadFile(target)
	if !bytes.Equal(got[:len(want)], want) {
		t.Error("the target disk differs from the image")
	}
	if !bytes.Equal(got[127*MiB:], make([]byte, MiB)) {
		t.Error("the target disk's last MiB was not cleared")
	}
}

func TestE2ERefusesDiskWithData(t *testing.T) {
	tree := debianTree(t)
	dir := t.TempDir()
	raw := gptImage(t, filepath.Join(dir, "raw.img"), 64)
	iso := filepath.Join(dir, "install.iso")
	// Two consoles: the installer talks on both, the serial one not being
	// /dev/console.
	if err := Write(context.Background(), Options{
		Tree: tree, Raw: raw, Out: iso, Label: "SPEEDIA_INSTALL", Date: date,
		KernelArgs: []string{"console=ttyS0,115200", "console=tty0"},
	}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target.img")
	writeSparse(t, target, 128*MiB, map[int64][]byte{512: []byte("EFI PART, an old install")})
	before, _ := os.ReadFile(target)
	v := boot(t, iso, target)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := v.WaitSerial(ctx, regexp.MustCompile(`speedia-install: (done|FAILED)`))
	if err != nil {
		t.Fatal(err)
	}
	tail := v.SerialTail(15)
	if !strings.Contains(l, "FAILED: no target disk") || !strings.Contains(tail, "not /dev/vda: it is not empty") {
		t.Fatalf("%s\n%s", l, tail)
	}
	// It stays up with a shell instead of powering off.
	if _, err := v.WaitSerial(ctx, regexp.MustCompile(`a shell follows`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // for the shell to start reading
	if err := v.SerialWrite("echo hi-$((6*7))\r"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitSerial(ctx, regexp.MustCompile(`^hi-42`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Exited():
		t.Error("QEMU exited after a failed install")
	case <-time.After(3 * time.Second):
	}
	t.Logf("the installer said:\n%s", said(v))
	v.Close()
	if after, _ := os.ReadFile(target); !bytes.Equal(after, before) {
		t.Error("the refused disk was changed")
	}
}

// said is the installer's lines on the serial console.
func said(v *vm.VM) string {
	b, _ := os.ReadFile(v.SerialLog())
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "speedia-install:") {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return strings.Join(out, "\n")
}

func boot(t *testing.T, iso, target string) *vm.VM {
	t.Helper()
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := vm.Start(ctx, vm.Options{
		CDROM:    iso,
		Disks:    []vm.Disk{{Path: target}},
		NoReboot: true,
		Log:      logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func writeSparse(t *testing.T, p string, size int64, data map[int64][]byte) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// gptImage makes a sparse disk image of sizeMiB with a GPT (two
// partitions) by go-diskfs and random data in both partitions: 7 MiB of
// data in all, counting the GPT at either end.
func gptImage(t *testing.T, p string, sizeMiB int64) string {
	t.Helper()
	d, err := diskfs.Create(p, sizeMiB*MiB, diskfs.SectorSizeDefault)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Partition(&gpt.Table{
		ProtectiveMBR: true,
		Partitions: []*gpt.Partition{
			{Index: 1, Start: 2048, End: 34*2048 - 1, Type: gpt.EFISystemPartition, Name: "esp"},
			{Index: 2, Start: 34 * 2048, End: uint64(sizeMiB-1)*2048 - 1, Type: gpt.LinuxFilesystem, Name: "root"},
		},
	})
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, n := range map[int64]int{2 * MiB: 100 << 10, 40*MiB + 4096: 2 * MiB, 60 * MiB: 4096} {
		if _, err := f.WriteAt(rnd(n), off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// debianTree returns an image tree with Debian's current bookworm kernel,
// systemd-boot and busybox-static, made once per kernel ABI.
func debianTree(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		t.Skipf("apt-cache: %v (run apt-get update)", err)
	}
	m := regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)`).FindSubmatch(out)
	if m == nil {
		t.Skipf("no kernel package in:\n%s", out)
	}
	kpkg := string(m[1])
	cache := os.Getenv("SPEEDIA_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/speedia-test"
	}
	tree := filepath.Join(cache, "iso", kpkg)
	if _, err := os.Stat(filepath.Join(tree, ".complete")); err == nil {
		return tree
	}
	start := time.Now()
	work, err := os.MkdirTemp(filepath.Join(cache, "iso"), ".new-")
	if err != nil {
		if err := os.MkdirAll(filepath.Join(cache, "iso"), 0o755); err != nil {
			t.Skipf("cache: %v", err)
		}
		if work, err = os.MkdirTemp(filepath.Join(cache, "iso"), ".new-"); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(work)
	debs := filepath.Join(work, "debs")
	newTree := filepath.Join(work, "tree")
	os.MkdirAll(debs, 0o755)
	c := exec.Command("apt-get", "download", kpkg, "systemd-boot-efi", "busybox-static")
	c.Dir = debs
	if out, err := c.CombinedOutput(); err != nil {
		t.Skipf("apt-get download: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, f := range files {
		if out, err := exec.Command("dpkg-deb", "-x", f, newTree).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", f, err, out)
		}
	}
	mods, _ := filepath.Glob(filepath.Join(newTree, "lib/modules/*"))
	if len(mods) != 1 {
		t.Fatalf("module dirs: %v", mods)
	}
	if err := depmod(mods[0]); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(newTree, ".complete"), nil)
	os.RemoveAll(tree)
	if err := os.Rename(newTree, tree); err != nil {
		t.Fatal(err)
	}
	t.Logf("made %s in %s", tree, time.Since(start).Round(time.Second))
	return tree
}

// depmod writes modules.dep from the modules' "depends=" in .modinfo, as
// the kernel package's postinst would with kmod's depmod (not installed
// here): direct dependencies only, which planModules follows.
func depmod(dir string) error {
	byName := map[string]string{}
	var rels []string
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), ".ko") {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		byName[modName(rel)] = rel
		rels = append(rels, rel)
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(rels)
	var b strings.Builder
	for _, rel := range rels {
		data, err := readModule(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		var deps []string
		if s := f.Section(".modinfo"); s != nil {
			info, _ := s.Data()
			for _, kv := range bytes.Split(info, []byte{0}) {
				if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
					for _, n := range strings.Split(string(v), ",") {
						p, ok := byName[modName(n)]
						if !ok {
							return fmt.Errorf("%s depends on %s, which is not there", rel, n)
						}
						deps = append(deps, p)
					}
				}
			}
		}
		fmt.Fprintf(&b, "%s: %s\n", rel, strings.Join(deps, " "))
	}
	return os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(b.String()), 0o644)
}
