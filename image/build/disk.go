package build

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/speedia/host/image/fat"
	"github.com/speedia/host/updater/boot"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot/native"
)

// Disk layout: GPT, partition 1 the ESP, partition 2 the btrfs root.
const (
	sector   = 512
	espStart = 1 << 20   // 1 MiB: aligned for every disk
	espSize  = 512 << 20 // room for a few kernels and initrds per snapshot
	// The GPT backup at the end takes 33 sectors; keep 1 MiB free.
	tailGap = 1 << 20
)

// Layout of an assembled disk, as the manifest and inspect report it.
type Layout struct {
	DiskGUID    string `json:"disk_guid"`
	ESPPartUUID string `json:"esp_partuuid"`
	RootUUID    string `json:"root_uuid"` // btrfs filesystem UUID
	RootPart    string `json:"root_partuuid"`
}

// uuidFrom derives a stable UUID (version 4 bits set) from the spec hash,
// so the same spec gives the same disk identity.
func uuidFrom(seed, what string) string {
	h := sha256.Sum256([]byte(seed + "\x00" + what))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func newLayout(seed string) Layout {
	return Layout{
		DiskGUID:    uuidFrom(seed, "disk"),
		ESPPartUUID: uuidFrom(seed, "esp"),
		RootUUID:    uuidFrom(seed, "root-fs"),
		RootPart:    uuidFrom(seed, "root-part"),
	}
}

// partitionDisk writes a protective MBR and the GPT into raw.
func partitionDisk(raw string, size int64, l Layout) error {
	d, err := diskfs.Open(raw, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return fmt.Errorf("open %s: %w", raw, err)
	}
	defer d.Close()
	espFirst := uint64(espStart / sector)
	rootFirst := uint64((espStart + espSize) / sector)
	rootLast := uint64((size-tailGap)/sector) - 1
	t := &gpt.Table{
		LogicalSectorSize:  sector,
		PhysicalSectorSize: sector,
		ProtectiveMBR:      true,
		GUID:               l.DiskGUID,
		Partitions: []*gpt.Partition{
			{Index: 1, Start: espFirst, End: rootFirst - 1, Type: gpt.EFISystemPartition, Name: "ESP", GUID: l.ESPPartUUID},
			{Index: 2, Start: rootFirst, End: rootLast, Type: gpt.LinuxRootX86_64, Name: "root", GUID: l.RootPart},
		},
	}
	if err := d.Partition(t); err != nil {
		return fmt.Errorf("write GPT: %w", err)
	}
	return nil
}

func rootRange(size int64) (off, length int64) {
	off = espStart + espSize
	return off, size - tailGap - off
}

// makeRoot makes the btrfs root in partition 2 of raw: the MicroOS-style
// layout with the tree in snapshot 1 (native.Layout, shared with the test
// host), and stages the ESP content for snapshot 1 into espDir through the
// engine's own boot entry code. Must run in a private mount namespace.
func makeRoot(ctx context.Context, r run.Runner, raw string, size int64, l Layout, fill func(root string) error, espDir string, kernelArgs []string, work string) (err error) {
	off, length := rootRange(size)
	out, err := r.Run(ctx, run.Cmd{Name: "losetup", Args: []string{"--find", "--show", "--offset", fmt.Sprint(off), "--sizelimit", fmt.Sprint(length), raw}})
	if err != nil {
		return fmt.Errorf("loop device: %w", err)
	}
	dev := strings.TrimSpace(string(out))
	attached := true
	defer func() {
		if attached {
			r.Run(context.WithoutCancel(ctx), run.Cmd{Name: "losetup", Args: []string{"-d", dev}})
		}
	}()
	if _, err := r.Run(ctx, run.Cmd{Name: "mkfs.btrfs", Args: []string{"-q", "-f", "-U", l.RootUUID, "-L", "speedia-root", dev}}); err != nil {
		return fmt.Errorf("mkfs.btrfs: %w", err)
	}
	mnt := filepath.Join(work, "top")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if _, err := r.Run(ctx, run.Cmd{Name: "mount", Args: []string{"-t", "btrfs", "-o", "compress=zstd:1", dev, mnt}}); err != nil {
		return fmt.Errorf("mount root: %w", err)
	}
	// Detaching a mounted loop device makes it go by itself when the mount
	// goes, even if we are killed: the mount dies with our namespace.
	if _, err := r.Run(ctx, run.Cmd{Name: "losetup", Args: []string{"-d", dev}}); err == nil {
		attached = false
	}
	defer func() {
		if _, uerr := r.Run(context.WithoutCancel(ctx), run.Cmd{Name: "umount", Args: []string{mnt}}); uerr != nil && err == nil {
			err = fmt.Errorf("unmount root: %w", uerr)
		}
	}()
	if err := native.Layout(ctx, r, mnt, fill); err != nil {
		return err
	}
	entries := native.BootEntries{Loader: &boot.SystemdBoot{ESP: espDir}, RootUUID: l.RootUUID, Options: kernelArgs}
	if err := entries.SetNext(ctx, 1, native.SnapshotPath(mnt, 1)); err != nil {
		return fmt.Errorf("boot entry: %w", err)
	}
	if _, err := r.Run(ctx, run.Cmd{Name: "btrfs", Args: []string{"filesystem", "sync", mnt}}); err != nil {
		return err
	}
	return nil
}

// writeESP writes the staged ESP plus systemd-boot as the removable-media
// boot loader (EFI/BOOT/BOOTX64.EFI: no NVRAM entry needed) into partition 1.
func writeESP(raw, espDir, sdboot string, date time.Time) error {
	files, err := fat.Tree(espDir)
	if err != nil {
		return err
	}
	files = append(files,
		fat.File{Path: "EFI/BOOT/BOOTX64.EFI", Src: sdboot},
		fat.File{Path: "EFI/systemd/systemd-bootx64.efi", Src: sdboot},
	)
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := fat.Write(f, espStart, espSize, "ESP", date, files); err != nil {
		return fmt.Errorf("write ESP: %w", err)
	}
	return f.Sync()
}

// NewLayout is the disk identity of a spec (by its hash).
func NewLayout(specHash string) Layout { return newLayout(specHash) }

// RootRange is where the root partition lies on a disk of size bytes.
func RootRange(size int64) (off, length int64) { return rootRange(size) }

// Skeleton makes the sparse disk file with its GPT and the ESP from espDir
// (plus systemd-boot); the root partition is left empty. Used by Build
// (which fills the root afterwards) and by tests that need a small disk.
func Skeleton(raw string, size int64, l Layout, espDir, sdboot string, date time.Time) error {
	if err := createSparse(raw, size); err != nil {
		return err
	}
	if err := partitionDisk(raw, size, l); err != nil {
		return err
	}
	return writeESP(raw, espDir, sdboot, date)
}
