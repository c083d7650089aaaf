// Package iso writes the self-install ISO: a UEFI-bootable CD image whose
// El Torito boot image (FAT, systemd-boot, kernel, installer initrd)
// starts an installer that writes the disk image stored on the ISO onto
// an empty disk and powers off. Only the disk image's data is stored, not
// its holes. Everything is written in userspace (go-diskfs, image/fat):
// build machines cannot mount vfat or iso9660. See docs/iso.md.
package iso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/speedia/host/image/fat"
)

// Options says what to put on the ISO.
type Options struct {
	Tree          string    // the image's root tree: kernel, modules, busybox, systemd-boot
	Raw           string    // the disk image to install; a whole number of MiB
	Out           string    // the ISO to write (replaced atomically)
	Label         string    // volume id, e.g. SPEEDIA_INSTALL: A-Z 0-9 _, at most 32
	Date          time.Time // every timestamp on the ISO: equal input, equal bytes
	KernelArgs    []string  // e.g. console=ttyS0,115200
	KernelVersion string    // which kernel of Tree; needed only if it has several
	Modules       []string  // drivers for the installer; nil means DefaultModules
	Log           io.Writer // progress; nil discards
}

// ErrOptions means Options cannot describe an ISO.
var ErrOptions = errors.New("iso: bad options")

var labelRE = regexp.MustCompile(`^[A-Z0-9_]{1,32}$`)

// efiLabel is the FAT label of the El Torito boot image (11 characters).
const efiLabel = "SPEEDIA_EFI"

// Write builds the ISO. It reads Raw twice (finding data, then copying it)
// and writes its data once; the ISO is about the size of Raw's data plus
// the boot image (kernel and initrd, at least fat.MinSize).
func Write(ctx context.Context, o Options) error {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if err := check(o); err != nil {
		return err
	}
	k, err := findKernel(o.Tree, o.KernelVersion)
	if err != nil {
		return err
	}
	want := o.Modules
	if want == nil {
		want = DefaultModules
	}
	plan, err := planModules(k.Modules, want)
	if err != nil {
		return err
	}
	busybox, err := findBusybox(o.Tree)
	if err != nil {
		return err
	}
	sdboot, err := findSystemdBoot(o.Tree)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "iso: kernel %s, %d modules to load, built in: %s, not in this kernel: %s\n",
		k.Version, len(plan.Load), list(plan.Builtin), list(plan.Missing))

	raw, err := os.Open(o.Raw)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer raw.Close()
	fi, err := raw.Stat()
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if fi.Size() == 0 || fi.Size()%MiB != 0 {
		return fmt.Errorf("%w: disk image %s is %d bytes, not a whole number of MiB", ErrOptions, o.Raw, fi.Size())
	}
	segs, err := dataSegments(raw, fi.Size())
	if err != nil {
		return fmt.Errorf("iso: %s: %w", o.Raw, err)
	}
	exts, err := usedExtents(ctx, raw, segs)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	m := &imageMap{SizeMiB: fi.Size() / MiB, Lines: layout(exts)}
	fmt.Fprintf(log, "iso: disk image %d MiB, %d MiB of data in %d ranges (found in %s)\n",
		m.SizeMiB, m.DataMiB(), len(m.Lines), time.Since(start).Round(time.Millisecond))

	initrd, err := buildInitrd(busybox, k, plan, o.Date)
	if err != nil {
		return err
	}

	// Staging next to Out: the same filesystem, not a possibly small /tmp.
	ws, err := os.MkdirTemp(filepath.Dir(o.Out), ".iso-work-")
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer os.RemoveAll(ws)
	tmp := filepath.Join(filepath.Dir(o.Out), "."+filepath.Base(o.Out)+".tmp")
	defer os.Remove(tmp)

	if err := writeBootImage(filepath.Join(ws, "EFI", "BOOT", "efiboot.img"), o, k, sdboot, initrd); err != nil {
		return err
	}
	// Empty stand-ins for the map and data parts: go-diskfs lays out the
	// tree, their data is appended after it (see isofs.go).
	parts := m.Parts()
	names := []string{"image.map"}
	for i := range parts {
		names = append(names, partName(i))
	}
	if err := os.MkdirAll(filepath.Join(ws, "speedia"), 0o755); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(ws, "speedia", n), nil, 0o644); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
	}

	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer out.Close()
	fsys, err := iso9660.Create(file.New(out, false), 0, 0, sector, ws)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	err = fsys.Finalize(iso9660.FinalizeOptions{
		VolumeIdentifier: o.Label,
		ElTorito: &iso9660.ElTorito{
			BootCatalog: "/BOOT.CAT",
			Entries: []*iso9660.ElToritoEntry{{
				Platform:  iso9660.EFI,
				Emulation: iso9660.NoEmulation,
				BootFile:  "/EFI/BOOT/efiboot.img",
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}

	copied := time.Now()
	if err := appendData(ctx, out, raw, m, o.Date); err != nil {
		return err
	}
	fmt.Fprintf(log, "iso: data copied and hashed in %s\n", time.Since(copied).Round(time.Millisecond))
	if err := out.Sync(); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	fmt.Fprintf(log, "iso: wrote %s (image sha256 %x) in %s\n", o.Out, m.Sum, time.Since(start).Round(time.Millisecond))
	return nil
}

func check(o Options) error {
	switch {
	case o.Tree == "" || o.Raw == "" || o.Out == "":
		return fmt.Errorf("%w: Tree, Raw and Out are required", ErrOptions)
	case !labelRE.MatchString(o.Label):
		return fmt.Errorf("%w: label %q: want 1-32 of A-Z, 0-9, _", ErrOptions, o.Label)
	case o.Date.IsZero():
		return fmt.Errorf("%w: no Date (it makes the ISO reproducible)", ErrOptions)
	}
	for _, a := range o.KernelArgs {
		if a == "" || strings.ContainsAny(a, " \t\n") {
			return fmt.Errorf("%w: kernel argument %q", ErrOptions, a)
		}
	}
	return nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, " ")
}

// writeBootImage makes the El Torito image: a FAT with systemd-boot as the
// removable-media loader, one boot entry, the kernel and the initrd.
func writeBootImage(p string, o Options, k kernel, sdboot string, initrd []byte) error {
	args := append([]string{"speedia.install.label=" + o.Label}, o.KernelArgs...)
	files := []fat.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Src: sdboot},
		{Path: "loader/loader.conf", Data: []byte("timeout 0\ndefault install.conf\neditor yes\n")},
		{Path: "loader/entries/install.conf", Data: []byte(fmt.Sprintf(
			"title Speedia install (%s)\nlinux /vmlinuz\ninitrd /initrd\noptions %s\n", o.Label, strings.Join(args, " ")))},
		{Path: "vmlinuz", Src: k.Image},
		{Path: "initrd", Data: initrd},
	}
	var need int64
	for _, f := range files {
		if f.Src != "" {
			fi, err := os.Stat(f.Src)
			if err != nil {
				return fmt.Errorf("iso: %w", err)
			}
			need += fi.Size()
		} else {
			need += int64(len(f.Data))
		}
	}
	// FAT32 with 512-byte clusters spends ~2% on its two FATs; keep 10%
	// and 2 MiB spare, in whole MiB.
	size := max(fat.MinSize, (need+need/10+2*MiB+MiB-1)/MiB*MiB)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := fat.Write(f, 0, size, efiLabel, o.Date, files); err != nil {
		return fmt.Errorf("iso: boot image: %w", err)
	}
	return f.Close()
}

// appendData puts the parts and the map after go-diskfs' end, points their
// records there and dates the whole volume.
func appendData(ctx context.Context, out *os.File, raw io.ReaderAt, m *imageMap, date time.Time) error {
	vol, err := readVolume(out)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	sizes := m.Parts()
	recs := make([]isoRecord, len(sizes)+1) // the parts, then the map
	for i := range recs {
		n := "image.map"
		if i < len(sizes) {
			n = partName(i)
		}
		r, ok := vol.file("speedia/" + n)
		if !ok {
			return fmt.Errorf("iso: %w: speedia/%s not in the directory tree", errISO, n)
		}
		recs[i] = r
	}
	next := int64(vol.Blocks) * sector
	offsets := make([]int64, len(sizes))
	for i, s := range sizes {
		offsets[i] = next
		next += s * MiB
	}
	if next/sector > 0xffffffff {
		return fmt.Errorf("iso: %w: %d bytes is more than a volume can address", errISO, next)
	}
	for i := range m.Lines {
		m.Lines[i].partOffset = offsets[m.Lines[i].Part]
	}
	if err := copyData(ctx, out, raw, m); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	for i, s := range sizes {
		if err := setExtent(out, recs[i], uint32(offsets[i]/sector), s*MiB); err != nil {
			return fmt.Errorf("iso: %w", err)
		}
	}
	text := m.String()
	if _, err := out.WriteAt([]byte(text), next); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := setExtent(out, recs[len(sizes)], uint32(next/sector), int64(len(text))); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	end := (next + int64(len(text)) + sector - 1) / sector * sector
	// Also cuts what go-diskfs may have padded past its end.
	if err := out.Truncate(end); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := setBlocks(out, uint32(end/sector)); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := vol.setDates(out, date); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}
