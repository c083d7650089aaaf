// Package inspect reads a built image without booting it: the partition
// table and the ESP with go-diskfs, boot entries with the engine's own
// parser, the root filesystem's superblock, and (as root) the image
// version and update policy inside; all checked against manifest.json.
package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/speedia/host/image/build"
	"github.com/speedia/host/image/fat"
	"github.com/speedia/host/updater/boot"
	"github.com/speedia/host/updater/run"
)

// Report is what Inspect finds.
type Report struct {
	Image      string          `json:"image"`
	Format     string          `json:"format"`
	Size       int64           `json:"size"` // virtual disk size
	DiskGUID   string          `json:"disk_guid"`
	Partitions []Partition     `json:"partitions"`
	ESP        *ESP            `json:"esp,omitempty"`
	Root       *Root           `json:"root,omitempty"`
	Checks     []Check         `json:"checks"`
	Manifest   *build.Manifest `json:"-"`
}

// Partition is one GPT entry.
type Partition struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	GUID  string `json:"guid"`
	Start int64  `json:"start"` // bytes
	Size  int64  `json:"size"`
}

// ESP is the EFI system partition's content.
type ESP struct {
	Files      []string         `json:"files"`
	LoaderConf string           `json:"loader_conf"`
	Entries    []boot.EntryInfo `json:"entries"`
}

// Root is the root partition.
type Root struct {
	FSType       string           `json:"fs_type"`
	UUID         string           `json:"uuid,omitempty"`
	Label        string           `json:"label,omitempty"`
	Image        *build.ImageInfo `json:"image,omitempty"`
	UpdatePolicy string           `json:"update_policy,omitempty"` // /etc/speedia/update.toml; "" = shipped defaults
	Unread       string           `json:"unread,omitempty"`        // why the files inside were not read
}

// Check is one comparison with the manifest.
type Check struct {
	What string `json:"what"`
	OK   bool   `json:"ok"`
	Got  string `json:"got,omitempty"`
	Want string `json:"want,omitempty"`
}

// Options of Inspect.
type Options struct {
	// ReadRoot mounts the root read-only (loop, needs root and a private
	// mount namespace) to read the version and policy inside.
	ReadRoot bool
	Runner   run.Runner
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return true
		}
	}
	return false
}

// Inspect reads the image at p (raw or qcow2).
func Inspect(ctx context.Context, p string, o Options) (*Report, error) {
	if o.Runner == nil {
		o.Runner = run.Exec{}
	}
	r := &Report{Image: p, Format: "raw"}
	raw := p
	if isQcow2(p) {
		r.Format = "qcow2"
		tmp, err := os.MkdirTemp("", "speedia-inspect-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		raw = filepath.Join(tmp, "disk.raw")
		if _, err := o.Runner.Run(ctx, run.Cmd{Name: "qemu-img", Args: []string{"convert", "-f", "qcow2", "-O", "raw", p, raw}}); err != nil {
			return nil, fmt.Errorf("read qcow2: %w", err)
		}
	}
	d, err := diskfs.Open(raw, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	defer d.Close()
	r.Size = d.Size
	pt, err := d.GetPartitionTable()
	if err != nil {
		return nil, fmt.Errorf("%s: no partition table: %w", p, err)
	}
	t, ok := pt.(*gpt.Table)
	if !ok {
		return nil, fmt.Errorf("%s: not a GPT disk", p)
	}
	r.DiskGUID = strings.ToLower(t.GUID)
	f, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for i, part := range t.Partitions {
		if part == nil || part.Type == gpt.Unused {
			continue
		}
		pi := Partition{Index: i + 1, Name: part.Name, Type: typeName(part.Type), GUID: strings.ToLower(part.GUID),
			Start: int64(part.Start) * int64(t.LogicalSectorSize), Size: int64(part.End-part.Start+1) * int64(t.LogicalSectorSize)}
		r.Partitions = append(r.Partitions, pi)
		switch part.Type {
		case gpt.EFISystemPartition:
			if r.ESP, err = readESP(ctx, f, pi); err != nil {
				return nil, fmt.Errorf("ESP: %w", err)
			}
		case gpt.LinuxRootX86_64, gpt.LinuxFilesystem:
			if r.Root, err = readRoot(ctx, o, raw, f, pi); err != nil {
				return nil, fmt.Errorf("root: %w", err)
			}
		}
	}
	r.check(p)
	return r, nil
}

func isQcow2(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = f.ReadAt(magic, 0)
	return err == nil && string(magic) == "QFI\xfb"
}

func typeName(t gpt.Type) string {
	switch t {
	case gpt.EFISystemPartition:
		return "esp"
	case gpt.LinuxRootX86_64:
		return "linux-root-x86-64"
	case gpt.LinuxFilesystem:
		return "linux"
	}
	return strings.ToLower(string(t))
}

// readESP lists the ESP and parses its boot entries by copying loader/ to
// a temp dir, where the engine's SystemdBoot reads them as it would on a host.
func readESP(ctx context.Context, f *os.File, p Partition) (*ESP, error) {
	fsys, err := fat.Open(f, p.Start, p.Size)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "speedia-esp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	e := &ESP{}
	err = fs.WalkDir(fsys, ".", func(rel string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		e.Files = append(e.Files, rel)
		if strings.HasPrefix(strings.ToLower(rel), "loader/") {
			data, err := fat.ReadAll(fsys, rel)
			if err != nil {
				return err
			}
			dst := filepath.Join(tmp, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return err
			}
			if path.Base(rel) == "loader.conf" {
				e.LoaderConf = string(data)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sd := &boot.SystemdBoot{ESP: tmp}
	if e.Entries, err = sd.List(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// btrfs superblock: at 64 KiB; fsid at 0x20, magic at 0x40, label at 0x12b.
func readRoot(ctx context.Context, o Options, raw string, f *os.File, p Partition) (*Root, error) {
	sb := make([]byte, 4096)
	if _, err := f.ReadAt(sb, p.Start+64<<10); err != nil {
		return nil, err
	}
	root := &Root{FSType: "unknown"}
	if string(sb[0x40:0x48]) != "_BHRfS_M" {
		return root, nil
	}
	root.FSType = "btrfs"
	u := sb[0x20:0x30]
	root.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	root.Label = string(bytes.TrimRight(sb[0x12b:0x12b+256], "\x00"))
	if !o.ReadRoot {
		root.Unread = "the files inside need root (a read-only loop mount): run as root"
		return root, nil
	}
	if err := readInside(ctx, o.Runner, raw, p, root); err != nil {
		return nil, err
	}
	return root, nil
}

// readInside mounts the root's default subvolume (the snapshot that boots)
// read-only and reads the image info and the update policy.
func readInside(ctx context.Context, r run.Runner, raw string, p Partition, root *Root) error {
	mnt, err := os.MkdirTemp("", "speedia-root-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	opts := fmt.Sprintf("ro,loop,offset=%d,sizelimit=%d", p.Start, p.Size)
	if _, err := r.Run(ctx, run.Cmd{Name: "mount", Args: []string{"-t", "btrfs", "-o", opts, raw, mnt}}); err != nil {
		return fmt.Errorf("mount root read-only: %w", err)
	}
	defer r.Run(context.WithoutCancel(ctx), run.Cmd{Name: "umount", Args: []string{mnt}})
	data, err := os.ReadFile(filepath.Join(mnt, build.ImageInfoPath))
	if err != nil {
		return fmt.Errorf("image info: %w", err)
	}
	root.Image = &build.ImageInfo{}
	if err := json.Unmarshal(data, root.Image); err != nil {
		return fmt.Errorf("%s: %w", build.ImageInfoPath, err)
	}
	pol, err := os.ReadFile(filepath.Join(mnt, "etc/speedia/update.toml"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	root.UpdatePolicy = string(pol)
	return nil
}

// check compares the image with manifest.json beside it.
func (r *Report) check(p string) {
	mp := filepath.Join(filepath.Dir(p), "manifest.json")
	m, err := build.ReadManifest(mp)
	if err != nil {
		r.Checks = append(r.Checks, Check{What: "manifest.json beside the image", OK: false, Got: err.Error()})
		return
	}
	r.Manifest = m
	add := func(what, got, want string) {
		r.Checks = append(r.Checks, Check{What: what, OK: got == want, Got: got, Want: want})
	}
	var out *build.Output
	for i := range m.Outputs {
		if m.Outputs[i].File == filepath.Base(p) {
			out = &m.Outputs[i]
		}
	}
	if out == nil {
		add("listed in the manifest", filepath.Base(p), "one of its outputs")
	} else if sum, _, err := build.FileSHA256(p); err != nil {
		add("sha256", err.Error(), out.SHA256)
	} else {
		add("sha256", sum, out.SHA256)
	}
	add("disk GUID", r.DiskGUID, m.Layout.DiskGUID)
	for _, part := range r.Partitions {
		switch part.Type {
		case "esp":
			add("ESP partition GUID", part.GUID, m.Layout.ESPPartUUID)
		case "linux-root-x86-64":
			add("root partition GUID", part.GUID, m.Layout.RootPart)
		}
	}
	if r.ESP != nil {
		want := "speedia-1+3.conf or speedia-1.conf"
		got := "none"
		for _, e := range r.ESP.Entries {
			if e.Snapshot == 1 {
				got = e.File
				if e.File == "speedia-1+3.conf" || e.File == "speedia-1.conf" {
					got = want
				}
			}
		}
		add("boot entry of snapshot 1", got, want)
	}
	if r.Root != nil {
		add("root filesystem", r.Root.FSType, "btrfs")
		add("root filesystem UUID", r.Root.UUID, m.Layout.RootUUID)
		if r.Root.Image != nil {
			add("image version inside", r.Root.Image.Version, m.Version)
			add("spec hash inside", r.Root.Image.SpecHash, m.SpecHash)
			add("speedia version inside", r.Root.Image.SpeediaVersion, m.SpeediaVersion)
		}
	}
}
