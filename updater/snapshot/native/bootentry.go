package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/speedia/host/updater/boot"
	"github.com/speedia/host/updater/pkgver"
)

// BootEntries gives each snapshot a boot loader entry (with boot counting),
// booting the newest kernel inside that snapshot.
type BootEntries struct {
	Loader   boot.Loader
	RootUUID string   // the btrfs filesystem's UUID
	Options  []string // extra kernel options, e.g. from /etc/kernel/cmdline
}

var _ BootLoader = BootEntries{}

// SetNext implements BootLoader.
func (b BootEntries) SetNext(ctx context.Context, n int, root string) error {
	kernel, initrd := newestKernel(root)
	if kernel == "" {
		return fmt.Errorf("snapshot %d has no kernel in /boot", n)
	}
	return b.Loader.SetNext(ctx, boot.Entry{
		Snapshot: n,
		Kernel:   kernel,
		Initrd:   initrd,
		RootUUID: b.RootUUID,
		Subvol:   "@/.snapshots/" + strconv.Itoa(n) + "/snapshot",
		Options:  b.Options,
	})
}

// Bless implements BootLoader.
func (b BootEntries) Bless(ctx context.Context, n int) error { return b.Loader.Bless(ctx, n) }

// Remove implements BootLoader.
func (b BootEntries) Remove(ctx context.Context, n int) error { return b.Loader.Remove(ctx, n) }

// newestKernel finds root/boot/vmlinuz-VERSION with the highest version and
// its initrd.img-VERSION (if any).
func newestKernel(root string) (kernel, initrd string) {
	matches, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	best := ""
	for _, m := range matches {
		v := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		if best == "" || pkgver.Debian(v, best) > 0 {
			best, kernel = v, m
		}
	}
	if kernel == "" {
		return "", ""
	}
	if rd := filepath.Join(root, "boot", "initrd.img-"+best); exists(rd) {
		initrd = rd
	}
	return kernel, initrd
}

// KernelOptions reads /etc/kernel/cmdline (kernel-install's convention)
// without the root= and rootflags= the entry sets itself.
func KernelOptions(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range strings.Fields(string(b)) {
		if !strings.HasPrefix(f, "root=") && !strings.HasPrefix(f, "rootflags=") && f != "ro" && f != "rw" {
			out = append(out, f)
		}
	}
	return out
}
