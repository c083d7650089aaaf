// Package state is the update state machine: the phases, the data each one
// carries, and one method per transition. It does no I/O; the daemon does
// the work of each phase and then calls exactly one transition.
//
// The fields are unexported: only the methods below change them, so every
// change of phase is an edge of the diagram (state.dot beside this file,
// whose edges are named after the methods and tested against them). A few
// annotations that are not phase changes (hold, bad list, next check, last
// error) have methods of their own.
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

// Phases lists every phase, for tests and documentation.
var Phases = []Phase{Idle, Checking, Staging, Pending, Rebooting, Verifying, RollingBack}

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

func (u *Update) clone() *Update {
	if u == nil {
		return nil
	}
	c := *u
	c.Changes = slices.Clone(u.Changes)
	return &c
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

// Plan is when and why the pending update reboots (pending, rebooting).
type Plan struct {
	At     time.Time // planned (pending) or scheduled (rebooting)
	Reason string
	// RetryAt: a step right before the reboot failed; not before then.
	RetryAt time.Time
	// PostponedSince: the first time a due reboot waited for inhibitors or
	// logged-in users (bounded by the config's postpone).
	PostponedSince time.Time
}

// Trial is the boots of an update under test (rebooting, verifying,
// rolling-back).
type Trial struct {
	// BootID is the boot in which the current phase began: in rebooting, a
	// different boot after a restart means the reboot happened; in
	// verifying, that the verified snapshot booted once more.
	BootID string
	// Attempts counts boots of the pending snapshot (verifying) or of the
	// rollback target (rolling-back).
	Attempts   int
	RollbackTo int
	Failure    string // why the rollback happens
}

// Workload is the inventory of containers taken right before an update
// reboot (opaque here), kept until they run again after the boot.
type Workload struct {
	Inventory json.RawMessage
	Stopped   bool // all of it was stopped
}

// Checks is what the last check found and when the next one is due.
type Checks struct {
	Last   time.Time
	Result string
	Next   time.Time
}

// Track is the host's record across updates.
type Track struct {
	LastGood    int
	LastSuccess time.Time
	LastReboot  time.Time
	LastError   string
	Reboots     uint64
	Rollbacks   uint64
}

// State is everything the daemon must remember across restarts and reboots.
// The zero value is not ready; use New or json.Unmarshal.
type State struct {
	phase    Phase
	pending  *Update // also kept while checking/staging a newer one
	plan     Plan
	trial    Trial
	workload Workload
	hold     *Hold
	bad      []Bad
	checks   Checks
	track    Track
}

// New is the state of a host that never ran the daemon.
func New() *State { return &State{phase: Idle} }

// Phase is the current phase.
func (s State) Phase() Phase { return s.phase }

// Pending is a copy of the staged update, or nil.
func (s State) Pending() *Update { return s.pending.clone() }

// PendingSnapshot is the staged snapshot's number, or 0.
func (s State) PendingSnapshot() int {
	if s.pending == nil {
		return 0
	}
	return s.pending.Snapshot
}

// Plan is the reboot plan of the pending update.
func (s State) Plan() Plan { return s.plan }

// Trial is the state of the update under test.
func (s State) Trial() Trial { return s.trial }

// Workload is the container inventory kept across an update reboot.
func (s State) Workload() Workload {
	return Workload{Inventory: slices.Clone(s.workload.Inventory), Stopped: s.workload.Stopped}
}

// Hold is the hold in force (expired or not; see Held), or nil.
func (s State) Hold() *Hold {
	if s.hold == nil {
		return nil
	}
	h := *s.hold
	return &h
}

// Bad lists the package sets that failed after boot.
func (s State) Bad() []Bad { return slices.Clone(s.bad) }

// Checks is what the last check found and when the next is due.
func (s State) Checks() Checks { return s.checks }

// Track is the host's record across updates.
func (s State) Track() Track { return s.track }

// Clone is a deep copy, for publishing.
func (s State) Clone() State {
	c := s
	c.pending = s.pending.clone()
	c.workload = s.Workload()
	c.hold = s.Hold()
	c.bad = s.Bad()
	return c
}

// Held reports whether a hold is in force at now.
func (s State) Held(now time.Time) bool {
	return s.hold != nil && (s.hold.Until.IsZero() || now.Before(s.hold.Until))
}

// IsBad reports whether the package set id failed before.
func (s State) IsBad(id string) bool {
	return slices.ContainsFunc(s.bad, func(b Bad) bool { return b.ID == id })
}

func (s *State) from(transition string, allowed ...Phase) error {
	if slices.Contains(allowed, s.phase) {
		return nil
	}
	return fmt.Errorf("%s from %s: %w", transition, s.phase, ErrTransition)
}

// back is where a check or staging returns to when it changes nothing.
func (s *State) back() Phase {
	if s.pending != nil {
		return Pending
	}
	return Idle
}

// StartCheck: idle|pending -> checking.
func (s *State) StartCheck(now time.Time) error {
	if err := s.from("StartCheck", Idle, Pending); err != nil {
		return err
	}
	s.phase = Checking
	return nil
}

// CheckDone records a check that leads to no staging (nothing new, held,
// marked bad or failed): checking -> idle|pending.
func (s *State) CheckDone(now time.Time, result string, failed error) error {
	if err := s.from("CheckDone", Checking); err != nil {
		return err
	}
	s.checks.Last, s.checks.Result = now, result
	if failed != nil {
		s.checks.Result = "failed: " + failed.Error()
	}
	s.phase = s.back()
	return nil
}

// Interrupted: checking|staging -> idle|pending, when the daemon finds it
// was stopped in the middle of one. Neither can resume (the engine deletes
// an unfinished snapshot at its next run), so the next check is due now.
func (s *State) Interrupted(now time.Time) error {
	if err := s.from("Interrupted", Checking, Staging); err != nil {
		return err
	}
	s.checks.Result = fmt.Sprintf("%s interrupted; checking again", map[Phase]string{Checking: "check", Staging: "staging"}[s.phase])
	s.checks.Next = now
	s.phase = s.back()
	return nil
}

// StartStaging: checking|idle|pending -> staging (idle and pending when the
// admin applies without a check first).
func (s *State) StartStaging(now time.Time) error {
	if err := s.from("StartStaging", Checking, Idle, Pending); err != nil {
		return err
	}
	s.phase = Staging
	return nil
}

// Staged: staging -> pending. A newer update replaces the pending one; the
// reboot plan is made again for it.
func (s *State) Staged(now time.Time, u Update) error {
	if err := s.from("Staged", Staging); err != nil {
		return err
	}
	s.pending = u.clone()
	s.phase = Pending
	s.checks.Last, s.checks.Result = now, fmt.Sprintf("staged snapshot %d: %s", u.Snapshot, ChangeSummary(u.Changes))
	s.plan.At, s.plan.Reason, s.trial.BootID = time.Time{}, "", ""
	s.track.LastError = ""
	return nil
}

// StageFailed: staging -> idle|pending (the old pending update stays).
func (s *State) StageFailed(now time.Time, err error) error {
	if e := s.from("StageFailed", Staging); e != nil {
		return e
	}
	s.checks.Last, s.checks.Result = now, "staging failed: "+err.Error()
	s.track.LastError = s.checks.Result
	s.phase = s.back()
	return nil
}

// PlanReboot records when the pending update will reboot: pending -> pending.
func (s *State) PlanReboot(at time.Time, reason string) error {
	if err := s.from("PlanReboot", Pending); err != nil {
		return err
	}
	s.plan.At, s.plan.Reason = at, reason
	return nil
}

// Postponed: pending -> pending. The reboot was due but blockers (block
// inhibitors, logged-in users) hold it back; it looks again at next. The
// first postponement starts the clock of the postpone limit.
func (s *State) Postponed(now, next time.Time, reason string) error {
	if err := s.from("Postponed", Pending); err != nil {
		return err
	}
	if s.plan.PostponedSince.IsZero() {
		s.plan.PostponedSince = now
	}
	s.plan.At, s.plan.Reason = next, reason
	return nil
}

// RetryLater: pending -> pending. A step right before the reboot failed
// (carrying /etc, the reboot lock, logind); the reboot is planned again at
// retry, not before, and failure is the last error.
func (s *State) RetryLater(retry time.Time, reason, failure string) error {
	if err := s.from("RetryLater", Pending); err != nil {
		return err
	}
	s.plan.At, s.plan.Reason, s.plan.RetryAt = retry, reason, retry
	s.track.LastError = failure
	return nil
}

// AdminReboot: pending -> pending. The admin asks for the reboot at at
// (zero: in the next window, as the strategy decides); this lifts a
// cancellation and a postponement.
func (s *State) AdminReboot(at time.Time) error {
	if err := s.from("AdminReboot", Pending); err != nil {
		return err
	}
	if s.pending == nil {
		return fmt.Errorf("nothing pending: %w", ErrTransition)
	}
	s.pending.AdminAt, s.pending.Cancelled = at, false
	s.plan.PostponedSince = time.Time{}
	return nil
}

// RebootScheduled: pending -> rebooting at at for reason, once logind has
// the reboot.
func (s *State) RebootScheduled(at time.Time, reason, bootID string) error {
	if err := s.from("RebootScheduled", Pending); err != nil {
		return err
	}
	s.phase = Rebooting
	s.plan.At, s.plan.Reason, s.trial.BootID = at, reason, bootID
	s.plan.RetryAt = time.Time{}
	s.plan.PostponedSince = time.Time{}
	s.trial.Attempts = 0
	s.workload = Workload{}
	return nil
}

// WorkloadTaken: rebooting -> rebooting. The container inventory is taken
// at the reboot moment, before anything is stopped: a daemon killed while
// stopping still knows what ran.
func (s *State) WorkloadTaken(inv json.RawMessage) error {
	if err := s.from("WorkloadTaken", Rebooting); err != nil {
		return err
	}
	s.workload = Workload{Inventory: slices.Clone(inv)}
	return nil
}

// WorkloadStopped: rebooting -> rebooting. Everything in the inventory is
// stopped; the reboot comes next.
func (s *State) WorkloadStopped() error {
	if err := s.from("WorkloadStopped", Rebooting); err != nil {
		return err
	}
	if s.workload.Inventory == nil {
		return fmt.Errorf("WorkloadStopped without a container inventory: %w", ErrTransition)
	}
	s.workload.Stopped = true
	return nil
}

// Rescheduled: rebooting|rolling-back -> the same phase. The reboot did not
// happen when it should have (logind lost it) and was handed to logind
// again at now; failure, if any, says why that failed.
func (s *State) Rescheduled(now time.Time, failure string) error {
	if err := s.from("Rescheduled", Rebooting, RollingBack); err != nil {
		return err
	}
	s.plan.At = now
	if failure != "" {
		s.track.LastError = failure
	}
	return nil
}

// CancelReboot: rebooting|pending -> pending, and no automatic reboot for
// this update any more.
func (s *State) CancelReboot() error {
	if err := s.from("CancelReboot", Rebooting, Pending); err != nil {
		return err
	}
	if s.pending == nil {
		return fmt.Errorf("nothing pending: %w", ErrTransition)
	}
	s.phase = Pending
	s.pending.Cancelled = true
	s.pending.AdminAt = time.Time{}
	s.plan = Plan{Reason: "cancelled by the admin", RetryAt: s.plan.RetryAt}
	s.trial.BootID = ""
	s.workload = Workload{}
	return nil
}

// RebootAborted: rebooting -> pending, when a step right before the
// reboot failed (e.g. containers would not stop); planned again at retry.
func (s *State) RebootAborted(retry time.Time, reason, failure string) error {
	if err := s.from("RebootAborted", Rebooting); err != nil {
		return err
	}
	s.phase = Pending
	s.plan.At, s.plan.Reason, s.plan.RetryAt = retry, reason, retry
	s.trial.BootID = ""
	s.workload = Workload{}
	s.track.LastError = failure
	return nil
}

// BootedPending: rebooting|verifying -> verifying, after a boot into the
// pending snapshot. Each boot counts one attempt.
func (s *State) BootedPending(now time.Time, bootID string) error {
	if err := s.from("BootedPending", Rebooting, Verifying); err != nil {
		return err
	}
	if s.phase == Rebooting {
		s.track.Reboots++
		s.track.LastReboot = now
	}
	s.phase = Verifying
	s.trial.Attempts++
	s.trial.BootID = bootID
	s.plan.PostponedSince = time.Time{}
	return nil
}

// Verified: verifying -> idle. The snapshot is the new last known good.
func (s *State) Verified(now time.Time) error {
	if err := s.from("Verified", Verifying); err != nil {
		return err
	}
	if s.pending != nil {
		s.track.LastGood = s.pending.Snapshot
	}
	s.track.LastSuccess = now
	s.track.LastError = ""
	s.pending = nil
	s.phase = Idle
	s.plan = Plan{}
	s.trial = Trial{}
	s.workload = Workload{}
	return nil
}

// Failed: rebooting|verifying -> rolling-back to snapshot `to`. The update
// is marked bad so it is never staged again until the admin clears it.
func (s *State) Failed(now time.Time, to int, reason string) error {
	if err := s.from("Failed", Rebooting, Verifying); err != nil {
		return err
	}
	if s.pending != nil {
		s.markBad(now, *s.pending, reason)
	}
	s.phase = RollingBack
	s.trial = Trial{RollbackTo: to, Failure: reason}
	s.plan.At = time.Time{}
	s.track.LastError = reason
	return nil
}

// RollbackRebooting records that the reboot into the rollback target was
// issued at now: rolling-back -> rolling-back.
func (s *State) RollbackRebooting(now time.Time, bootID string) error {
	if err := s.from("RollbackRebooting", RollingBack); err != nil {
		return err
	}
	s.trial.BootID = bootID
	s.trial.Attempts++
	s.plan.At = now
	return nil
}

// RolledBack: rolling-back -> idle, booted on the rollback target.
func (s *State) RolledBack(now time.Time) error {
	if err := s.from("RolledBack", RollingBack); err != nil {
		return err
	}
	s.track.Rollbacks++
	s.track.Reboots++
	s.track.LastReboot = now
	s.track.LastError = fmt.Sprintf("update rolled back: %s", s.trial.Failure)
	s.pending = nil
	s.phase = Idle
	s.trial = Trial{Failure: s.trial.Failure}
	s.workload = Workload{}
	return nil
}

// GaveUp: rolling-back -> idle after bounded attempts; the host stays
// where it is and the admin is told.
func (s *State) GaveUp(now time.Time, reason string) error {
	if err := s.from("GaveUp", RollingBack); err != nil {
		return err
	}
	if s.pending != nil {
		s.markBad(now, *s.pending, reason)
	}
	s.pending = nil
	s.phase = Idle
	s.trial = Trial{Failure: s.trial.Failure}
	s.workload = Workload{}
	s.track.LastError = "gave up: " + reason
	return nil
}

// AdminRollback: idle|pending -> idle. The admin moved the next boot to an
// older snapshot; a pending update is dropped (not marked bad). stopped is
// the inventory of the containers stopped for the admin's reboot (nil:
// none), brought back after it (WorkloadBack); bootID is this boot.
func (s *State) AdminRollback(stopped json.RawMessage, bootID string) error {
	if err := s.from("AdminRollback", Idle, Pending); err != nil {
		return err
	}
	s.pending = nil
	s.phase = Idle
	s.plan = Plan{}
	s.trial.BootID = ""
	if stopped != nil {
		s.workload = Workload{Inventory: slices.Clone(stopped), Stopped: true}
		s.trial.BootID = bootID
	}
	return nil
}

// WorkloadBack: idle -> idle. The containers stopped for the admin's
// rollback reboot run again (or that reboot was called off).
func (s *State) WorkloadBack() error {
	if err := s.from("WorkloadBack", Idle); err != nil {
		return err
	}
	s.workload = Workload{}
	s.trial.BootID = ""
	return nil
}

// SetHold and Unhold work in every phase.
func (s *State) SetHold(h Hold) { s.hold = &h }

// Unhold lifts a hold.
func (s *State) Unhold() { s.hold = nil }

// ExpireHold drops a hold whose time has passed; true when it did.
func (s *State) ExpireHold(now time.Time) bool {
	if s.hold == nil || s.Held(now) {
		return false
	}
	s.hold = nil
	return true
}

// ClearBad forgets one bad package set ("" = all); false when id is unknown.
func (s *State) ClearBad(id string) bool {
	if id == "" {
		n := len(s.bad)
		s.bad = nil
		return n > 0
	}
	for i, b := range s.bad {
		if b.ID == id {
			s.bad = slices.Delete(s.bad, i, i+1)
			return true
		}
	}
	return false
}

// ScheduleCheck sets when the next check is due, in every phase.
func (s *State) ScheduleCheck(at time.Time) { s.checks.Next = at }

// SetError records what went wrong last, in every phase (a failed step
// that changes no phase: marking a snapshot good, starting containers).
func (s *State) SetError(msg string) { s.track.LastError = msg }

// KnowGood takes n as the last known good snapshot of a host that never
// verified an update (the first start on a fresh image); once one is
// known, only Verified changes it.
func (s *State) KnowGood(n int) {
	if s.track.LastGood == 0 {
		s.track.LastGood = n
	}
}

func (s *State) markBad(now time.Time, u Update, reason string) {
	if s.IsBad(u.ID) {
		return
	}
	s.bad = append(s.bad, Bad{ID: u.ID, Snapshot: u.Snapshot, Reason: reason, Date: now, Changes: slices.Clone(u.Changes)})
}

// disk is the state file's form (/var/lib/speedia/state.json). Its keys are
// a stable format: a daemon of an older or newer version reads the same file.
type disk struct {
	Phase           Phase           `json:"phase"`
	Pending         *Update         `json:"pending,omitempty"`
	RebootAt        time.Time       `json:"reboot_at,omitzero"`
	RebootReason    string          `json:"reboot_reason,omitempty"`
	RetryAt         time.Time       `json:"retry_at,omitzero"`
	BootID          string          `json:"boot_id,omitempty"`
	PostponedSince  time.Time       `json:"postponed_since,omitzero"`
	Attempts        int             `json:"attempts,omitempty"`
	RollbackTo      int             `json:"rollback_to,omitempty"`
	Failure         string          `json:"failure,omitempty"`
	Workload        json.RawMessage `json:"workload,omitempty"`
	WorkloadStopped bool            `json:"workload_stopped,omitempty"`
	Hold            *Hold           `json:"hold,omitempty"`
	Bad             []Bad           `json:"bad,omitempty"`
	LastGood        int             `json:"last_good,omitempty"`
	LastCheck       time.Time       `json:"last_check,omitzero"`
	LastCheckResult string          `json:"last_check_result,omitempty"`
	NextCheck       time.Time       `json:"next_check,omitzero"`
	LastSuccess     time.Time       `json:"last_success,omitzero"`
	LastReboot      time.Time       `json:"last_reboot,omitzero"`
	LastError       string          `json:"last_error,omitempty"`
	Reboots         uint64          `json:"reboots"`
	Rollbacks       uint64          `json:"rollbacks"`
}

// MarshalJSON writes the state file's form.
func (s State) MarshalJSON() ([]byte, error) {
	return json.Marshal(disk{
		Phase: s.phase, Pending: s.pending,
		RebootAt: s.plan.At, RebootReason: s.plan.Reason, RetryAt: s.plan.RetryAt, PostponedSince: s.plan.PostponedSince,
		BootID: s.trial.BootID, Attempts: s.trial.Attempts, RollbackTo: s.trial.RollbackTo, Failure: s.trial.Failure,
		Workload: s.workload.Inventory, WorkloadStopped: s.workload.Stopped,
		Hold: s.hold, Bad: s.bad,
		LastCheck: s.checks.Last, LastCheckResult: s.checks.Result, NextCheck: s.checks.Next,
		LastGood: s.track.LastGood, LastSuccess: s.track.LastSuccess, LastReboot: s.track.LastReboot,
		LastError: s.track.LastError, Reboots: s.track.Reboots, Rollbacks: s.track.Rollbacks,
	})
}

// UnmarshalJSON reads the state file's form; a phase it does not know is an
// error, not a guess.
func (s *State) UnmarshalJSON(b []byte) error {
	d := disk{Phase: Idle}
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	if !slices.Contains(Phases, d.Phase) {
		return fmt.Errorf("unknown phase %q", d.Phase)
	}
	*s = State{
		phase: d.Phase, pending: d.Pending,
		plan:     Plan{At: d.RebootAt, Reason: d.RebootReason, RetryAt: d.RetryAt, PostponedSince: d.PostponedSince},
		trial:    Trial{BootID: d.BootID, Attempts: d.Attempts, RollbackTo: d.RollbackTo, Failure: d.Failure},
		workload: Workload{Inventory: d.Workload, Stopped: d.WorkloadStopped},
		hold:     d.Hold, bad: d.Bad,
		checks: Checks{Last: d.LastCheck, Result: d.LastCheckResult, Next: d.NextCheck},
		track: Track{LastGood: d.LastGood, LastSuccess: d.LastSuccess, LastReboot: d.LastReboot,
			LastError: d.LastError, Reboots: d.Reboots, Rollbacks: d.Rollbacks},
	}
	return nil
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
