// Package window is pure calendar arithmetic for maintenance windows: when
// may the host reboot, given the time passed in. No clocks, no I/O.
package window

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every parse and validation error of this package.
var ErrInvalid = errors.New("invalid maintenance window")

// MaxLength is the longest window Validate and ParseWindow accept: a week.
// Anything longer would overlap the same window of the next week.
const MaxLength = 7 * 24 * time.Hour

// Clock is a time of day, in minutes after local midnight (0..1439).
type Clock int

// Valid reports whether c is a time of day (00:00..23:59).
func (c Clock) Valid() bool { return c >= 0 && c < 24*60 }

// Hour is the hour of c (0..23).
func (c Clock) Hour() int { return int(c) / 60 }

// Minute is the minute of c within its hour (0..59).
func (c Clock) Minute() int { return int(c) % 60 }

// String formats c as "HH:MM", which ParseClock reads back.
func (c Clock) String() string {
	if !c.Valid() {
		return fmt.Sprintf("Clock(%d)", int(c))
	}
	return fmt.Sprintf("%02d:%02d", c.Hour(), c.Minute())
}

// Window is one recurring maintenance window: on each of Days, starting at
// Start local time, lasting Length (an absolute duration; it may cross
// midnight, and then it belongs to the day it starts on).
type Window struct {
	Days   [7]bool // indexed by time.Weekday
	Start  Clock
	Length time.Duration
}

// String formats w as "Sun 03:00 +2h0m0s", which ParseWindow reads back.
func (w Window) String() string {
	return FormatDays(w.Days) + " " + w.Start.String() + " +" + w.Length.String()
}

// Validate reports why w can never be used as written.
func (w Window) Validate() error {
	switch {
	case w.Days == [7]bool{}:
		return invalidf("%q: no days", w.String())
	case !w.Start.Valid():
		return invalidf("%q: start is not a time of day", w.String())
	case w.Length <= 0:
		return invalidf("%q: length must be positive", w.String())
	case w.Length > MaxLength:
		return invalidf("%q: length over a week (%s)", w.String(), MaxLength)
	}
	return nil
}

// Date is a local calendar day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String formats d as "2006-01-02", which ParseDate reads back.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Valid reports whether d is a day of the proleptic Gregorian calendar in
// the years 1..9999.
func (d Date) Valid() bool {
	if d.Year < 1 || d.Year > 9999 || d.Month < time.January || d.Month > time.December || d.Day < 1 {
		return false
	}
	return d.Day <= daysIn(d.Year, d.Month)
}

// Weekday is the day of the week of d.
func (d Date) Weekday() time.Weekday { return weekday(d.num()) }

// AddDays returns the day n days after d (before it, for negative n).
func (d Date) AddDays(n int) Date { return civil(d.num() + int64(n)) }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	a, b := d.num(), e.num()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// num is the day number of d: days since 1970-01-01.
func (d Date) num() int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
}

// Schedule is the set of windows of one host, in one time zone, minus the
// blackout days (local calendar days on which no window is open).
type Schedule struct {
	Windows   []Window
	Location  *time.Location
	Blackouts []Date
}

// Validate reports the first window or blackout day that cannot be used.
func (s Schedule) Validate() error {
	for i, w := range s.Windows {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("window %d: %w", i+1, err)
		}
	}
	for _, d := range s.Blackouts {
		if !d.Valid() {
			return invalidf("blackout day %s is not a calendar day", d)
		}
	}
	return nil
}

// String describes s for admins, e.g.
// "Sat,Sun 03:00 +2h0m0s (Europe/Berlin); blackout 2026-12-24..2027-01-01".
func (s Schedule) String() string {
	var b strings.Builder
	if len(s.Windows) == 0 {
		b.WriteString("no windows")
	}
	for i, w := range s.Windows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(w.String())
	}
	fmt.Fprintf(&b, " (%s)", s.location())
	if len(s.Blackouts) > 0 {
		b.WriteString("; blackout ")
		b.WriteString(FormatBlackouts(s.Blackouts))
	}
	return b.String()
}

func (s Schedule) location() *time.Location {
	if s.Location == nil {
		return time.Local
	}
	return s.Location
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// FormatDays formats a set of weekdays the way ParseDays reads them:
// "daily", "Mon..Fri", "Sat,Sun", "Fri..Mon", "Mon..Wed,Fri"; "none" for
// the empty set (which ParseDays rejects).
func FormatDays(days [7]bool) string {
	n := 0
	for _, on := range days {
		if on {
			n++
		}
	}
	switch n {
	case 0:
		return "none"
	case 7:
		return "daily"
	}
	// Ranges of three days or more (which may wrap around the week) are
	// written as ranges; everything is listed in the order an admin reads
	// a week, Monday first.
	var items [7]string
	var covered [7]bool
	for d := range 7 {
		if !days[d] || days[(d+6)%7] {
			continue
		}
		last, length := d, 1
		for days[(last+1)%7] {
			last = (last + 1) % 7
			length++
		}
		if length >= 3 {
			items[(d+6)%7] = dayNames[d] + ".." + dayNames[last]
			for i, x := 0, d; i < length; i, x = i+1, (x+1)%7 {
				covered[x] = true
			}
		}
	}
	for d := range 7 {
		if days[d] && !covered[d] {
			items[(d+6)%7] = dayNames[d]
		}
	}
	var parts []string
	for _, it := range items {
		if it != "" {
			parts = append(parts, it)
		}
	}
	return strings.Join(parts, ",")
}

// FormatBlackouts formats days as a sorted list of single days and
// ranges, e.g. "2026-05-01, 2026-12-24..2027-01-01"; each item is
// accepted by ParseBlackout.
func FormatBlackouts(days []Date) string {
	nums := make([]int64, 0, len(days))
	for _, d := range days {
		nums = append(nums, d.num())
	}
	slices.Sort(nums)
	nums = slices.Compact(nums)
	var parts []string
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, civil(nums[i]).String())
		} else {
			parts = append(parts, civil(nums[i]).String()+".."+civil(nums[j]).String())
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// invalidError carries a message written for admins and wraps ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

const secondsPerDay = 24 * 60 * 60

// civil is the calendar day of day number n.
func civil(n int64) Date {
	y, m, d := time.Unix(n*secondsPerDay, 0).UTC().Date()
	return Date{y, m, d}
}

// weekday of day number n; 1970-01-01 was a Thursday.
func weekday(n int64) time.Weekday {
	return time.Weekday(((n+4)%7 + 7) % 7)
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
