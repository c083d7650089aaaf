package podman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/speedia/host/updater/run"
	"golang.org/x/sys/unix"
)

// Data is a place on the host where a container keeps its state: a named
// volume's directory or the source of a writable bind mount.
type Data struct {
	Kind string `json:"kind"` // "volume" or "bind"
	Name string `json:"name"` // volume name or the mount's destination
	Path string `json:"path"` // on the host
}

// Saved is one Data's copy, kept until the upgrade is finished or expired.
type Saved struct {
	Data
	Method string `json:"method"` // "btrfs-snapshot", "reflink" or "tar"
	Copy   string `json:"copy"`   // subvolume, directory or archive
}

// DataSnapshot is a container's data at one moment.
type DataSnapshot struct {
	Dir   string  `json:"dir"`
	Items []Saved `json:"items"`
}

const btrfsMagic = 0x9123683e

func isBtrfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == btrfsMagic
}

// isSubvolume: on btrfs, a subvolume's root directory is inode 256.
func isSubvolume(path string) bool {
	var st unix.Stat_t
	return isBtrfs(path) && unix.Stat(path, &st) == nil && st.Ino == 256
}

// command runs an external tool through the updater's one seam for them.
func command(ctx context.Context, name string, args ...string) error {
	_, err := run.Exec{}.Run(ctx, run.Cmd{Name: name, Args: args})
	return err
}

// snapshotData saves items under dir, which must not exist yet. On btrfs
// the copy costs no data: a read-only snapshot of a subvolume, else a
// reflinked copy; elsewhere (or across filesystems) a tar archive that
// keeps owners, modes, ACLs and xattrs. On error nothing is left behind.
func snapshotData(ctx context.Context, dir string, items []Data) (snap DataSnapshot, err error) {
	snap.Dir = dir
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return snap, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return snap, fmt.Errorf("data snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			_ = snap.Remove(context.WithoutCancel(ctx))
			snap.Items = nil
		}
	}()
	for i, it := range items {
		base := filepath.Join(dir, strconv.Itoa(i))
		s, err := save(ctx, it, base)
		if err != nil {
			return snap, fmt.Errorf("saving %s %s (%s): %w", it.Kind, it.Name, it.Path, err)
		}
		snap.Items = append(snap.Items, s)
	}
	return snap, nil
}

func save(ctx context.Context, it Data, base string) (Saved, error) {
	fi, err := os.Stat(it.Path)
	if err != nil {
		return Saved{}, err
	}
	if !fi.IsDir() {
		// A single bind-mounted file: a plain copy keeps it exactly.
		s := Saved{Data: it, Method: "reflink", Copy: base}
		return s, command(ctx, "cp", "-a", "--reflink=auto", it.Path, base)
	}
	if isSubvolume(it.Path) {
		s := Saved{Data: it, Method: "btrfs-snapshot", Copy: base}
		if err := command(ctx, "btrfs", "subvolume", "snapshot", "-r", it.Path, base); err == nil {
			return s, nil
		}
	}
	if isBtrfs(it.Path) && isBtrfs(filepath.Dir(base)) {
		s := Saved{Data: it, Method: "reflink", Copy: base}
		if err := command(ctx, "cp", "-a", "--reflink=always", it.Path+"/.", base); err == nil {
			return s, nil
		}
		_ = os.RemoveAll(base) // another filesystem: fall back to an archive
	}
	s := Saved{Data: it, Method: "tar", Copy: base + ".tar"}
	return s, command(ctx, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--sparse",
		"-C", it.Path, "-cpf", s.Copy, ".")
}

// Restore puts every item back exactly as it was saved: what was added
// since is removed, what was changed or deleted comes back.
func (s DataSnapshot) Restore(ctx context.Context) error {
	var errs []error
	for _, it := range s.Items {
		if err := restore(ctx, it); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s %s (%s) from %s: %w", it.Kind, it.Name, it.Path, it.Copy, err))
		}
	}
	return errors.Join(errs...)
}

func restore(ctx context.Context, it Saved) error {
	fi, err := os.Stat(it.Copy)
	if err != nil {
		return err
	}
	if !fi.IsDir() && it.Method != "tar" {
		return command(ctx, "cp", "-a", "--reflink=auto", it.Copy, it.Path)
	}
	if it.Method == "btrfs-snapshot" && isSubvolume(it.Path) {
		if err := command(ctx, "btrfs", "subvolume", "delete", it.Path); err != nil {
			return err
		}
		return command(ctx, "btrfs", "subvolume", "snapshot", it.Copy, it.Path)
	}
	if err := emptyDir(it.Path); err != nil {
		return err
	}
	if it.Method == "tar" {
		return command(ctx, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--sparse",
			"-C", it.Path, "-xpf", it.Copy)
	}
	return command(ctx, "cp", "-a", "--reflink=auto", it.Copy+"/.", it.Path)
}

// emptyDir removes everything inside dir, keeping dir itself (a volume's
// directory may be a mount point or referenced by Podman).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && isSubvolume(p) {
			if err := command(context.Background(), "btrfs", "subvolume", "delete", p); err == nil {
				continue
			}
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the saved copies.
func (s DataSnapshot) Remove(ctx context.Context) error {
	if s.Dir == "" {
		return nil
	}
	var errs []error
	for _, it := range s.Items {
		if it.Method == "btrfs-snapshot" {
			if err := command(ctx, "btrfs", "subvolume", "delete", it.Copy); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
