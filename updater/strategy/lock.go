package strategy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/speedia/host/updater/atomicfile"
)

var (
	// ErrLocked means someone else holds the reboot lock.
	ErrLocked = errors.New("reboot lock held")
	// ErrNotHolder means a holder tried to release a lock it does not hold.
	ErrNotHolder = errors.New("reboot lock held by someone else")
)

// Lock guards reboots, so that hosts of a fleet can take turns. Only a
// local lock exists now; fleet coordination can implement the same
// interface later.
type Lock interface {
	// Acquire takes the lock for holder. It fails with ErrLocked (wrapped,
	// naming the current holder) when someone else holds it, and succeeds
	// again for the same holder.
	Acquire(ctx context.Context, holder string) error
	// Release gives the lock up. Releasing a free lock succeeds; releasing
	// someone else's fails with ErrNotHolder.
	Release(ctx context.Context, holder string) error
}

// LocalLock is a file (e.g. /var/lib/speedia/reboot.lock) holding the
// holder id. It survives the reboot it guards, so the holder releases it
// after the new boot proved healthy.
type LocalLock struct{ Path string }

var _ Lock = LocalLock{}

// Acquire implements Lock.
func (l LocalLock) Acquire(ctx context.Context, holder string) error {
	if err := checkHolder(holder); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("acquire reboot lock: %w", err)
	}
	cur, err := l.holder()
	switch {
	case err == nil && cur == holder:
		return nil
	case err == nil:
		return fmt.Errorf("acquire reboot lock %s: held by %q: %w", l.Path, cur, ErrLocked)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("acquire reboot lock: %w", err)
	}
	err = l.create(holder)
	if errors.Is(err, fs.ErrExist) {
		// Another process took it between our read and link.
		if cur, err = l.holder(); err == nil && cur != holder {
			return fmt.Errorf("acquire reboot lock %s: held by %q: %w", l.Path, cur, ErrLocked)
		}
	}
	if err != nil {
		return fmt.Errorf("acquire reboot lock: %w", err)
	}
	return nil
}

// Release implements Lock.
func (l LocalLock) Release(ctx context.Context, holder string) error {
	if err := checkHolder(holder); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("release reboot lock: %w", err)
	}
	cur, err := l.holder()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("release reboot lock: %w", err)
	case cur != holder:
		return fmt.Errorf("release reboot lock %s as %q: held by %q: %w", l.Path, holder, cur, ErrNotHolder)
	}
	if err := os.Remove(l.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release reboot lock: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(l.Path)); err != nil {
		return fmt.Errorf("release reboot lock: %w", err)
	}
	return nil
}

// holder reads the current holder; fs.ErrNotExist when the lock is free.
func (l LocalLock) holder() (string, error) {
	b, err := os.ReadFile(l.Path)
	if err != nil {
		return "", err
	}
	h := string(bytes.TrimSuffix(b, []byte("\n")))
	if checkHolder(h) != nil {
		return "", fmt.Errorf("%s: not a lock file (content %q); remove it if no reboot is under way", l.Path, b)
	}
	return h, nil
}

// create writes the file whole (temporary file, fsync) and then publishes
// it with link(2), which unlike rename fails when the lock exists, so two
// processes cannot both win.
func (l LocalLock) create(holder string) error {
	dir := filepath.Dir(l.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(l.Path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(holder + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), l.Path); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

func checkHolder(h string) error {
	if h == "" || strings.ContainsAny(h, "\n\x00") {
		return fmt.Errorf("reboot lock holder %q: must be one non-empty line", h)
	}
	return nil
}
