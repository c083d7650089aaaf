package iso

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/speedia/host/image/fat"
)

// testISO builds an ISO from testTree and a sparse 40 MiB image with
// 6 MiB of data (MiB 0, 10-13, 39) in parts of 2 MiB, so that every path
// runs.
func testISO(t *testing.T) (o Options, raw []byte) {
	t.Helper()
	old := partMiB
	partMiB = 2
	t.Cleanup(func() { partMiB = old })
	p, raw := sparseImage(t, 40, [][2]int64{{0, 17 * 1024}, {10*MiB + 3, 3 * MiB}, {39*MiB + 100, 100}})
	o = Options{
		Tree:       testTree(t),
		Raw:        p,
		Out:        filepath.Join(t.TempDir(), "install.iso"),
		Label:      "SPEEDIA_INSTALL",
		Date:       date,
		KernelArgs: []string{"console=ttyS0,115200", "quiet"},
		Modules:    []string{"isofs", "sr_mod", "ahci", "nvme"},
	}
	if err := Write(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return o, raw
}

func xorriso(t *testing.T, args ...string) string {
	t.Helper()
	p, err := exec.LookPath("xorriso")
	if err != nil {
		t.Skip("no xorriso")
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestISOAsXorrisoSeesIt(t *testing.T) {
	o, _ := testISO(t)
	out := xorriso(t, "-indev", o.Out, "-report_el_torito", "plain", "-find", "/", "-exec", "lsdl")
	for _, re := range []string{
		`Volume id    : 'SPEEDIA_INSTALL'`,
		// One bootable no-emulation image for UEFI; load size 0: the
		// image is above 32 MiB, and firmware then reads the FAT's size.
		`El Torito boot img :   1  UEFI  y   none  0x0000  0x00      0 `,
		`El Torito img path :   1  /EFI/BOOT/EFIBOOT.IMG`,
		`-r-xr-xr-x    1 0        0 +\d+ Mar  1  2025 '/EFI/BOOT/EFIBOOT.IMG'`,
		`-r-xr-xr-x    1 0        0 +\d+ Mar  1  2025 '/SPEEDIA/IMAGE.MAP'`,
		`-r-xr-xr-x    1 0        0 +2097152 Mar  1  2025 '/SPEEDIA/PART000.DAT'`,
		`-r-xr-xr-x    1 0        0 +2097152 Mar  1  2025 '/SPEEDIA/PART001.DAT'`,
		`-r-xr-xr-x    1 0        0 +2097152 Mar  1  2025 '/SPEEDIA/PART002.DAT'`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no %q in\n%s", re, out)
		}
	}
	if strings.Contains(out, "PART003") {
		t.Errorf("more parts than data:\n%s", out)
	}
}

// readISO reads a file of the ISO with go-diskfs.
func readISO(t *testing.T, iso, p string) []byte {
	t.Helper()
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	fsys, err := iso9660.Read(file.New(f, true), fi.Size(), 0, sector)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fsys.OpenFile(p, os.O_RDONLY)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

// The map and parts on the ISO give back the disk image, byte for byte.
func TestISOHoldsTheImage(t *testing.T) {
	o, raw := testISO(t)
	m := readISO(t, o.Out, "/SPEEDIA/IMAGE.MAP")
	s := bufio.NewScanner(bytes.NewReader(m))
	s.Scan()
	head := strings.Fields(s.Text())
	if want := []string{"speedia-image", "1", "40", "6", fmt.Sprintf("%x", sha256.Sum256(raw))}; strings.Join(head, " ") != strings.Join(want, " ") {
		t.Fatalf("header %q, want %q", head, want)
	}
	disk := make([]byte, 40*MiB)
	parts := map[string][]byte{}
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 5 {
			t.Fatalf("map line %q", s.Text())
		}
		if parts[f[0]] == nil {
			parts[f[0]] = readISO(t, o.Out, "/SPEEDIA/"+strings.ToUpper(f[0]))
		}
		skip, _ := strconv.ParseInt(f[1], 10, 64)
		seek, _ := strconv.ParseInt(f[2], 10, 64)
		count, _ := strconv.ParseInt(f[3], 10, 64)
		data := parts[f[0]][skip*MiB : (skip+count)*MiB]
		if fmt.Sprintf("%x", sha256.Sum256(data)) != f[4] {
			t.Errorf("line %q: sum differs", s.Text())
		}
		copy(disk[seek*MiB:], data)
	}
	if !bytes.Equal(disk, raw) {
		t.Error("the image put together from the ISO differs from the raw image")
	}
	fi, _ := os.Stat(o.Out)
	if fi.Size() > 40*MiB {
		t.Errorf("ISO of %d bytes: holes stored?", fi.Size())
	}
}

func TestISOBootImage(t *testing.T) {
	o, _ := testISO(t)
	img := filepath.Join(t.TempDir(), "efiboot.img")
	writeFile(t, img, readISO(t, o.Out, "/EFI/BOOT/EFIBOOT.IMG"))
	if p, err := exec.LookPath("fsck.fat"); err == nil {
		if out, err := exec.Command(p, "-n", img).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat: %v\n%s", err, out)
		}
	} else {
		t.Log("no fsck.fat")
	}
	if p, err := exec.LookPath("mdir"); err == nil {
		out, err := exec.Command(p, "-i", img, "-/", "-b", "::/").CombinedOutput()
		if err != nil {
			t.Errorf("mdir: %v\n%s", err, out)
		}
		for _, f := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/loader/loader.conf", "::/loader/entries/install.conf", "::/vmlinuz", "::/initrd"} {
			if !strings.Contains(string(out), f+"\n") {
				t.Errorf("mdir: no %s in\n%s", f, out)
			}
		}
	} else {
		t.Log("no mdir")
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	read := func(p string) []byte {
		b, err := fat.ReadFile(f, 0, fi.Size(), p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return b
	}
	for p, want := range map[string]string{
		"loader/loader.conf":          "timeout 0\ndefault install.conf\neditor yes\n",
		"loader/entries/install.conf": "title Speedia install (SPEEDIA_INSTALL)\nlinux /vmlinuz\ninitrd /initrd\noptions speedia.install.label=SPEEDIA_INSTALL console=ttyS0,115200 quiet\n",
	} {
		if got := string(read(p)); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", p, got, want)
		}
	}
	for p, src := range map[string]string{
		"vmlinuz":              "boot/vmlinuz-6.1.0-test",
		"EFI/BOOT/BOOTX64.EFI": "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
	} {
		want, _ := os.ReadFile(filepath.Join(o.Tree, src))
		if !bytes.Equal(read(p), want) {
			t.Errorf("%s differs from the tree's %s", p, src)
		}
	}
	checkInitrd(t, o.Tree, read("initrd"))
}

func checkInitrd(t *testing.T, tree string, gz []byte) {
	t.Helper()
	z, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("no cpio to list the initrd")
	}
	dir := t.TempDir()
	c := exec.Command(cpio, "-i", "-d", "--no-absolute-filenames", "--nonmatching", "dev/console")
	c.Dir, c.Stdin = dir, bytes.NewReader(archive)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	c = exec.Command(cpio, "-t")
	c.Stdin = bytes.NewReader(archive)
	list, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	// The modules of the plan for isofs sr_mod ahci nvme: ahci is built
	// in, nvme not in this kernel.
	want := "bin\ndev\nmodules\nproc\nrun\nsys\ntmp\ndev/console\nbin/busybox\nbin/sh\ninit\n" +
		"modules/cdrom.ko\nmodules/isofs.ko\nmodules/scsi_common.ko\nmodules/scsi_mod.ko\nmodules/sr_mod.ko\nmodules/order\n"
	if string(list) != want {
		t.Errorf("initrd holds:\n%s\nwant:\n%s", list, want)
	}
	for p, want := range map[string][]byte{
		"init":              []byte(initScript),
		"modules/cdrom.ko":  modContent("kernel/drivers/cdrom/cdrom.ko.xz"),
		"modules/sr_mod.ko": modContent("kernel/drivers/scsi/sr_mod.ko.zst"),
		"modules/order":     []byte("cdrom.ko\nisofs.ko cdrom\nscsi_common.ko\nscsi_mod.ko scsi_common\nsr_mod.ko cdrom scsi_mod scsi_common\n"),
	} {
		if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", p, got, err, want)
		}
	}
	bb, _ := os.ReadFile(filepath.Join(tree, "usr/bin/busybox"))
	if got, _ := os.ReadFile(filepath.Join(dir, "bin/busybox")); !bytes.Equal(got, bb) {
		t.Error("bin/busybox differs from the tree's")
	}
	if fi, err := os.Stat(filepath.Join(dir, "init")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("init: %v, %v", fi.Mode(), err)
	}
}

// Same input, same bytes, also in another time zone.
func TestISOReproducible(t *testing.T) {
	o, _ := testISO(t)
	again := filepath.Join(t.TempDir(), "again.iso")
	c := exec.Command(os.Args[0], "-test.run=^TestHelperBuild$", "-test.count=1")
	c.Env = append(os.Environ(), "TZ=Pacific/Chatham", "ISO_HELPER_TREE="+o.Tree, "ISO_HELPER_RAW="+o.Raw, "ISO_HELPER_OUT="+again)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(o.Out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("builds differ, first at byte %d (sector %d); sizes %d, %d", i, i/sector, len(a), len(b))
			}
		}
		t.Fatalf("builds differ in size: %d, %d", len(a), len(b))
	}
}

// TestHelperBuild is the second build of TestISOReproducible.
func TestHelperBuild(t *testing.T) {
	if os.Getenv("ISO_HELPER_OUT") == "" {
		t.Skip("only run by TestISOReproducible")
	}
	partMiB = 2
	err := Write(context.Background(), Options{
		Tree: os.Getenv("ISO_HELPER_TREE"), Raw: os.Getenv("ISO_HELPER_RAW"), Out: os.Getenv("ISO_HELPER_OUT"),
		Label: "SPEEDIA_INSTALL", Date: date, KernelArgs: []string{"console=ttyS0,115200", "quiet"},
		Modules: []string{"isofs", "sr_mod", "ahci", "nvme"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWriteRefuses(t *testing.T) {
	tree := testTree(t)
	raw, _ := sparseImage(t, 4, nil)
	odd := filepath.Join(t.TempDir(), "odd.img")
	writeFile(t, odd, make([]byte, MiB+512))
	noBusybox := testTree(t)
	os.Remove(filepath.Join(noBusybox, "usr/bin/busybox"))
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		is   error
		want string
	}{
		{"lower-case label", func(o *Options) { o.Label = "speedia" }, ErrOptions, "label"},
		{"long label", func(o *Options) { o.Label = strings.Repeat("A", 33) }, ErrOptions, "label"},
		{"no date", func(o *Options) { o.Date = time.Time{} }, ErrOptions, "Date"},
		{"space in a kernel argument", func(o *Options) { o.KernelArgs = []string{"a b"} }, ErrOptions, "kernel argument"},
		{"image not in MiB", func(o *Options) { o.Raw = odd }, ErrOptions, "whole number of MiB"},
		{"no image", func(o *Options) { o.Raw = filepath.Join(tree, "nope") }, os.ErrNotExist, "nope"},
		{"no busybox", func(o *Options) { o.Tree = noBusybox }, ErrTree, "busybox-static"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Tree: tree, Raw: raw, Out: filepath.Join(t.TempDir(), "x.iso"), Label: "SPEEDIA_INSTALL", Date: date}
			tc.edit(&o)
			err := Write(context.Background(), o)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %v with %q", err, tc.is, tc.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(o.Out)); len(ents) != 0 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
}
