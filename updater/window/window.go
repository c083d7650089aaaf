// Package window is pure calendar arithmetic for maintenance windows: when
// may the host reboot, given the time passed in. No clocks, no I/O.
package window

import "time"

// Clock is a time of day, in minutes after local midnight (0..1439).
type Clock int

// Window is one recurring maintenance window: on each of Days, starting at
// Start local time, lasting Length (an absolute duration; it may cross
// midnight, and then it belongs to the day it starts on).
type Window struct {
	Days   [7]bool // indexed by time.Weekday
	Start  Clock
	Length time.Duration
}

// Date is a local calendar day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Schedule is the set of windows of one host, in one time zone, minus the
// blackout days (local calendar days on which no window is open).
type Schedule struct {
	Windows   []Window
	Location  *time.Location
	Blackouts []Date
}
