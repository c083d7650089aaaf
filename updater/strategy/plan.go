package strategy

import (
	"strings"
	"time"
)

// PostponeStep is how often a reboot held back by blockers looks again.
const PostponeStep = time.Minute

// PlanInput is everything the reboot decision for a staged update depends
// on. The daemon fills it from the state, the settings and the clock; it
// asks logind for Blockers only when a first decision says Reboot (asking
// is I/O, and is not needed before the reboot is due).
type PlanInput struct {
	Now      time.Time
	Strategy Strategy // nil: none configured
	// From the pending update.
	LastReboot time.Time
	Offset     float64
	AdminAt    time.Time // a reboot time the admin chose (zero: none)
	Cancelled  bool      // the admin cancelled the reboot
	// Hold, when Held, keeps the host from rebooting by itself.
	Held       bool
	HoldReason string
	// From the plan in force (state.Plan).
	Planned        time.Time
	PlannedReason  string
	RetryAt        time.Time // a failed step before the reboot: not before then
	PostponedSince time.Time // the first time a due reboot waited for blockers
	// Postpone is how long blockers may hold a due reboot back.
	Postpone time.Duration
	// Blockers are who a reboot now would hurt (block inhibitors,
	// logged-in users); the admin's own reboot ignores them.
	Blockers []string
}

// Action is what the daemon does with a plan.
type Action int

const (
	Wait     Action = iota // nothing now: the plan is At (zero: no reboot by itself)
	Postpone               // due, but blockers hold it back: look again at At
	Reboot                 // reboot now
)

func (a Action) String() string {
	return [...]string{"wait", "postpone", "reboot"}[a]
}

// RebootPlan is the decision.
type RebootPlan struct {
	Action Action
	At     time.Time // Wait: the planned reboot; Postpone: the next look; Reboot: Now
	Reason string
	// Announce: the planned time or reason changed (say so in the journal
	// and the history).
	Announce bool
	// Admin: the admin asked for this reboot (no wall-message delay).
	Admin bool
	// Overridden lists the blockers a Reboot goes ahead despite, because
	// the postpone limit is reached.
	Overridden []string
}

const retryReason = "retrying after a failed step before the reboot (see the last error)"

// PlanReboot decides, without I/O, whether the staged update reboots now,
// later, or only when the admin asks.
func PlanReboot(in PlanInput) RebootPlan {
	at, reason, never := when(in)
	if never {
		return RebootPlan{Action: Wait, Reason: reason}
	}
	if at.Before(in.RetryAt) {
		at, reason = in.RetryAt, retryReason
	}
	p := RebootPlan{Action: Wait, At: in.Planned, Reason: in.PlannedReason, Admin: !in.AdminAt.IsZero()}
	// While postponed, the plan in force is the next look, not the window.
	if in.PostponedSince.IsZero() && (!at.Equal(in.Planned) || reason != in.PlannedReason) {
		p.At, p.Reason, p.Announce = at, reason, true
	}
	if in.Now.Before(p.At) {
		return p
	}
	if !p.Admin && len(in.Blockers) > 0 {
		since := in.PostponedSince
		if since.IsZero() {
			since = in.Now
		}
		if left := since.Add(in.Postpone).Sub(in.Now); left > 0 {
			p.Action, p.At = Postpone, in.Now.Add(min(PostponeStep, left))
			p.Reason = "postponed: " + strings.Join(in.Blockers, "; ")
			return p
		}
		p.Overridden = in.Blockers
		reason += " (despite " + strings.Join(in.Blockers, "; ") + ": the postpone limit is reached)"
	}
	p.Action, p.At, p.Reason = Reboot, in.Now, reason
	return p
}

// when is the reboot time before retries and blockers, or never (with why).
func when(in PlanInput) (time.Time, string, bool) {
	switch {
	case !in.AdminAt.IsZero():
		return in.AdminAt, "requested by the admin", false
	case in.Cancelled:
		return time.Time{}, "reboot cancelled by the admin; run 'speedia-update reboot' to schedule it", true
	case in.Held:
		return time.Time{}, "held: " + in.HoldReason, true
	case in.Strategy == nil:
		return time.Time{}, "no reboot strategy configured", true
	}
	dec := in.Strategy.Decide(Input{Now: in.Now, LastReboot: in.LastReboot, Offset: in.Offset})
	if dec.Never {
		return time.Time{}, dec.Reason, true
	}
	return dec.At, dec.Reason, false
}
