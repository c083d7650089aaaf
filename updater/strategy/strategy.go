// Package strategy decides when a staged update reboots the host
// (immediately, in a maintenance window, or never by itself), and holds
// the reboot lock. Decisions are pure functions of the Input passed in.
package strategy

import (
	"fmt"
	"math"
	"time"

	"github.com/speedia/host/updater/window"
)

// Input is what a decision depends on; the daemon supplies the clock and
// the randomness.
type Input struct {
	Now        time.Time
	LastReboot time.Time // last update reboot the daemon made (zero: never)
	// Offset is a random fraction in [0,1), chosen once per pending update
	// by the daemon, so re-deciding gives the same jitter.
	Offset float64
}

// Decision says when to reboot.
type Decision struct {
	At     time.Time // when to reboot; zero when Never
	Never  bool      // stage only, never reboot by itself
	Reason string    // for admins
}

// Strategy decides when to reboot into a staged update.
type Strategy interface {
	Name() string
	Decide(in Input) Decision
}

// Immediate reboots as soon as an update is staged.
type Immediate struct{}

// Name implements Strategy.
func (Immediate) Name() string { return "immediate" }

// Decide implements Strategy: At = Now.
func (Immediate) Decide(in Input) Decision {
	return Decision{At: in.Now, Reason: "immediately"}
}

// Manual stages updates and leaves the reboot to the admin.
type Manual struct{}

// Name implements Strategy.
func (Manual) Name() string { return "manual" }

// Decide implements Strategy: never.
func (Manual) Decide(Input) Decision {
	return Decision{Never: true, Reason: "manual strategy: run 'speedia-update reboot'"}
}

// Periodic reboots inside maintenance windows.
type Periodic struct {
	Schedule window.Schedule
	MinGap   time.Duration // minimum time between two update reboots
	// Jitter is the largest random delay after a window opens, so that a
	// fleet with one schedule does not reboot all at once. It is clamped
	// to the window's length minus a minute.
	Jitter time.Duration
}

// Name implements Strategy.
func (Periodic) Name() string { return "periodic" }

// Decide implements Strategy. The earliest reboot is Now, or LastReboot +
// MinGap when that is later; it happens in the window open then or the
// next one, Offset × Jitter after the window opens, but never before the
// earliest time. For a fixed Offset, re-deciding at any Now before the
// planned time gives the same time (the daemon re-decides after clock
// jumps and postponements); once that time has passed inside the window,
// At = Now.
func (p Periodic) Decide(in Input) Decision {
	earliest := in.Now
	gapped := false
	if !in.LastReboot.IsZero() && p.MinGap > 0 {
		if g := in.LastReboot.Add(p.MinGap); g.After(earliest) {
			earliest, gapped = g, true
		}
	}
	start, end, ok := p.Schedule.Next(earliest)
	if !ok {
		if len(p.Schedule.Windows) == 0 {
			return Decision{Never: true, Reason: "no maintenance window configured: never rebooting by itself"}
		}
		return Decision{Never: true, Reason: fmt.Sprintf(
			"no maintenance window opens within 2 years after %s (schedule: %s)",
			earliest.In(p.location()).Format("Mon 2006-01-02 15:04"), p.Schedule)}
	}
	// Next returns a window with end > earliest, so the reboot always
	// fits into the window found.
	jitter := min(p.Jitter, end.Sub(start)-time.Minute)
	jitter = max(jitter, 0)
	// Whole seconds read better in logs and the CLI.
	delay := time.Duration(fraction(in.Offset) * float64(jitter)).Truncate(time.Second)
	at := start.Add(delay)
	if at.Before(earliest) {
		at = earliest
	}
	reason := "maintenance window " + span(start, end, p.location())
	if gapped {
		reason += fmt.Sprintf(", not before %s (min gap %s after the last update reboot)",
			earliest.In(p.location()).Format("Mon 2006-01-02 15:04:05"), p.MinGap)
	}
	return Decision{At: at.In(p.location()), Reason: reason}
}

func (p Periodic) location() *time.Location {
	if p.Schedule.Location == nil {
		return time.Local
	}
	return p.Schedule.Location
}

// fraction clamps f into [0,1); the daemon's random source should never
// need it.
func fraction(f float64) float64 {
	switch {
	case math.IsNaN(f) || f < 0:
		return 0
	case f >= 1:
		return math.Nextafter(1, 0)
	}
	return f
}

// span formats a window interval for admins: "Sun 03:00-05:00
// Europe/Berlin", "Sat 23:00-Sun 02:00 UTC".
func span(start, end time.Time, loc *time.Location) string {
	start, end = start.In(loc), end.In(loc)
	sy, sm, sd := start.Date()
	ey, em, ed := end.Date()
	endFmt := "Mon 15:04"
	switch {
	case sy == ey && sm == em && sd == ed:
		endFmt = "15:04"
	case end.Sub(start) >= 6*24*time.Hour:
		endFmt = "Mon 2006-01-02 15:04"
	}
	return start.Format("Mon 2006-01-02 15:04") + "-" + end.Format(endFmt) + " " + loc.String()
}
