package strategy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLocalLock(t *testing.T) {
	ctx := context.Background()
	l := LocalLock{Path: filepath.Join(t.TempDir(), "speedia", "reboot.lock")}

	if err := l.Release(ctx, "a"); err != nil {
		t.Fatalf("release of a free lock: %v", err)
	}
	if err := l.Acquire(ctx, "a"); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if b, err := os.ReadFile(l.Path); err != nil || string(b) != "a\n" {
		t.Fatalf("lock file: %q, %v", b, err)
	}
	if err := l.Acquire(ctx, "a"); err != nil {
		t.Fatalf("acquire again by the same holder: %v", err)
	}
	err := l.Acquire(ctx, "b")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("acquire by another holder: %v, want ErrLocked naming a", err)
	}
	if err := l.Release(ctx, "b"); !errors.Is(err, ErrNotHolder) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("release by another holder: %v, want ErrNotHolder", err)
	}
	if err := l.Release(ctx, "a"); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := os.Stat(l.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file after release: %v", err)
	}
	if err := l.Release(ctx, "a"); err != nil {
		t.Fatalf("release twice: %v", err)
	}
	if err := l.Acquire(ctx, "b"); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(l.Path))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// A second LocalLock on the same path (another process) sees the holder.
func TestLocalLockSharedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reboot.lock")
	if err := (LocalLock{path}).Acquire(ctx, "daemon"); err != nil {
		t.Fatal(err)
	}
	if err := (LocalLock{path}).Acquire(ctx, "other"); !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
}

func TestLocalLockRace(t *testing.T) {
	l := LocalLock{Path: filepath.Join(t.TempDir(), "reboot.lock")}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = l.Acquire(context.Background(), fmt.Sprintf("h%d", i)) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrLocked):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d holders acquired the lock, want 1", won)
	}
}

func TestLocalLockErrors(t *testing.T) {
	dir := t.TempDir()
	l := LocalLock{Path: filepath.Join(dir, "reboot.lock")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Acquire(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with a cancelled context: %v", err)
	}
	for _, h := range []string{"", "a\nb"} {
		if err := l.Acquire(context.Background(), h); err == nil {
			t.Errorf("acquire as %q succeeded", h)
		}
	}
	if err := os.WriteFile(l.Path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := l.Acquire(context.Background(), "a")
	if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "not a lock file") {
		t.Errorf("acquire over an empty file: %v", err)
	}
	if err := l.Release(context.Background(), "a"); err == nil {
		t.Errorf("release of an empty file succeeded")
	}
}
