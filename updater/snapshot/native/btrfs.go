package native

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/speedia/host/updater/run"
)

// btrfs wraps the btrfs CLI. The CLI, not raw ioctls, so every step shows up
// as a plain command line in logs and tests.
type btrfs struct{ r run.Runner }

func (b btrfs) do(ctx context.Context, args ...string) (string, error) {
	out, err := b.r.Run(ctx, run.Cmd{Name: "btrfs", Args: args})
	return string(out), err
}

func (b btrfs) snapshot(ctx context.Context, src, dst string, readOnly bool) error {
	args := []string{"-q", "subvolume", "snapshot"}
	if readOnly {
		args = append(args, "-r")
	}
	_, err := b.do(ctx, append(args, src, dst)...)
	return err
}

func (b btrfs) create(ctx context.Context, path string) error {
	_, err := b.do(ctx, "-q", "subvolume", "create", path)
	return err
}

func (b btrfs) setReadOnly(ctx context.Context, path string, ro bool) error {
	_, err := b.do(ctx, "property", "set", "-ts", path, "ro", strconv.FormatBool(ro))
	return err
}

func (b btrfs) setDefault(ctx context.Context, path string) error {
	_, err := b.do(ctx, "subvolume", "set-default", path)
	return err
}

func (b btrfs) sync(ctx context.Context, path string) error {
	_, err := b.do(ctx, "filesystem", "sync", path)
	return err
}

var defaultRe = regexp.MustCompile(`\.snapshots/([0-9]+)/snapshot\s*$`)

// defaultSnapshot returns the snapshot number of the default subvolume, or 0
// when the default is not one of our snapshots.
func (b btrfs) defaultSnapshot(ctx context.Context, path string) (int, error) {
	out, err := b.do(ctx, "subvolume", "get-default", path)
	if err != nil {
		return 0, err
	}
	m := defaultRe.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return 0, nil
	}
	return strconv.Atoi(m[1])
}

// deleteTree removes a snapshot directory with every subvolume in it. The
// nested /etc subvolume sits inside a read-only root, so the root is made
// writable first; deleting it is the point anyway.
func (b btrfs) deleteTree(ctx context.Context, dir string) error {
	root := filepath.Join(dir, "snapshot")
	if isSubvolume(root) {
		if isSubvolume(filepath.Join(root, "etc")) {
			if err := b.setReadOnly(ctx, root, false); err != nil {
				return err
			}
			if _, err := b.do(ctx, "-q", "subvolume", "delete", filepath.Join(root, "etc")); err != nil {
				return err
			}
		}
		if _, err := b.do(ctx, "-q", "subvolume", "delete", root); err != nil {
			return err
		}
	}
	for _, sub := range []string{"etc-origin", "etc-staged"} {
		if p := filepath.Join(dir, sub); isSubvolume(p) {
			if _, err := b.do(ctx, "-q", "subvolume", "delete", p); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// isSubvolume: every btrfs subvolume root has inode number 256.
func isSubvolume(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Ino == 256
}

// sameDevice reports whether two paths are on the same subvolume: each btrfs
// subvolume has its own device number, whatever mount shows it.
func sameDevice(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return false
	}
	sa, okA := fa.Sys().(*syscall.Stat_t)
	sb, okB := fb.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Dev == sb.Dev
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
