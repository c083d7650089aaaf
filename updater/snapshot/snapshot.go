// Package snapshot defines the engine that stages OS updates into new root
// snapshots, and the types its backends share. The running root is never
// touched: an update lands in a new snapshot that becomes the next boot.
package snapshot

import (
	"context"
	"time"

	"github.com/speedia/host/updater/pkgver"
)

// Backends fail with the kinds of updater/errkind, wrapped with context:
// NothingToDo, Busy, NotFound and Refused.

// State is how far a snapshot got.
type State string

const (
	// Staging: created, update running or interrupted. Never bootable; the
	// next transaction deletes it.
	StateStaging State = "staging"
	// Ready: complete and read-only; may be booted.
	StateReady State = "ready"
	// Foreign: made by someone else (e.g. snapper's own boot snapshots).
	// Listed, never deleted or booted by the engine.
	StateForeign State = "foreign"
)

// Snapshot is one root filesystem snapshot as the engine sees it.
type Snapshot struct {
	Number        int             `json:"number"`
	Date          time.Time       `json:"date"`
	Description   string          `json:"description"`
	State         State           `json:"state"`
	Parent        int             `json:"parent,omitempty"`
	Booted        bool            `json:"booted"`
	Default       bool            `json:"default"` // the next boot
	Good          bool            `json:"good"`    // verified healthy after boot
	KernelChanged bool            `json:"kernel_changed,omitempty"`
	Changes       []pkgver.Change `json:"changes,omitempty"`
}

// Pending reports whether s is staged for the next boot but not running.
func (s Snapshot) Pending() bool { return s.Default && !s.Booted }

// StageOptions tune one staging run.
type StageOptions struct {
	Description string
	// Log receives the package manager's output as it runs.
	Log interface{ Write([]byte) (int, error) }
}

// StageResult is what a successful staging produced.
type StageResult struct {
	Snapshot      Snapshot        `json:"snapshot"`
	Changes       []pkgver.Change `json:"changes"`
	KernelChanged bool            `json:"kernel_changed"`
	// RebootNeeded is true when the new snapshot only takes effect by booting it
	// (always true for a snapshot update; the kernel flag says whether a soft
	// reboot would be enough).
	RebootNeeded bool `json:"reboot_needed"`
	// Log is the full package manager log of this run.
	Log string `json:"log,omitempty"`
}

// Engine stages updates into snapshots and moves the next boot between them.
type Engine interface {
	// Check refreshes the package sources and lists what an update would change.
	Check(ctx context.Context) ([]pkgver.Change, error)
	// Stage applies all available updates in a new snapshot and makes it the
	// next boot. errkind.NothingToDo when there is nothing to update.
	Stage(ctx context.Context, opt StageOptions) (*StageResult, error)
	// Rollback makes snapshot n (0: the one before the booted one) the next boot.
	Rollback(ctx context.Context, n int) (*Snapshot, error)
	// MarkGood records that snapshot n booted and passed its health checks.
	MarkGood(ctx context.Context, n int) error
	// Cleanup deletes old snapshots beyond keep; never the booted, the next
	// boot or the last known good one. Returns the numbers it deleted.
	Cleanup(ctx context.Context, keep int) ([]int, error)
	// List returns every snapshot, oldest first.
	List(ctx context.Context) ([]Snapshot, error)
}

// Find returns the snapshot numbered n.
func Find(list []Snapshot, n int) (Snapshot, bool) {
	for _, s := range list {
		if s.Number == n {
			return s, true
		}
	}
	return Snapshot{}, false
}

// Booted returns the snapshot running now.
func Booted(list []Snapshot) (Snapshot, bool) {
	for _, s := range list {
		if s.Booted {
			return s, true
		}
	}
	return Snapshot{}, false
}

// LastGood returns the newest snapshot marked good.
func LastGood(list []Snapshot) (Snapshot, bool) {
	var best Snapshot
	found := false
	for _, s := range list {
		if s.Good && s.State == StateReady && (!found || s.Number > best.Number) {
			best, found = s, true
		}
	}
	return best, found
}

// Previous returns the newest ready snapshot older than n.
func Previous(list []Snapshot, n int) (Snapshot, bool) {
	var best Snapshot
	found := false
	for _, s := range list {
		if s.State == StateReady && s.Number < n && (!found || s.Number > best.Number) {
			best, found = s, true
		}
	}
	return best, found
}
