package native

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/speedia/host/updater/boot"
)

func TestBootEntriesPicksNewestKernel(t *testing.T) {
	root, esp := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.MkdirAll(filepath.Join(esp, "loader"), 0o755)
	for name, data := range map[string]string{
		"vmlinuz-6.1.0-9-amd64": "old", "initrd.img-6.1.0-9-amd64": "old initrd",
		"vmlinuz-6.1.0-13-amd64": "new", "initrd.img-6.1.0-13-amd64": "new initrd",
	} {
		os.WriteFile(filepath.Join(root, "boot", name), []byte(data), 0o644)
	}
	be := BootEntries{Loader: &boot.SystemdBoot{ESP: esp}, RootUUID: "1234-abcd", Options: []string{"console=ttyS0"}}
	if err := be.SetNext(context.Background(), 7, root); err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(esp, "loader/entries/speedia-7+3.conf"))
	if len(entries) != 1 {
		t.Fatalf("no entry with boot counting for snapshot 7: %v", entries)
	}
	b, _ := os.ReadFile(entries[0])
	conf := string(b)
	for _, want := range []string{"rootflags=subvol=@/.snapshots/7/snapshot", "root=UUID=1234-abcd", "console=ttyS0"} {
		if !strings.Contains(conf, want) {
			t.Errorf("entry lacks %q:\n%s", want, conf)
		}
	}
	// 6.1.0-13 is newer than 6.1.0-9 (numeric, not lexical): its files were copied.
	linux := ""
	for _, l := range strings.Split(conf, "\n") {
		if strings.HasPrefix(l, "linux ") {
			linux = strings.TrimSpace(strings.TrimPrefix(l, "linux "))
		}
	}
	got, err := os.ReadFile(filepath.Join(esp, linux))
	if err != nil || string(got) != "new" {
		t.Fatalf("entry boots %q (%q, %v), want the 6.1.0-13 kernel", linux, got, err)
	}
}

func TestBootEntriesNoKernel(t *testing.T) {
	be := BootEntries{Loader: &boot.SystemdBoot{ESP: t.TempDir()}}
	if err := be.SetNext(context.Background(), 2, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Fatalf("SetNext without a kernel: %v", err)
	}
}

func TestKernelOptions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(p, []byte("root=UUID=x rootflags=subvol=@ ro console=ttyS0 quiet\n"), 0o644)
	if got := KernelOptions(p); !reflect.DeepEqual(got, []string{"console=ttyS0", "quiet"}) {
		t.Fatalf("KernelOptions = %v", got)
	}
}
