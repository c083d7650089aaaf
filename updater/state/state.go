// Package state is the update state machine: the phases, the data each one
// carries, and one method per transition. It does no I/O; the daemon does
// the work of each phase and then calls exactly one transition.
//
// The diagram (state.dot beside this file) names its edges after the methods.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/speedia/host/updater/pkgver"
)

// Phase is where the host is in the update cycle.
type Phase string

const (
	Idle        Phase = "idle"         // running a good snapshot, nothing staged
	Checking    Phase = "checking"     // looking for updates
	Staging     Phase = "staging"      // writing an update into a new snapshot
	Pending     Phase = "pending"      // staged; waiting for the reboot decision
	Rebooting   Phase = "rebooting"    // reboot into the staged snapshot scheduled or under way
	Verifying   Phase = "verifying"    // booted the new snapshot; health gate running
	RollingBack Phase = "rolling-back" // the new snapshot failed; going back to the last good one
)

// ErrTransition is returned when a transition is not allowed from the current phase.
var ErrTransition = errors.New("transition not allowed")

// Update is one staged package set.
type Update struct {
	ID            string          `json:"id"` // see UpdateID
	Snapshot      int             `json:"snapshot"`
	Changes       []pkgver.Change `json:"changes"`
	KernelChanged bool            `json:"kernel_changed"`
	StagedAt      time.Time       `json:"staged_at"`
	// Offset is a random fraction in [0,1) drawn once per update: where in
	// the window this host reboots, so a fleet does not reboot at once.
	Offset float64 `json:"offset"`
	// Cancelled: the admin cancelled the reboot; no automatic reboot for
	// this update until the admin asks or a newer update replaces it.
	Cancelled bool `json:"cancelled,omitempty"`
	// AdminAt is a reboot time the admin chose; it overrides the strategy.
	AdminAt time.Time `json:"admin_at,omitzero"`
}

// Hold pauses automatic staging and rebooting.
type Hold struct {
	Reason string    `json:"reason"`
	Until  time.Time `json:"until,omitzero"` // zero: until Unhold
}

// Bad is a package set that failed after boot; it is never staged again
// until the admin clears it.
type Bad struct {
	ID       string          `json:"id"`
	Snapshot int             `json:"snapshot"`
	Reason   string          `json:"reason"`
	Date     time.Time       `json:"date"`
	Changes  []pkgver.Change `json:"changes,omitempty"`
}

// Summary is one line for admins.
func (b Bad) Summary() string {
	return fmt.Sprintf("%s (snapshot %d, %s): %s", ChangeSummary(b.Changes), b.Snapshot, b.Date.Format(time.DateOnly), b.Reason)
}

// State is everything the daemon must remember across restarts and reboots.
type State struct {
	Phase Phase `json:"phase"`
	// Pending is the staged update (phases pending, rebooting, verifying,
	// rolling-back; also kept while checking/staging a newer one).
	Pending *Update `json:"pending,omitempty"`
	// RebootAt is when the reboot is planned (pending) or scheduled (rebooting).
	RebootAt     time.Time `json:"reboot_at,omitzero"`
	RebootReason string    `json:"reboot_reason,omitempty"`
	// RetryAt: a step right before the reboot failed; not before then.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// BootID is the boot in which the current phase began: in rebooting, a
	// different boot after a restart means the reboot happened; in
	// verifying, that the verified snapshot booted once more.
	BootID string `json:"boot_id,omitempty"`
	// PostponedSince: the first time a due reboot waited for inhibitors or
	// logged-in users (bounded by the config's postpone).
	PostponedSince time.Time `json:"postponed_since,omitzero"`
	// Attempts counts boots of the pending snapshot (verifying) or of the
	// rollback target (rolling-back).
	Attempts   int    `json:"attempts,omitempty"`
	RollbackTo int    `json:"rollback_to,omitempty"`
	Failure    string `json:"failure,omitempty"` // why the rollback happens

	// Workload is the inventory of containers taken right before an update
	// reboot (opaque here), kept until they run again after the boot;
	// WorkloadStopped says they were all stopped.
	Workload        json.RawMessage `json:"workload,omitempty"`
	WorkloadStopped bool            `json:"workload_stopped,omitempty"`

	Hold *Hold `json:"hold,omitempty"`
	Bad  []Bad `json:"bad,omitempty"`

	LastGood        int       `json:"last_good,omitempty"`
	LastCheck       time.Time `json:"last_check,omitzero"`
	LastCheckResult string    `json:"last_check_result,omitempty"`
	NextCheck       time.Time `json:"next_check,omitzero"`
	LastSuccess     time.Time `json:"last_success,omitzero"`
	LastReboot      time.Time `json:"last_reboot,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	Reboots         uint64    `json:"reboots"`
	Rollbacks       uint64    `json:"rollbacks"`
}

// New is the state of a host that never ran the daemon.
func New() *State { return &State{Phase: Idle} }

func (s *State) from(allowed ...Phase) error {
	if slices.Contains(allowed, s.Phase) {
		return nil
	}
	return fmt.Errorf("%w: from %s", ErrTransition, s.Phase)
}

// back is where a check or staging returns to when it changes nothing.
func (s *State) back() Phase {
	if s.Pending != nil {
		return Pending
	}
	return Idle
}

// StartCheck: idle|pending -> checking.
func (s *State) StartCheck(now time.Time) error {
	if err := s.from(Idle, Pending); err != nil {
		return err
	}
	s.Phase = Checking
	return nil
}

// CheckDone records a check that leads to no staging (nothing new, held,
// marked bad or failed): checking -> idle|pending.
func (s *State) CheckDone(now time.Time, result string, failed error) error {
	if err := s.from(Checking); err != nil {
		return err
	}
	s.LastCheck, s.LastCheckResult = now, result
	if failed != nil {
		s.LastCheckResult = "failed: " + failed.Error()
	}
	s.Phase = s.back()
	return nil
}

// StartStaging: checking|idle|pending -> staging (idle and pending when the
// admin applies without a check first).
func (s *State) StartStaging(now time.Time) error {
	if err := s.from(Checking, Idle, Pending); err != nil {
		return err
	}
	s.Phase = Staging
	return nil
}

// Staged: staging -> pending. A newer update replaces the pending one; the
// reboot plan is made again for it.
func (s *State) Staged(now time.Time, u Update) error {
	if err := s.from(Staging); err != nil {
		return err
	}
	s.Pending = &u
	s.Phase = Pending
	s.LastCheck, s.LastCheckResult = now, fmt.Sprintf("staged snapshot %d: %s", u.Snapshot, ChangeSummary(u.Changes))
	s.RebootAt, s.RebootReason, s.BootID = time.Time{}, "", ""
	s.LastError = ""
	return nil
}

// StageFailed: staging -> idle|pending (the old pending update stays).
func (s *State) StageFailed(now time.Time, err error) error {
	if e := s.from(Staging); e != nil {
		return e
	}
	s.LastCheck, s.LastCheckResult = now, "staging failed: "+err.Error()
	s.LastError = s.LastCheckResult
	s.Phase = s.back()
	return nil
}

// Plan records when the pending update will reboot: pending -> pending.
func (s *State) Plan(at time.Time, reason string) error {
	if err := s.from(Pending); err != nil {
		return err
	}
	s.RebootAt, s.RebootReason = at, reason
	return nil
}

// RebootScheduled: pending -> rebooting, once logind has the reboot.
func (s *State) RebootScheduled(at time.Time, bootID string) error {
	if err := s.from(Pending); err != nil {
		return err
	}
	s.Phase = Rebooting
	s.RebootAt, s.BootID = at, bootID
	s.RetryAt = time.Time{}
	s.Attempts = 0
	s.PostponedSince = time.Time{}
	return nil
}

// CancelReboot: rebooting|pending -> pending, and no automatic reboot for
// this update any more.
func (s *State) CancelReboot() error {
	if err := s.from(Rebooting, Pending); err != nil {
		return err
	}
	if s.Pending == nil {
		return fmt.Errorf("%w: nothing pending", ErrTransition)
	}
	s.Phase = Pending
	s.Pending.Cancelled = true
	s.Pending.AdminAt = time.Time{}
	s.RebootAt, s.RebootReason, s.BootID = time.Time{}, "cancelled by the admin", ""
	s.PostponedSince = time.Time{}
	return nil
}

// RebootAborted: rebooting -> pending, when a step right before the
// reboot failed (e.g. containers would not stop); planned again at retry.
func (s *State) RebootAborted(retry time.Time, reason string) error {
	if err := s.from(Rebooting); err != nil {
		return err
	}
	s.Phase = Pending
	s.RebootAt, s.RebootReason, s.BootID = retry, reason, ""
	s.RetryAt = retry
	return nil
}

// BootedPending: rebooting|verifying -> verifying, after a boot into the
// pending snapshot. Each boot counts one attempt.
func (s *State) BootedPending(now time.Time, bootID string) error {
	if err := s.from(Rebooting, Verifying); err != nil {
		return err
	}
	if s.Phase == Rebooting {
		s.Reboots++
		s.LastReboot = now
	}
	s.Phase = Verifying
	s.Attempts++
	s.BootID = bootID
	s.PostponedSince = time.Time{}
	return nil
}

// Verified: verifying -> idle. The snapshot is the new last known good.
func (s *State) Verified(now time.Time) error {
	if err := s.from(Verifying); err != nil {
		return err
	}
	s.LastGood = s.Pending.Snapshot
	s.LastSuccess = now
	s.Pending = nil
	s.Phase = Idle
	s.Attempts = 0
	s.RebootAt, s.RebootReason = time.Time{}, ""
	s.LastError = ""
	return nil
}

// Failed: rebooting|verifying -> rolling-back to snapshot `to`. The update
// is marked bad so it is never staged again until the admin clears it.
func (s *State) Failed(now time.Time, to int, reason string) error {
	if err := s.from(Rebooting, Verifying); err != nil {
		return err
	}
	if s.Pending != nil {
		s.markBad(now, *s.Pending, reason)
	}
	s.Phase = RollingBack
	s.RollbackTo, s.Failure = to, reason
	s.Attempts = 0
	s.RebootAt, s.BootID = time.Time{}, ""
	s.LastError = reason
	return nil
}

// RollbackRebooting records that the reboot into the rollback target was
// issued: rolling-back -> rolling-back.
func (s *State) RollbackRebooting(bootID string) error {
	if err := s.from(RollingBack); err != nil {
		return err
	}
	s.BootID = bootID
	s.Attempts++
	return nil
}

// RolledBack: rolling-back -> idle, booted on the rollback target.
func (s *State) RolledBack(now time.Time) error {
	if err := s.from(RollingBack); err != nil {
		return err
	}
	s.Rollbacks++
	s.Reboots++
	s.LastReboot = now
	s.LastError = fmt.Sprintf("update rolled back: %s", s.Failure)
	s.Pending = nil
	s.Phase = Idle
	s.RollbackTo, s.Attempts, s.BootID = 0, 0, ""
	return nil
}

// GaveUp: rolling-back -> idle after bounded attempts; the host stays
// where it is and the admin is told.
func (s *State) GaveUp(now time.Time, reason string) error {
	if err := s.from(RollingBack); err != nil {
		return err
	}
	if s.Pending != nil && !s.isBad(s.Pending.ID) {
		s.markBad(now, *s.Pending, reason)
	}
	s.Pending = nil
	s.Phase = Idle
	s.RollbackTo, s.Attempts, s.BootID = 0, 0, ""
	s.LastError = "gave up: " + reason
	return nil
}

// AdminRollback: idle|pending -> idle. The admin moved the next boot to an
// older snapshot; a pending update is dropped (not marked bad).
func (s *State) AdminRollback() error {
	if err := s.from(Idle, Pending); err != nil {
		return err
	}
	s.Pending = nil
	s.Phase = Idle
	s.RebootAt, s.RebootReason, s.BootID = time.Time{}, "", ""
	s.PostponedSince = time.Time{}
	return nil
}

// SetHold and Unhold work in every phase.
func (s *State) SetHold(h Hold) { s.Hold = &h }

// Unhold lifts a hold.
func (s *State) Unhold() { s.Hold = nil }

// Held reports whether a hold is in force at now (expired holds are dropped).
func (s *State) Held(now time.Time) bool {
	if s.Hold == nil {
		return false
	}
	if !s.Hold.Until.IsZero() && !now.Before(s.Hold.Until) {
		s.Hold = nil
		return false
	}
	return true
}

// ClearBad forgets one bad package set ("" = all); false when id is unknown.
func (s *State) ClearBad(id string) bool {
	if id == "" {
		n := len(s.Bad)
		s.Bad = nil
		return n > 0
	}
	for i, b := range s.Bad {
		if b.ID == id {
			s.Bad = slices.Delete(s.Bad, i, i+1)
			return true
		}
	}
	return false
}

// IsBad reports whether the package set id failed before.
func (s *State) IsBad(id string) bool { return s.isBad(id) }

func (s *State) isBad(id string) bool {
	return slices.ContainsFunc(s.Bad, func(b Bad) bool { return b.ID == id })
}

func (s *State) markBad(now time.Time, u Update, reason string) {
	if s.isBad(u.ID) {
		return
	}
	s.Bad = append(s.Bad, Bad{ID: u.ID, Snapshot: u.Snapshot, Reason: reason, Date: now, Changes: u.Changes})
}

// UpdateID names a package set: the same updates on the same base get the
// same ID, so a set that failed is recognised when a check offers it again.
func UpdateID(changes []pkgver.Change) string {
	lines := make([]string, 0, len(changes))
	for _, c := range changes {
		lines = append(lines, c.Name+" "+c.Old+" "+c.New)
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:6])
}

// ChangeSummary is a short list like "app 1.0-1 -> 2.0-1, +2 more".
func ChangeSummary(changes []pkgver.Change) string {
	if len(changes) == 0 {
		return "no package changes"
	}
	const show = 3
	var parts []string
	for i, c := range changes {
		if i == show {
			parts = append(parts, fmt.Sprintf("+%d more", len(changes)-show))
			break
		}
		switch {
		case c.Old == "":
			parts = append(parts, c.Name+" (new) "+c.New)
		case c.New == "":
			parts = append(parts, c.Name+" removed")
		default:
			parts = append(parts, c.Name+" "+c.Old+" -> "+c.New)
		}
	}
	return strings.Join(parts, ", ")
}
