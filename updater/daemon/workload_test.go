package daemon

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/speedia/host/updater/state"
	"github.com/speedia/host/updater/strategy"
)

func TestContainersStopAtTheRebootMomentAndComeBack(t *testing.T) {
	h := newHost(t, immediate()) // 1 minute warning before the reboot
	h.workload = newFakeWorkload("db", "web")
	h.eng.updates = app2
	h.start()
	h.wait("reboot scheduled", phaseIs(state.Rebooting))
	scheduled := h.clock.Now()
	// During the warning the containers keep serving; logind's own time
	// is only the fallback.
	if !h.workload.isRunning("web") || h.workload.count().stops != 0 {
		t.Fatal("containers stopped before the reboot moment")
	}
	if at := h.logind.history()[0]; !at.Equal(scheduled.Add(time.Minute + stopBudget)) {
		t.Errorf("logind fallback at %v, want the moment + %s", at, stopBudget)
	}
	h.clock.Advance(time.Minute)
	h.wait("containers stopped", func(v View) bool { return v.State.Workload().Stopped })
	if h.workload.isRunning("web") || h.workload.isRunning("db") {
		t.Fatal("containers still run at the reboot")
	}
	if calls := h.logind.history(); len(calls) != 2 || !calls[1].Equal(h.clock.Now()) {
		t.Fatalf("logind calls %v: want the reboot moved to now after the stop", calls)
	}
	h.eng.updates = nil
	h.reboot()
	v := h.wait("verified", func(v View) bool { return v.State.Phase() == state.Idle && v.State.Track().LastGood == 2 })
	if c := h.workload.count(); !h.workload.isRunning("web") || !h.workload.isRunning("db") || !slices.Equal(c.lastSeen, []string{"db", "web"}) {
		t.Fatalf("after the boot: started %v", c.lastSeen)
	}
	if v.State.Workload().Inventory != nil || v.State.Workload().Stopped {
		t.Errorf("inventory kept after the containers came back: %s", v.State.Workload().Inventory)
	}
}

func TestContainersThatWillNotStopCallTheRebootOff(t *testing.T) {
	h := newHost(t, immediate())
	h.workload = newFakeWorkload("web")
	h.workload.stopErr = errors.New("web: timeout")
	h.eng.updates = app2
	h.start()
	h.wait("reboot scheduled", phaseIs(state.Rebooting))
	h.clock.Advance(time.Minute)
	v := h.wait("reboot called off", phaseIs(state.Pending))
	if _, ok, _ := h.logind.ScheduledReboot(context.Background()); ok {
		t.Error("logind still has the reboot")
	}
	if !h.workload.isRunning("web") || h.workload.count().starts != 1 {
		t.Errorf("the container is not running again (starts %d)", h.workload.count().starts)
	}
	if !v.State.Plan().At.Equal(h.clock.Now().Add(retryAfter)) || v.State.Workload().Inventory != nil {
		t.Errorf("retry at %v (want now + %s), workload %s", v.State.Plan().At, retryAfter, v.State.Workload().Inventory)
	}
	// Once they stop, the update goes through.
	h.workload.mu.Lock()
	h.workload.stopErr = nil
	h.workload.mu.Unlock()
	h.clock.Advance(retryAfter)
	h.wait("rebooting again", phaseIs(state.Rebooting))
	h.clock.Advance(time.Minute)
	h.wait("containers stopped", func(v View) bool { return v.State.Workload().Stopped })
}

func TestCriticalContainerDownRollsBack(t *testing.T) {
	h := newHost(t, immediate())
	h.workload = newFakeWorkload("db", "web")
	h.eng.updates = app2
	h.start()
	h.wait("reboot scheduled", phaseIs(state.Rebooting))
	h.clock.Advance(time.Minute)
	h.wait("containers stopped", func(v View) bool { return v.State.Workload().Stopped })
	// On snapshot 2 the database cannot start.
	h.workload.mu.Lock()
	h.workload.failOn = func(n string) bool { return n == "db" && h.eng.current() == 2 }
	h.workload.mu.Unlock()
	h.reboot()
	v := h.wait("rollback", func(v View) bool { return v.State.Phase() == state.RollingBack && v.State.Trial().BootID != "" })
	if !v.State.IsBad(state.UpdateID(app2)) || v.State.Workload().Inventory == nil {
		t.Fatalf("bad %v, inventory %s", v.State.Bad(), v.State.Workload().Inventory)
	}
	if h.workload.isRunning("web") {
		t.Error("containers were not stopped before the rollback reboot")
	}
	h.reboot()
	v = h.wait("rolled back", phaseIs(state.Idle))
	if v.Booted != 1 || !h.workload.isRunning("db") || !h.workload.isRunning("web") || v.State.Workload().Inventory != nil {
		t.Fatalf("booted %d, db %v web %v, inventory %s", v.Booted, h.workload.isRunning("db"), h.workload.isRunning("web"), v.State.Workload().Inventory)
	}
}

// The admin's rollback with a reboot now stops the containers the same way
// an update reboot does, and the daemon brings them back after the boot;
// when they will not stop, nothing changes.
func TestAdminRollbackRebootStopsContainers(t *testing.T) {
	s := immediate()
	s.Strategy = strategy.Manual{}
	h := newHost(t, s)
	h.workload = newFakeWorkload("db", "web")
	h.eng.updates = app2
	h.start()
	h.wait("pending", phaseIs(state.Pending))
	ctx := context.Background()

	h.workload.mu.Lock()
	h.workload.stopErr = errors.New("db did not stop in 10s")
	h.workload.mu.Unlock()
	if _, err := h.d.Rollback(ctx, 0, "now"); err == nil || h.eng.def != 2 || h.logind.reboots() != 0 {
		t.Fatalf("rollback with containers that would not stop: err %v, default %d, reboots %d", err, h.eng.def, h.logind.reboots())
	}
	if v := h.d.View(); v.State.Phase() != state.Pending || !h.workload.isRunning("db") || !h.workload.isRunning("web") {
		t.Fatalf("after the refused rollback: %s, db %v web %v", v.State.Phase(), h.workload.isRunning("db"), h.workload.isRunning("web"))
	}

	h.workload.mu.Lock()
	h.workload.stopErr = nil
	h.workload.mu.Unlock()
	if n, err := h.d.Rollback(ctx, 0, "now"); err != nil || n != 1 || h.logind.reboots() != 1 {
		t.Fatalf("rollback: %d %v, reboots %d", n, err, h.logind.reboots())
	}
	if h.workload.isRunning("db") || h.workload.isRunning("web") {
		t.Fatal("containers still run at the rollback reboot")
	}
	h.reboot()
	v := h.wait("containers back", func(v View) bool { return v.State.Workload().Inventory == nil })
	if v.Booted != 1 || !h.workload.isRunning("db") || !h.workload.isRunning("web") {
		t.Fatalf("after the boot: booted %d, db %v web %v", v.Booted, h.workload.isRunning("db"), h.workload.isRunning("web"))
	}
}
