package daemon

import (
	"testing"
	"time"
)

// The timerfd clock fires at a wall-clock instant and can be stopped. (Its
// wake-up on clock changes needs CAP_SYS_TIME on a machine of its own; the
// fake clock drives the daemon's reaction to jumps.)
func TestRealClockFiresAndStops(t *testing.T) {
	var c RealClock
	start := time.Now()
	ch, stop := c.At(start.Add(30 * time.Millisecond))
	defer stop()
	select {
	case <-ch:
		if time.Now().Before(start.Add(30 * time.Millisecond)) {
			t.Fatal("fired early")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never fired")
	}
	ch, stop = c.At(time.Now().Add(time.Hour))
	stop()
	stop() // idempotent
	select {
	case <-ch:
		t.Fatal("a stopped timer fired")
	case <-time.After(50 * time.Millisecond):
	}
	// A past instant fires at once.
	ch, stop = c.At(time.Now().Add(-time.Minute))
	defer stop()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("a past instant did not fire")
	}
}
