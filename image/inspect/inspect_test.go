package inspect_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/speedia/host/image/build"
	"github.com/speedia/host/image/inspect"
	"github.com/speedia/host/updater/boot"
)

// smallDisk assembles a disk as the builder does, without root: GPT and the
// ESP with the builder's own code, the engine's boot entry, and a real
// btrfs made by mkfs.btrfs in a file and copied into partition 2.
func smallDisk(t *testing.T) (string, build.Layout) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs not installed")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "small.raw")
	const size = 700 << 20
	l := build.NewLayout("test-spec-hash")
	// The ESP content exactly as the engine writes it for snapshot 1.
	snap := filepath.Join(dir, "snap/boot")
	os.MkdirAll(snap, 0o755)
	os.WriteFile(filepath.Join(snap, "vmlinuz-6.1.0-1-amd64"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(snap, "initrd.img-6.1.0-1-amd64"), []byte("initrd"), 0o644)
	esp := filepath.Join(dir, "esp")
	os.Mkdir(esp, 0o755)
	sd := &boot.SystemdBoot{ESP: esp}
	err := sd.SetNext(context.Background(), boot.Entry{Snapshot: 1, Kernel: filepath.Join(snap, "vmlinuz-6.1.0-1-amd64"),
		Initrd: filepath.Join(snap, "initrd.img-6.1.0-1-amd64"), RootUUID: l.RootUUID, Subvol: "@/.snapshots/1/snapshot", Options: []string{"console=ttyS0"}})
	if err != nil {
		t.Fatal(err)
	}
	efi := filepath.Join(dir, "BOOTX64.EFI")
	os.WriteFile(efi, []byte("MZ systemd-boot"), 0o644)
	if err := build.Skeleton(raw, size, l, esp, efi, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	off, length := build.RootRange(size)
	fsimg := filepath.Join(dir, "root.btrfs")
	if err := os.WriteFile(fsimg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fsimg, length); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", "-U", l.RootUUID, "-L", "speedia-root", fsimg).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v\n%s", err, out)
	}
	src, _ := os.Open(fsimg)
	defer src.Close()
	dst, _ := os.OpenFile(raw, os.O_RDWR, 0)
	defer dst.Close()
	if _, err := dst.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(dst, src, 1<<20); err != nil { // the superblock is at 64 KiB
		t.Fatal(err)
	}
	return raw, l
}

func TestInspectSmallDisk(t *testing.T) {
	raw, l := smallDisk(t)
	sum, size, err := build.FileSHA256(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := build.Manifest{Name: "small", Version: "1.0.0", Layout: l, Outputs: []build.Output{{File: "small.raw", Format: "raw", Size: size, SHA256: sum}}}
	data, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(filepath.Dir(raw), "manifest.json"), data, 0o644)

	r, err := inspect.Inspect(context.Background(), raw, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checks {
		if !c.OK {
			t.Errorf("check %s: got %s, want %s", c.What, c.Got, c.Want)
		}
	}
	if len(r.Partitions) != 2 || r.Partitions[0].Type != "esp" || r.Partitions[1].Type != "linux-root-x86-64" {
		t.Fatalf("partitions = %+v", r.Partitions)
	}
	if r.Partitions[0].Start != 1<<20 || r.Partitions[0].Size != 512<<20 {
		t.Errorf("ESP at %d, %d bytes", r.Partitions[0].Start, r.Partitions[0].Size)
	}
	if len(r.ESP.Entries) != 1 || r.ESP.Entries[0].File != "speedia-1+3.conf" || r.ESP.Entries[0].TriesLeft != 3 {
		t.Errorf("entries = %+v", r.ESP.Entries)
	}
	if e := r.ESP.Entries[0]; e.Options != "root=UUID="+l.RootUUID+" rootflags=subvol=@/.snapshots/1/snapshot ro console=ttyS0" {
		t.Errorf("options = %q", e.Options)
	}
	if r.Root.FSType != "btrfs" || r.Root.UUID != l.RootUUID || r.Root.Label != "speedia-root" {
		t.Errorf("root = %+v", r.Root)
	}
	// go-diskfs wrote the ESP; dosfstools and mtools read it independently.
	esp := filepath.Join(t.TempDir(), "esp.img")
	if out, err := exec.Command("dd", "if="+raw, "of="+esp, "bs=1M", "skip=1", "count=512", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	if out, err := exec.Command("fsck.fat", "-n", esp).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	if out, err := exec.Command("mdir", "-i", esp, "-b", "-/", "::").CombinedOutput(); err != nil {
		t.Errorf("mdir: %v\n%s", err, out)
	} else if !regexpMatch(`(?i)::/EFI/BOOT/BOOTX64.EFI`, string(out)) || !regexpMatch(`::/loader/entries/speedia-1\+3.conf`, string(out)) {
		t.Errorf("mdir listing lacks the boot loader or entry:\n%s", out)
	}

	// A changed byte fails the manifest check.
	f, _ := os.OpenFile(raw, os.O_RDWR, 0)
	f.WriteAt([]byte{1}, size-1)
	f.Close()
	r, err = inspect.Inspect(context.Background(), raw, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Failed() {
		t.Error("a modified image passed the manifest checks")
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
