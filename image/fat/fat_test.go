package fat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, p string, offset, size int64, files []File) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(offset + size); err != nil {
		t.Fatal(err)
	}
	if err := Write(f, offset, size, "ESP", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), files); err != nil {
		t.Fatal(err)
	}
}

func TestWriteCheckedByDosfstoolsAndMtools(t *testing.T) {
	big := bytes.Repeat([]byte("kernel"), 200000) // spans many clusters
	src := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(src, big, 0o644); err != nil {
		t.Fatal(err)
	}
	files := []File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("efi")},
		{Path: "loader/loader.conf", Data: []byte("default speedia-*\n")},
		{Path: "loader/entries/speedia-1+3.conf", Data: []byte("title x\n")},
		{Path: "speedia/0123456789abcdef/linux", Src: src},
	}
	for _, tc := range []struct {
		name         string
		offset, size int64
	}{{"fat32", 0, 40 << 20}, {"fat32 at offset", 1 << 20, 40 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
			write(t, a, tc.offset, tc.size, files)
			write(t, b, tc.offset, tc.size, files)
			da, _ := os.ReadFile(a)
			db, _ := os.ReadFile(b)
			if !bytes.Equal(da, db) {
				t.Error("two writes of the same files differ")
			}
			f, err := os.Open(a)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ReadFile(f, tc.offset, tc.size, "speedia/0123456789abcdef/linux")
			if err != nil || !bytes.Equal(got, big) {
				t.Errorf("read back the kernel: %d bytes, %v", len(got), err)
			}
			if tc.offset != 0 {
				return // the tools below want the filesystem at offset 0
			}
			if out, err := exec.Command("fsck.fat", "-n", a).CombinedOutput(); err != nil {
				t.Errorf("fsck.fat -n: %v\n%s", err, out)
			}
			out, err := exec.Command("mdir", "-i", a, "-/", "::").CombinedOutput()
			if err != nil {
				t.Fatalf("mdir: %v\n%s", err, out)
			}
			for _, want := range []string{"BOOTX64  EFI", "loader.conf", "speedia-1+3.conf", "linux", "2026-11-22"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("mdir does not show %q:\n%s", want, out)
				}
			}
			out, err = exec.Command("mtype", "-i", a, "::loader/loader.conf").CombinedOutput()
			if err != nil || string(out) != "default speedia-*\n" {
				t.Errorf("mtype loader.conf = %q, %v", out, err)
			}
		})
	}
}

func TestWriteRejectsSmallSizes(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, 0, 8<<20, "X", time.Unix(0, 0), nil); err == nil {
		t.Error("8 MiB accepted")
	}
}

func TestWriteRejectsBadPaths(t *testing.T) {
	for _, p := range []string{"", "/abs", "a/../b", "../x"} {
		if err := check([]File{{Path: p}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	if err := check([]File{{Path: "a/B"}, {Path: "A/b"}}); err == nil {
		t.Error("paths equal but for case accepted")
	}
}

func TestTree(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "loader/entries"), 0o755)
	os.WriteFile(filepath.Join(dir, "loader/entries/a.conf"), []byte("x"), 0o644)
	files, err := Tree(dir)
	if err != nil || len(files) != 1 || files[0].Path != "loader/entries/a.conf" {
		t.Fatalf("Tree = %+v, %v", files, err)
	}
	os.Symlink("a.conf", filepath.Join(dir, "loader/entries/b.conf"))
	if _, err := Tree(dir); err == nil {
		t.Error("a symlink was accepted")
	}
}

// go-diskfs over-reads a file whose size is not a multiple of a cluster
// when read in small pieces; ReadFile must return exactly the file.
func TestReadFileExactSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.img")
	data := bytes.Repeat([]byte("0123456789"), 266)[:2651]
	write(t, p, 0, MinSize, []File{{Path: "a/b.txt", Data: data}})
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadFile(f, 0, MinSize, "a/b.txt")
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadFile: %d bytes (want %d), %v", len(got), len(data), err)
	}
}
