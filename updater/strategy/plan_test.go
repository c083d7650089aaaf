package strategy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The reboot decision as a table: window, gap, admin, hold, cancel, retry,
// blockers and the postpone limit.
func TestPlanReboot(t *testing.T) {
	now := mustTime(t, "2026-11-29T03:30:00Z") // a Sunday
	win := Periodic{Schedule: schedule(t, "UTC", "Sun 03:00 +2h"), MinGap: 24 * time.Hour}
	nextWin := mustTime(t, "2026-12-06T03:00:00Z")
	users := []string{"alice is logged in from 10.0.0.1"}
	openReason := "maintenance window Sun 2026-11-29 03:00-05:00 UTC"
	nextReason := "maintenance window Sun 2026-12-06 03:00-05:00 UTC, not before Mon 2026-11-30 02:30:00 (min gap 24h0m0s after the last update reboot)"
	cases := []struct {
		name string
		in   PlanInput
		want RebootPlan
	}{
		{"no strategy", PlanInput{Now: now},
			RebootPlan{Action: Wait, Reason: "no reboot strategy configured"}},
		{"manual", PlanInput{Now: now, Strategy: Manual{}},
			RebootPlan{Action: Wait, Reason: "manual strategy: run 'speedia-update reboot'"}},
		{"held", PlanInput{Now: now, Strategy: Immediate{}, Held: true, HoldReason: "launch"},
			RebootPlan{Action: Wait, Reason: "held: launch"}},
		{"cancelled", PlanInput{Now: now, Strategy: Immediate{}, Cancelled: true},
			RebootPlan{Action: Wait, Reason: "reboot cancelled by the admin; run 'speedia-update reboot' to schedule it"}},
		{"immediate, first decision", PlanInput{Now: now, Strategy: Immediate{}},
			RebootPlan{Action: Reboot, At: now, Reason: "immediately", Announce: true}},
		{"window open, gap kept", PlanInput{Now: now, Strategy: win, LastReboot: now.Add(-48 * time.Hour)},
			RebootPlan{Action: Reboot, At: now, Reason: openReason, Announce: true}},
		{"window open, gap not kept: next window", PlanInput{Now: now, Strategy: win, LastReboot: now.Add(-time.Hour)},
			RebootPlan{Action: Wait, At: nextWin, Reason: nextReason, Announce: true}},
		{"already planned: no announcement", PlanInput{Now: now, Strategy: win, LastReboot: now.Add(-time.Hour), Planned: nextWin, PlannedReason: nextReason},
			RebootPlan{Action: Wait, At: nextWin, Reason: nextReason}},
		{"admin time in the future", PlanInput{Now: now, Strategy: Manual{}, AdminAt: now.Add(time.Hour)},
			RebootPlan{Action: Wait, At: now.Add(time.Hour), Reason: "requested by the admin", Announce: true, Admin: true}},
		{"admin time beats a hold and a cancel", PlanInput{Now: now, Strategy: Manual{}, AdminAt: now, Held: true, Cancelled: true},
			RebootPlan{Action: Reboot, At: now, Reason: "requested by the admin", Announce: true, Admin: true}},
		{"admin ignores blockers", PlanInput{Now: now, AdminAt: now, Blockers: users, Planned: now, PlannedReason: "requested by the admin"},
			RebootPlan{Action: Reboot, At: now, Reason: "requested by the admin", Admin: true}},
		{"retry after a failed step", PlanInput{Now: now, Strategy: Immediate{}, RetryAt: now.Add(5 * time.Minute)},
			RebootPlan{Action: Wait, At: now.Add(5 * time.Minute), Reason: retryReason, Announce: true}},
		{"retry time reached", PlanInput{Now: now.Add(time.Second), Strategy: win, LastReboot: now.Add(-48 * time.Hour),
			RetryAt: now, Planned: now, PlannedReason: retryReason},
			RebootPlan{Action: Reboot, At: now.Add(time.Second), Reason: openReason, Announce: true}},
		{"blockers: first postponement", PlanInput{Now: now, Strategy: Immediate{}, Blockers: users, Postpone: time.Hour},
			RebootPlan{Action: Postpone, At: now.Add(PostponeStep), Reason: "postponed: " + users[0], Announce: true}},
		{"blockers: the plan in force is the next look", PlanInput{Now: now, Strategy: Immediate{}, Blockers: users, Postpone: time.Hour,
			PostponedSince: now.Add(-10 * time.Minute), Planned: now.Add(30 * time.Second), PlannedReason: "postponed: " + users[0]},
			RebootPlan{Action: Wait, At: now.Add(30 * time.Second), Reason: "postponed: " + users[0]}},
		{"blockers: last step is shorter", PlanInput{Now: now, Strategy: Immediate{}, Blockers: users, Postpone: time.Hour,
			PostponedSince: now.Add(-time.Hour + 20*time.Second), Planned: now, PlannedReason: "postponed"},
			RebootPlan{Action: Postpone, At: now.Add(20 * time.Second), Reason: "postponed: " + users[0]}},
		{"blockers: limit reached", PlanInput{Now: now, Strategy: Immediate{}, Blockers: users, Postpone: time.Hour,
			PostponedSince: now.Add(-time.Hour), Planned: now, PlannedReason: "postponed"},
			RebootPlan{Action: Reboot, At: now, Reason: "immediately (despite " + users[0] + ": the postpone limit is reached)", Overridden: users}},
		{"blockers, no postpone allowed", PlanInput{Now: now, Strategy: Immediate{}, Blockers: users},
			RebootPlan{Action: Reboot, At: now, Reason: "immediately (despite " + users[0] + ": the postpone limit is reached)", Announce: true, Overridden: users}},
	}
	for _, c := range cases {
		got := PlanReboot(c.in)
		if got.Action != c.want.Action || !got.At.Equal(c.want.At) || got.Reason != c.want.Reason ||
			got.Announce != c.want.Announce || got.Admin != c.want.Admin || !slices.Equal(got.Overridden, c.want.Overridden) {
			t.Errorf("%s:\n got  %+v\n want %+v", c.name, got, c.want)
		}
	}
}

// Deciding again with what the first decision planned changes nothing: the
// daemon re-plans every tick, and must announce a plan once.
func TestPlanRebootIsStable(t *testing.T) {
	win := Periodic{Schedule: schedule(t, "UTC", "Sun 03:00 +2h"), Jitter: time.Hour}
	now := mustTime(t, "2026-11-25T12:00:00Z")
	in := PlanInput{Now: now, Strategy: win, Offset: 0.5}
	first := PlanReboot(in)
	if first.Action != Wait || !first.Announce || !strings.HasPrefix(first.At.Format(time.RFC3339), "2026-11-29T03:30") {
		t.Fatalf("first %+v", first)
	}
	for _, later := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		in.Now, in.Planned, in.PlannedReason = now.Add(later), first.At, first.Reason
		if again := PlanReboot(in); again.Announce || !again.At.Equal(first.At) || again.Action != Wait {
			t.Errorf("after %s: %+v", later, again)
		}
	}
}
