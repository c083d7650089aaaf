// Package history keeps the record of every update as JSON lines, one
// object a line, appended and fsynced.
package history

import (
	"time"

	"github.com/speedia/host/updater/pkgver"
)

// Event names a step in an update's life.
type Event string

const (
	Checked         Event = "checked"          // a check found updates (or none, when asked by the admin)
	Staged          Event = "staged"           // staged into Snapshot
	StageFailed     Event = "stage-failed"     // nothing changed
	Skipped         Event = "skipped"          // found updates are marked bad or held
	RebootScheduled Event = "reboot-scheduled" // At is the planned time
	RebootCancelled Event = "reboot-cancelled"
	Rebooting       Event = "rebooting"
	Verified        Event = "verified"      // Snapshot booted and is healthy
	HealthFailed    Event = "health-failed" // Snapshot booted and failed its health gate
	RolledBack      Event = "rolled-back"   // Snapshot failed; From it back to To
	GaveUp          Event = "gave-up"       // bounded attempts exhausted
	Held            Event = "held"
	Unheld          Event = "unheld"
	BadCleared      Event = "bad-cleared"
	// Container events: Container names it, Update is the package set.
	ContainerPatched     Event = "container-patched"
	ContainerPatchFailed Event = "container-patch-failed" // the rollback point was put back
	ContainerRolledBack  Event = "container-rolled-back"  // the admin undid its last patch
)

// Record is one line of history.
type Record struct {
	Time     time.Time       `json:"time"`
	Event    Event           `json:"event"`
	Snapshot int             `json:"snapshot,omitempty"`
	To       int             `json:"to,omitempty"`     // rollback target
	At       *time.Time      `json:"at,omitempty"`     // planned reboot time
	Update   string          `json:"update,omitempty"` // package-set id of the update
	Changes  []pkgver.Change `json:"changes,omitempty"`
	Detail   string          `json:"detail,omitempty"`
	// Container is the container of a container event.
	Container string `json:"container,omitempty"`
	BootID    string `json:"boot_id,omitempty"`
}
