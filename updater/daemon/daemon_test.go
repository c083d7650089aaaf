package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/state"
	"github.com/speedia/host/updater/strategy"
	"github.com/speedia/host/updater/window"
)

var app2 = []pkgver.Change{{Name: "app", Old: "1.0-1", New: "2.0-1", Kind: "upgrade"}}
var app3 = []pkgver.Change{{Name: "app", Old: "1.0-1", New: "3.0-1", Kind: "upgrade"}}

func immediate() Settings {
	return Settings{CheckInterval: 24 * time.Hour, Strategy: strategy.Immediate{}, RebootDelay: time.Minute, MaxAttempts: 2, Postpone: 10 * time.Minute}
}

func phaseIs(p state.Phase) func(View) bool { return func(v View) bool { return v.State.Phase() == p } }

func events(t *testing.T, h *host) []history.Event {
	t.Helper()
	recs, err := h.d.History(0)
	if err != nil {
		t.Fatal(err)
	}
	var out []history.Event
	for _, r := range recs {
		out = append(out, r.Event)
	}
	return out
}

func countOf(s []int, n int) int {
	c := 0
	for _, x := range s {
		if x == n {
			c++
		}
	}
	return c
}

// The running snapshot is blessed at each start while it is the last good
// one (a fresh image's snapshot 1 starts counted), never while an update
// is on trial.
func TestBlessesRunningGoodSnapshot(t *testing.T) {
	h := newHost(t, immediate())
	h.start()
	h.wait("idle", phaseIs(state.Idle))
	if !slices.Equal(h.eng.marked, []int{1}) {
		t.Fatalf("marked %v after the first start, want [1]", h.eng.marked)
	}
	h.reboot()
	h.wait("idle", phaseIs(state.Idle))
	if !slices.Equal(h.eng.marked, []int{1, 1}) {
		t.Fatalf("marked %v after a plain reboot, want [1 1]", h.eng.marked)
	}
	h.eng.updates = app2
	h.d.Check(context.Background())
	h.wait("rebooting", phaseIs(state.Rebooting))
	h.restart() // same boot, update scheduled: 1 is still good but the trial decides
	h.wait("rebooting", phaseIs(state.Rebooting))
	if !slices.Equal(h.eng.marked, []int{1, 1}) {
		t.Errorf("marked %v while an update waits for its reboot, want [1 1]", h.eng.marked)
	}
}

func TestFullCycle(t *testing.T) {
	h := newHost(t, immediate())
	h.eng.updates = app2
	h.start()
	v := h.wait("reboot scheduled", phaseIs(state.Rebooting))
	if v.State.PendingSnapshot() != 2 || h.eng.def != 2 {
		t.Fatalf("pending %d, default %d; want 2", v.State.PendingSnapshot(), h.eng.def)
	}
	if at := h.logind.calls[0]; !at.Equal(h.clock.Now().Add(time.Minute)) {
		t.Errorf("logind reboot at %v, want now + 1m delay", at)
	}
	if len(h.events.progress) != 2 {
		t.Errorf("progress lines %q", h.events.progress)
	}
	h.eng.updates = nil // what is installed now
	h.reboot()
	v = h.wait("verified", func(v View) bool { return v.State.Phase() == state.Idle && v.State.Track().LastGood == 2 })
	// 1 is blessed as the running good snapshot at the first start, 2 only
	// once verified.
	if !slices.Equal(h.eng.marked, []int{1, 2}) || v.State.Track().Reboots != 1 || v.State.Pending() != nil {
		t.Errorf("marked %v reboots %d pending %v", h.eng.marked, v.State.Track().Reboots, v.State.Pending())
	}
	want := []history.Event{history.Checked, history.Staged, history.RebootScheduled, history.Rebooting, history.Verified}
	if got := events(t, h); !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
}

func TestWindowInFutureWaits(t *testing.T) {
	s := immediate()
	// 2026-11-18 is a Wednesday; the window is Sunday 03:00 UTC.
	var days [7]bool
	days[time.Sunday] = true
	s.Strategy = strategy.Periodic{Schedule: window.Schedule{Windows: []window.Window{{Days: days, Start: 3 * 60, Length: 2 * time.Hour}}, Location: time.UTC}}
	h := newHost(t, s)
	h.eng.updates = app2
	h.start()
	v := h.wait("planned", func(v View) bool { return v.State.Phase() == state.Pending && !v.State.Plan().At.IsZero() })
	sunday := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	if v.State.Plan().At.Before(sunday) || !v.State.Plan().At.Before(sunday.Add(2*time.Hour)) {
		t.Fatalf("reboot planned %v, want inside Sun 03:00-05:00", v.State.Plan().At)
	}
	if h.logind.reboots() != 0 {
		t.Fatal("rebooted outside the window")
	}
	// A clock jump into the window wakes the daemon, which reboots.
	h.clock.Set(v.State.Plan().At.Add(time.Second))
	h.wait("rebooting in window", phaseIs(state.Rebooting))
}

func TestHealthFailureRollsBackAndMarksBad(t *testing.T) {
	h := newHost(t, immediate())
	h.eng.updates = app2
	h.start()
	h.wait("rebooting", phaseIs(state.Rebooting))
	h.gate.failures = []string{"app.check: exit status 1"}
	h.reboot() // into 2, which fails
	v := h.wait("rollback reboot", func(v View) bool {
		return v.State.Phase() == state.RollingBack && v.State.Trial().BootID != ""
	})
	if h.eng.def != 1 || v.State.Trial().RollbackTo != 1 || !v.State.IsBad(state.UpdateID(app2)) {
		t.Fatalf("default %d, rollback to %d, bad %v", h.eng.def, v.State.Trial().RollbackTo, v.State.Bad())
	}
	blessed := countOf(h.eng.marked, 1)
	h.reboot() // back on 1
	v = h.wait("rolled back", phaseIs(state.Idle))
	if v.Booted != 1 || v.State.Track().Rollbacks != 1 || v.State.Track().LastError == "" {
		t.Fatalf("booted %d rollbacks %d error %q", v.Booted, v.State.Track().Rollbacks, v.State.Track().LastError)
	}
	// Back on 1, its entry is blessed again: made the default by the
	// rollback, it would otherwise count down on ordinary reboots.
	if countOf(h.eng.marked, 1) != blessed+1 {
		t.Errorf("rollback target not blessed after the rollback boot: marked %v", h.eng.marked)
	}
	// The same package set is offered again: not staged.
	stages := h.eng.stages
	_, err := h.d.Check(context.Background())
	if !errors.Is(err, errkind.Bad) || h.eng.stages != stages {
		t.Fatalf("check of a bad update: err %v, stages %d -> %d", err, stages, h.eng.stages)
	}
	// A newer update is a different set and is staged.
	h.eng.updates = app3
	if _, err := h.d.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.eng.stages != stages+1 {
		t.Fatal("newer update not staged")
	}
	want := []history.Event{history.Checked, history.Staged, history.RebootScheduled, history.Rebooting,
		history.HealthFailed, history.Rebooting, history.RolledBack, history.Skipped, history.Checked, history.Staged}
	if got := events(t, h)[:len(want)]; !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
}

func TestKillInEachPhaseResumes(t *testing.T) {
	// Killed while rebooting (same boot): still rebooting, no second reboot.
	h := newHost(t, immediate())
	h.eng.updates = app2
	h.start()
	h.wait("rebooting", phaseIs(state.Rebooting))
	h.restart()
	if v := h.d.View(); v.State.Phase() != state.Rebooting || h.logind.reboots() != 1 {
		t.Fatalf("after kill while rebooting: %s, %d reboots", v.State.Phase(), h.logind.reboots())
	}
	// Killed while verifying (same boot): the gate runs again.
	h.gate.failures = nil
	h.eng.updates = nil
	h.reboot()
	h.wait("verified", phaseIs(state.Idle))
	h.stop()
	editState(t, h.dir, map[string]any{"phase": "verifying", "pending": map[string]any{"id": "x", "snapshot": 2}, "boot_id": h.d.BootID})
	runs := h.gate.runs
	h.bootSeq--
	h.start()
	h.wait("verified again", phaseIs(state.Idle))
	if h.gate.runs != runs+1 {
		t.Errorf("gate runs %d -> %d", runs, h.gate.runs)
	}

	// Killed while checking or staging: back, and check again at once.
	for _, p := range []state.Phase{state.Checking, state.Staging} {
		h.stop()
		editState(t, h.dir, map[string]any{"phase": string(p)})
		h.eng.updates = app3
		stages := h.eng.stages
		h.bootSeq--
		h.start()
		v := h.wait("staged after "+string(p), func(v View) bool { return v.State.Phase() == state.Rebooting })
		if h.eng.stages != stages+1 || v.State.Pending().ID != state.UpdateID(app3) {
			t.Fatalf("after kill in %s: stages %d -> %d", p, stages, h.eng.stages)
		}
		h.eng.updates = nil
		h.reboot()
		h.wait("verified", phaseIs(state.Idle))
	}
}

func TestPendingSnapshotDidNotBoot(t *testing.T) {
	h := newHost(t, immediate())
	h.eng.updates = app2
	h.start()
	h.wait("rebooting", phaseIs(state.Rebooting))
	h.eng.def = 1 // firmware fell back: snapshot 1 boots
	h.reboot()
	v := h.wait("rolled back", phaseIs(state.Idle))
	if !v.State.IsBad(state.UpdateID(app2)) || v.State.Track().Rollbacks != 1 || h.logind.reboots() != 1 {
		t.Fatalf("bad %v rollbacks %d reboots %d", v.State.Bad(), v.State.Track().Rollbacks, h.logind.reboots())
	}
}

func TestNoBootLoop(t *testing.T) {
	h := newHost(t, immediate())
	h.eng.updates = app2
	h.start()
	h.wait("rebooting", phaseIs(state.Rebooting))
	h.gate.failures = []string{"broken"}
	h.reboot()
	h.wait("rollback issued", func(v View) bool { return v.State.Phase() == state.RollingBack && v.State.Trial().BootID != "" })
	// The rollback target never comes up: snapshot 2 keeps booting.
	for i := 0; i < 3; i++ {
		h.eng.def = 2
		h.reboot()
		if h.d.View().State.Phase() == state.Idle {
			break
		}
		h.wait("rollback issued", func(v View) bool { return v.State.Trial().BootID == h.d.BootID || v.State.Phase() == state.Idle })
	}
	v := h.wait("gave up", phaseIs(state.Idle))
	if reboots := h.logind.reboots(); reboots > 1+h.settings.MaxAttempts {
		t.Errorf("%d reboots: not bounded", reboots)
	}
	if v.State.Track().LastError == "" || !slices.Contains(events(t, h), history.GaveUp) {
		t.Errorf("no report: %q %v", v.State.Track().LastError, events(t, h))
	}
}

func TestNewerUpdateReplacesPending(t *testing.T) {
	s := immediate()
	s.Strategy = strategy.Manual{}
	s.CheckInterval = time.Hour
	h := newHost(t, s)
	h.eng.updates = app2
	h.start()
	v := h.wait("pending", func(v View) bool { return v.State.Phase() == state.Pending && v.State.Plan().Reason != "" })
	if v.State.PendingSnapshot() != 2 {
		t.Fatalf("pending %+v", v.State)
	}
	h.eng.updates = app3
	h.clock.Advance(2 * time.Hour)
	v = h.wait("replaced", func(v View) bool { return v.State.Pending() != nil && v.State.PendingSnapshot() == 3 })
	if h.logind.reboots() != 0 || h.eng.def != 3 {
		t.Fatalf("reboots %d default %d", h.logind.reboots(), h.eng.def)
	}
	// A failing newer update keeps the older one pending.
	h.eng.updates = []pkgver.Change{{Name: "app", Old: "1.0-1", New: "4.0-1"}}
	h.eng.stageErr = errBoom
	h.clock.Advance(2 * time.Hour)
	v = h.wait("stage failed", func(v View) bool { return v.State.Track().LastError != "" })
	if v.State.Phase() != state.Pending || v.State.PendingSnapshot() != 3 {
		t.Fatalf("after failed newer staging: %s %+v", v.State.Phase(), v.State.Pending())
	}
	at, err := h.d.Reboot(context.Background(), "now")
	if err != nil || !at.Equal(h.clock.Now()) {
		t.Fatalf("reboot now: %v %v", at, err)
	}
	if h.logind.reboots() != 1 {
		t.Fatal("admin reboot did not reach logind")
	}
}

func TestHoldAndApply(t *testing.T) {
	h := newHost(t, immediate())
	h.start()
	h.wait("first check", func(v View) bool { return !v.State.Checks().Last.IsZero() })
	ctx := context.Background()
	if err := h.d.Hold(ctx, "customer launch", time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.eng.updates = app2
	if n, err := h.d.Check(ctx); err != nil || n != 1 || h.eng.stages != 0 {
		t.Fatalf("held check: n %d err %v stages %d", n, err, h.eng.stages)
	}
	n, err := h.d.Apply(ctx)
	if err != nil || n != 2 {
		t.Fatalf("apply: %d %v", n, err)
	}
	v := h.wait("pending, not rebooting", func(v View) bool { return v.State.Phase() == state.Pending && v.State.Plan().Reason != "" })
	if h.logind.reboots() != 0 {
		t.Fatalf("rebooted while held (%s)", v.State.Plan().Reason)
	}
	if err := h.d.Unhold(ctx); err != nil {
		t.Fatal(err)
	}
	h.wait("rebooting after unhold", phaseIs(state.Rebooting))
	if err := h.d.CancelReboot(ctx); err != nil {
		t.Fatal(err)
	}
	v = h.wait("cancelled", phaseIs(state.Pending))
	if h.logind.scheduled || !v.State.Pending().Cancelled {
		t.Fatalf("logind still scheduled %v / %+v", h.logind.scheduled, v.State.Pending())
	}
}

func TestBlockersPostponeBounded(t *testing.T) {
	h := newHost(t, immediate())
	h.presence.blockers = []string{"alice is logged in from 10.0.0.1"}
	h.eng.updates = app2
	h.start()
	v := h.wait("postponed", func(v View) bool { return v.State.Phase() == state.Pending && !v.State.Plan().PostponedSince.IsZero() })
	if h.logind.reboots() != 0 {
		t.Fatal("rebooted over a logged-in user")
	}
	for i := 0; i < 20 && h.d.View().State.Phase() == state.Pending; i++ {
		h.clock.Advance(time.Minute)
		time.Sleep(5 * time.Millisecond)
	}
	h.wait("rebooting after the postpone limit", phaseIs(state.Rebooting))
	if got := h.clock.Now().Sub(v.State.Plan().PostponedSince); got < h.settings.Postpone {
		t.Errorf("rebooted after %v of postponing, limit %v", got, h.settings.Postpone)
	}
}

func TestRollbackCommand(t *testing.T) {
	s := immediate()
	s.Strategy = strategy.Manual{}
	h := newHost(t, s)
	h.eng.updates = app2
	h.start()
	h.wait("pending", phaseIs(state.Pending))
	n, err := h.d.Rollback(context.Background(), 0, "")
	if err != nil || n != 1 || h.eng.def != 1 {
		t.Fatalf("rollback: %d %v default %d", n, err, h.eng.def)
	}
	if v := h.wait("idle", phaseIs(state.Idle)); v.State.Pending() != nil {
		t.Fatal("pending kept after rollback")
	}
	if _, err := h.d.Rollback(context.Background(), 9, ""); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("rollback to a missing snapshot: %v", err)
	}
}

// A reload reaches the adapters: the presence check runs with the settings
// in force, not the ones the daemon started with, and the health gate and
// the container adapter (through the View) get theirs from the daemon.
func TestReloadReachesAdapters(t *testing.T) {
	s := immediate()
	s.Presence = PresenceSettings{Users: true}
	s.Health = GateSettings{Dir: "/etc/speedia/health.d", Timeout: time.Minute}
	h := newHost(t, s)
	h.start()
	h.wait("idle", phaseIs(state.Idle))
	next := s
	next.Presence = PresenceSettings{Inhibitors: true}
	next.Health = GateSettings{CriticalUnits: []string{"nginx.service"}, Timeout: 2 * time.Minute}
	next.Containers = ContainerSettings{Settle: time.Second, AutoUpgrade: true}
	next.RestartNeeded = []string{"metrics.listen"}
	ctx := context.Background()
	if err := h.d.SetSettings(ctx, next); err != nil {
		t.Fatal(err)
	}
	if v := h.d.View(); !v.Settings.Containers.AutoUpgrade || !slices.Equal(v.Settings.RestartNeeded, next.RestartNeeded) {
		t.Fatalf("view settings %+v", v.Settings)
	}
	h.eng.updates = app2
	if _, err := h.d.Check(ctx); err != nil {
		t.Fatal(err)
	}
	h.wait("rebooting", phaseIs(state.Rebooting))
	if h.presence.settings != next.Presence {
		t.Errorf("presence ran with %+v, want the reloaded %+v", h.presence.settings, next.Presence)
	}
	h.settings = next // the files on disk, read at the next start
	h.eng.updates = nil
	h.reboot()
	h.wait("verified", phaseIs(state.Idle))
	h.gate.mu.Lock()
	defer h.gate.mu.Unlock()
	if !slices.Equal(h.gate.settings.CriticalUnits, next.Health.CriticalUnits) || h.gate.settings.Timeout != next.Health.Timeout {
		t.Errorf("gate ran with %+v, want %+v", h.gate.settings, next.Health)
	}
}

// A transition the state machine refuses ends the tick with an error the
// admin sees, changes nothing else, and the next tick waits a little.
func TestRefusedTransitionIsReported(t *testing.T) {
	h := newHost(t, immediate())
	h.start()
	h.wait("idle", phaseIs(state.Idle))
	var wake time.Time
	_, err := h.d.call(context.Background(), func(context.Context) (any, error) {
		h.d.refused(h.d.st.RolledBack(h.clock.Now()))
		wake = h.d.nextWake()
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v := h.d.View()
	if e := v.State.Track().LastError; !strings.Contains(e, "refused a step: RolledBack from idle: transition not allowed") {
		t.Errorf("last error %q", e)
	}
	if v.State.Phase() != state.Idle || v.State.Track().Rollbacks != 0 {
		t.Errorf("the refused transition changed the state: %s, %d rollbacks", v.State.Phase(), v.State.Track().Rollbacks)
	}
	if wake.Before(h.clock.Now().Add(strategy.PostponeStep)) {
		t.Errorf("next tick at %v: no pause after a refusal", wake)
	}
}
