// Package boot makes a root snapshot the next boot through the boot loader.
//
// SystemdBoot writes one Boot Loader Specification type #1 entry per snapshot,
// ESP/loader/entries/speedia-N+TRIES.conf with "sort-key speedia" and
// "version N": systemd-boot sorts newer snapshots first and bad ones (0 tries
// left) last, and loader.conf's "default speedia-*" boots the first match.
// Boot counting does the fallback: a snapshot that never reaches
// boot-complete.target runs out of tries and the previous one boots. Kernels
// and initrds go to ESP/speedia/<sha256[:16]>/, shared between snapshots.
// Files are written via temp file, fsync and rename: a crash leaves the old
// or the new entry. Rollback marks the newer entries bad (see SystemdBoot).
package boot

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// DefaultTries is how many boot attempts a new entry gets before it is bad.
const DefaultTries = 3

// ErrNotFound: there is no entry for the snapshot.
var ErrNotFound = errors.New("boot entry not found")

// Loader points the boot loader at root snapshots. Implementations are not
// safe for use by several processes at once; the updater serializes them.
type Loader interface {
	// SetNext installs or refreshes the entry for e.Snapshot, with fresh
	// tries, and makes it the one booted next.
	SetNext(ctx context.Context, e Entry) error
	// Remove deletes the snapshot's entry and the files no entry uses any
	// more. A missing entry is not an error.
	Remove(ctx context.Context, snapshot int) error
	// Bless marks the snapshot's entry good: boot counting stops for it.
	Bless(ctx context.Context, snapshot int) error
	// MarkBad leaves the snapshot's entry 0 tries, so it only boots by hand.
	MarkBad(ctx context.Context, snapshot int) error
	// List returns the entries in boot order: the first one boots next.
	List(ctx context.Context) ([]EntryInfo, error)
}

// Entry is what SetNext needs to boot one snapshot.
type Entry struct {
	Snapshot int
	Title    string // menu title; empty means "Speedia host (snapshot N)"
	// Kernel and Initrd as seen from the running system, inside the
	// snapshot, e.g. /.snapshots/N/snapshot/boot/vmlinuz-6.1.0-13-amd64.
	// Initrd is optional.
	Kernel   string
	Initrd   string
	RootUUID string   // root filesystem UUID
	Subvol   string   // root subvolume, e.g. @/.snapshots/N/snapshot
	Options  []string // extra kernel options
	Tries    int      // boot attempts before fallback; 0 means DefaultTries
}

func (e Entry) title() string {
	if e.Title != "" {
		return e.Title
	}
	return fmt.Sprintf("Speedia host (snapshot %d)", e.Snapshot)
}

func (e Entry) validate() error {
	switch {
	case e.Snapshot <= 0:
		return fmt.Errorf("snapshot %d: not a snapshot number", e.Snapshot)
	case e.Kernel == "":
		return errors.New("no kernel")
	case e.RootUUID == "" || e.Subvol == "":
		return errors.New("no root UUID or subvolume")
	case e.Tries < 0:
		return fmt.Errorf("tries %d: negative", e.Tries)
	case strings.ContainsAny(e.RootUUID+e.Subvol, " \t"):
		return errors.New("space in root UUID or subvolume")
	}
	// A newline would start a new key in the entry file.
	for _, s := range append([]string{e.Title, e.Kernel, e.Initrd, e.RootUUID, e.Subvol}, e.Options...) {
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("newline in %q", s)
		}
	}
	return nil
}

// State is the boot assessment state of an entry.
type State string

const (
	StateGood          State = "good"          // no counter: blessed, or never counted
	StateIndeterminate State = "indeterminate" // tries left, not blessed yet
	StateBad           State = "bad"           // no tries left; sorted last
)

// EntryInfo is one installed entry as List reports it.
type EntryInfo struct {
	Snapshot  int
	File      string // file name in loader/entries
	Title     string
	Version   string
	Kernel    string // path on the ESP
	Initrd    string // path on the ESP
	Options   string
	TriesLeft int // -1 when not counting
	TriesDone int
	State     State
}
