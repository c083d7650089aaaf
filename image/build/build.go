// Package build turns a host spec into images: KIWI prepares the root tree
// (cached), then the disk is assembled here: GPT and the FAT32 ESP with
// go-diskfs, the btrfs snapshot root on a loop device, qcow2 with qemu-img,
// the self-install ISO with go-diskfs. See docs/image.md.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/kiwi"
	"github.com/speedia/host/units"
	"github.com/speedia/host/updater/run"
)

// DefaultCache keeps prepared root trees between builds (KIWI keeps its
// package cache in /var/cache/kiwi).
const DefaultCache = "/var/cache/speedia-image"

// Options of one build.
type Options struct {
	Spec     *spec.Spec
	Out      string            // output directory
	Formats  []spec.Format     // nil: the spec's
	Binaries map[string]string // speedia binary name -> built file
	Cache    string            // "" = DefaultCache
	Progress io.Writer         // one line per phase
	Runner   run.Runner        // nil = run.Exec
}

// Build makes the images and manifest.json in o.Out. It needs root and must
// run in a private mount namespace (the command re-executes itself there),
// so no mount can outlive it. A failure names the phase and the first real
// error line; the full log is in OUT/NAME-VERSION.build.log.
func Build(ctx context.Context, o Options) (m *Manifest, err error) {
	s := o.Spec
	if o.Cache == "" {
		o.Cache = DefaultCache
	}
	if o.Runner == nil {
		o.Runner = run.Exec{}
	}
	formats := o.Formats
	if len(formats) == 0 {
		formats = s.Formats
	}
	if s.Base != spec.BaseDebian {
		return nil, fmt.Errorf("base %q: speedia-image assembles Debian disks; MicroOS images are built by KIWI itself: kiwi-ng system build --description (speedia-image render SPEC --out DIR writes it); see docs/image.md", s.Base)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("building an image needs root (KIWI and the btrfs root on a loop device)")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	base := s.Name + "-" + s.Version
	logPath := filepath.Join(o.Out, base+".build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	b := &builder{o: o, log: logf, start: time.Now()}
	work, err := os.MkdirTemp(o.Out, ".work-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w (full log: %s)", b.phase, err, logPath)
			fmt.Fprintf(logf, "FAILED: %v\n", err)
		}
	}()

	b.step("render KIWI description")
	desc, err := kiwi.Render(s, filepath.Join(work, "desc"), func(root string) error { return Overlay(root, o.Binaries) })
	if err != nil {
		return nil, err
	}
	key, err := treeKey(desc.Dir, s.Version)
	if err != nil {
		return nil, err
	}
	b.step("kiwi: prepare root tree " + key)
	tree, cached, err := prepareTree(ctx, o.Cache, desc.Dir, key, s.Date, logf, b.step)
	if err != nil {
		return nil, err
	}
	if cached {
		b.note("root tree from the cache")
	}

	m = &Manifest{Name: s.Name, Version: s.Version, Base: string(s.Base), SpecHash: s.Hash,
		Date: s.Date.UTC().Format(time.RFC3339), TreeKey: key, SpeediaVersion: speediaVersion(o.Binaries)}
	if m.Packages, err = dpkgPackages(tree); err != nil {
		return nil, err
	}
	m.Layout = newLayout(s.Hash)
	m.KernelArgs = KernelArgs(s.KernelArgs)

	raw := filepath.Join(o.Out, base+".raw")
	assembly := time.Now()
	b.step("assemble: partition table")
	if err := createSparse(raw, s.DiskSize); err != nil {
		return nil, err
	}
	keepRaw := false
	var made []string // outputs of this build, removed again if it fails
	defer func() {
		if !keepRaw || err != nil {
			os.Remove(raw)
		}
		if err != nil {
			for _, p := range made {
				os.Remove(p)
			}
		}
	}()
	if err := partitionDisk(raw, s.DiskSize, m.Layout); err != nil {
		return nil, err
	}
	b.step("assemble: btrfs root and snapshot 1")
	espDir := filepath.Join(work, "esp")
	if err := os.Mkdir(espDir, 0o755); err != nil {
		return nil, err
	}
	info := imageInfo(m)
	fill := func(root string) error { return fillRoot(ctx, o.Runner, tree, root, s, m, info) }
	if err := makeRoot(ctx, o.Runner, raw, s.DiskSize, m.Layout, fill, espDir, m.KernelArgs, work); err != nil {
		return nil, err
	}
	b.step("assemble: ESP (systemd-boot, boot entry with boot counting)")
	if err := writeESP(raw, espDir, filepath.Join(tree, "usr/lib/systemd/boot/efi/systemd-bootx64.efi"), s.Date); err != nil {
		return nil, err
	}
	b.note(fmt.Sprintf("assembly took %.1fs", time.Since(assembly).Seconds()))
	for _, f := range formats {
		switch f {
		case spec.FormatRaw:
			b.step("raw (sha256)")
			keepRaw = true
			if err := m.addOutput(raw, f); err != nil {
				return nil, err
			}
		case spec.FormatQcow2:
			b.step("qcow2 (qemu-img)")
			q := filepath.Join(o.Out, base+".qcow2")
			made = append(made, q)
			if _, err := o.Runner.Run(ctx, run.Cmd{Name: "qemu-img", Args: []string{"convert", "-f", "raw", "-O", "qcow2", raw, q}}); err != nil {
				return nil, err
			}
			if err := m.addOutput(q, f); err != nil {
				return nil, err
			}
		case spec.FormatISO:
			b.step("self-install ISO")
			p := filepath.Join(o.Out, base+".iso")
			made = append(made, p)
			if err := writeISO(ctx, tree, raw, p, s, logf); err != nil {
				return nil, err
			}
			if err := m.addOutput(p, f); err != nil {
				return nil, err
			}
		}
	}
	b.step("manifest")
	if err := m.write(filepath.Join(o.Out, "manifest.json")); err != nil {
		return nil, err
	}
	b.note(fmt.Sprintf("done in %s", time.Since(b.start).Round(time.Second)))
	return m, nil
}

type builder struct {
	o     Options
	log   io.Writer
	phase string
	start time.Time
}

func (b *builder) step(phase string) {
	b.phase = phase
	b.note(phase)
}

func (b *builder) note(msg string) {
	line := fmt.Sprintf("[%6s] %s", time.Since(b.start).Round(time.Second), msg)
	fmt.Fprintln(b.log, "speedia-image: "+line)
	if b.o.Progress != nil {
		fmt.Fprintln(b.o.Progress, line)
	}
}

func createSparse(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Overlay is the KIWI description's root/: the speedia binaries and units.
func Overlay(root string, bins map[string]string) error {
	return units.Install(root, bins)
}

// speediaVersion is the updater's version: the daemon answers --version.
func speediaVersion(bins map[string]string) string {
	p := bins["speedia-updated"]
	if p == "" {
		return ""
	}
	out, err := run.Exec{}.Run(context.Background(), run.Cmd{Name: p, Args: []string{"--version"}})
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
