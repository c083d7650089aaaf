package window

import (
	"testing"
	"time"
	_ "time/tzdata" // the same zone rules on every machine
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func ts(t testing.TB, s string) time.Time {
	t.Helper()
	x, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func win(t testing.TB, s string) Window {
	t.Helper()
	w, err := ParseWindow(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func sched(t testing.TB, zone string, windows []string, blackouts ...string) Schedule {
	t.Helper()
	s := Schedule{Location: mustLoad(t, zone)}
	for _, w := range windows {
		s.Windows = append(s.Windows, win(t, w))
	}
	for _, b := range blackouts {
		ds, err := ParseBlackout(b)
		if err != nil {
			t.Fatal(err)
		}
		s.Blackouts = append(s.Blackouts, ds...)
	}
	return s
}

// 2026: Jan 1 is a Thursday, Jan 3 a Saturday, Dec 31 a Thursday. DST
// changes: Europe/Berlin Mar 29 02:00->03:00, Oct 25 03:00->02:00;
// America/New_York Mar 8 02:00->03:00, Nov 1 02:00->01:00; Pacific/Chatham
// Apr 5 03:45->02:45, Sep 27 02:45->03:45. Asia/Kolkata has no DST.
func TestNext(t *testing.T) {
	tests := []struct {
		name       string
		zone       string
		windows    []string
		blackouts  []string
		at         string
		start, end string // empty: ok=false
	}{
		{"before the window", "UTC", []string{"Sun 03:00 +2h"}, nil,
			"2026-01-03T12:00:00Z", "2026-01-04T03:00:00Z", "2026-01-04T05:00:00Z"},
		{"at the start", "UTC", []string{"Sun 03:00 +2h"}, nil,
			"2026-01-04T03:00:00Z", "2026-01-04T03:00:00Z", "2026-01-04T05:00:00Z"},
		{"inside: start lies before t", "UTC", []string{"Sun 03:00 +2h"}, nil,
			"2026-01-04T04:59:59Z", "2026-01-04T03:00:00Z", "2026-01-04T05:00:00Z"},
		{"at the end: next week", "UTC", []string{"Sun 03:00 +2h"}, nil,
			"2026-01-04T05:00:00Z", "2026-01-11T03:00:00Z", "2026-01-11T05:00:00Z"},
		{"after the last window of the week", "UTC", []string{"Mon 03:00 +1h", "Wed 03:00 +1h"}, nil,
			"2026-01-07T05:00:00Z", "2026-01-12T03:00:00Z", "2026-01-12T04:00:00Z"},
		{"multiple windows: the earliest next", "UTC", []string{"Wed 03:00 +1h", "Mon 03:00 +1h"}, nil,
			"2026-01-05T04:00:00Z", "2026-01-07T03:00:00Z", "2026-01-07T04:00:00Z"},
		{"midnight crossing contains Sun 01:00", "UTC", []string{"Sat 23:00 +3h"}, nil,
			"2026-01-04T01:00:00Z", "2026-01-03T23:00:00Z", "2026-01-04T02:00:00Z"},
		{"overlapping windows merge", "UTC", []string{"Sat 03:00 +2h", "Sat 04:00 +2h"}, nil,
			"2026-01-03T04:30:00Z", "2026-01-03T03:00:00Z", "2026-01-03T06:00:00Z"},
		{"adjacent windows merge", "UTC", []string{"Sat 04:00 +1h", "Sat 03:00 +1h"}, nil,
			"2026-01-01T00:00:00Z", "2026-01-03T03:00:00Z", "2026-01-03T05:00:00Z"},
		{"one window inside another", "UTC", []string{"Sat 01:00 +6h", "Sat 02:00 +1h"}, nil,
			"2026-01-03T02:30:00Z", "2026-01-03T01:00:00Z", "2026-01-03T07:00:00Z"},
		{"year boundary: window crossing into the new year", "UTC", []string{"Thu 22:00 +4h"}, nil,
			"2026-12-31T12:00:00Z", "2026-12-31T22:00:00Z", "2027-01-01T02:00:00Z"},
		{"year boundary: next window in the new year", "UTC", []string{"Fri 01:00 +1h"}, nil,
			"2026-12-31T12:00:00Z", "2027-01-01T01:00:00Z", "2027-01-01T02:00:00Z"},
		{"Berlin: local start", "Europe/Berlin", []string{"Sun 03:00 +2h"}, nil,
			"2026-01-01T00:00:00Z", "2026-01-04T03:00:00+01:00", "2026-01-04T05:00:00+01:00"},
		{"Berlin: summer time", "Europe/Berlin", []string{"Sun 03:00 +2h"}, nil,
			"2026-07-01T00:00:00Z", "2026-07-05T03:00:00+02:00", "2026-07-05T05:00:00+02:00"},
		{"Berlin spring forward: 02:30 starts at the end of the gap", "Europe/Berlin", []string{"Sun 02:30 +1h"}, nil,
			"2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"},
		{"Berlin fall back: 02:30 is its first occurrence, length absolute", "Europe/Berlin", []string{"Sun 02:30 +1h"}, nil,
			"2026-10-24T12:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"},
		{"Berlin fall back: window over the change is 1h longer on the wall", "Europe/Berlin", []string{"Sun 01:00 +3h"}, nil,
			"2026-10-24T12:00:00+02:00", "2026-10-25T01:00:00+02:00", "2026-10-25T03:00:00+01:00"},
		{"Berlin spring forward: window over the change", "Europe/Berlin", []string{"Sun 01:00 +3h"}, nil,
			"2026-03-28T12:00:00+01:00", "2026-03-29T01:00:00+01:00", "2026-03-29T05:00:00+02:00"},
		{"New York spring forward 02:30", "America/New_York", []string{"Sun 02:30 +1h"}, nil,
			"2026-03-07T12:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"},
		{"New York fall back 02:30 is not ambiguous there", "America/New_York", []string{"Sun 02:30 +1h"}, nil,
			"2026-10-31T12:00:00-04:00", "2026-11-01T02:30:00-05:00", "2026-11-01T03:30:00-05:00"},
		{"New York fall back 01:30: first occurrence", "America/New_York", []string{"Sun 01:30 +1h"}, nil,
			"2026-10-31T12:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"},
		{"Chatham spring forward 03:00 (gap 02:45..03:45)", "Pacific/Chatham", []string{"Sun 03:00 +1h"}, nil,
			"2026-09-26T12:00:00+12:45", "2026-09-27T03:45:00+13:45", "2026-09-27T04:45:00+13:45"},
		{"Chatham fall back 03:00: first occurrence", "Pacific/Chatham", []string{"Sun 03:00 +1h"}, nil,
			"2026-04-04T12:00:00+13:45", "2026-04-05T03:00:00+13:45", "2026-04-05T03:00:00+12:45"},
		{"Kolkata: half-hour zone", "Asia/Kolkata", []string{"Mon..Fri 01:00 +2h"}, nil,
			"2026-01-01T00:00:00Z", "2026-01-02T01:00:00+05:30", "2026-01-02T03:00:00+05:30"},
		{"Kolkata: Sat,Sun", "Asia/Kolkata", []string{"Sat,Sun 04:00 +1h"}, nil,
			"2026-01-03T23:00:00Z", "2026-01-04T04:00:00+05:30", "2026-01-04T05:00:00+05:30"},
		{"blackout day skips the window", "UTC", []string{"Sun 03:00 +1h"}, []string{"2026-01-04"},
			"2026-01-01T00:00:00Z", "2026-01-11T03:00:00Z", "2026-01-11T04:00:00Z"},
		{"blackout range skips weeks", "UTC", []string{"Sun 03:00 +1h"}, []string{"2026-01-01..2026-01-15"},
			"2026-01-01T00:00:00Z", "2026-01-18T03:00:00Z", "2026-01-18T04:00:00Z"},
		{"window crossing into a blackout day is cut at midnight", "UTC", []string{"Sat 23:00 +3h"}, []string{"2026-01-04"},
			"2026-01-03T12:00:00Z", "2026-01-03T23:00:00Z", "2026-01-04T00:00:00Z"},
		{"window crossing out of a blackout day keeps the part after", "UTC", []string{"Sat 23:00 +3h"}, []string{"2026-01-03"},
			"2026-01-03T12:00:00Z", "2026-01-04T00:00:00Z", "2026-01-04T02:00:00Z"},
		{"blackout days are local days", "Europe/Berlin", []string{"Sat 23:00 +3h"}, []string{"2026-01-04"},
			"2026-01-03T12:00:00Z", "2026-01-03T23:00:00+01:00", "2026-01-04T00:00:00+01:00"},
		{"long window with a blackout day in the middle", "UTC", []string{"Fri 00:00 +72h"}, []string{"2026-01-03"},
			"2026-01-03T12:00:00Z", "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z"},
		{"no windows", "UTC", nil, nil, "2026-01-01T00:00:00Z", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sched(t, tt.zone, tt.windows, tt.blackouts...)
			at := ts(t, tt.at)
			start, end, ok := s.Next(at)
			if tt.start == "" {
				if ok {
					t.Fatalf("Next(%s) = %s..%s, want none", at, start, end)
				}
				return
			}
			if !ok || !start.Equal(ts(t, tt.start)) || !end.Equal(ts(t, tt.end)) {
				t.Fatalf("Next(%s) = %s..%s (%v), want %s..%s", at, start, end, ok, tt.start, tt.end)
			}
			if start.Location() != s.Location {
				t.Errorf("start is in %v, want %v", start.Location(), s.Location)
			}
			if got, want := s.Contains(at), !start.After(at); got != want {
				t.Errorf("Contains(%s) = %v, want %v", at, got, want)
			}
			if s.Contains(end) {
				t.Errorf("Contains(end %s) = true", end)
			}
			if !s.Contains(start) || !s.Contains(end.Add(-time.Second)) {
				t.Errorf("Contains is false inside %s..%s", start, end)
			}
			if s.Contains(start.Add(-time.Second)) {
				t.Errorf("Contains(just before start %s) = true", start)
			}
		})
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		name    string
		zone    string
		windows []string
		black   []string
		at      string
		want    bool
	}{
		{"Sat 23:00 +3h contains Sun 01:00", "UTC", []string{"Sat 23:00 +3h"}, nil, "2026-01-04T01:00:00Z", true},
		{"Sat 23:00 +3h ends Sun 02:00", "UTC", []string{"Sat 23:00 +3h"}, nil, "2026-01-04T02:00:00Z", false},
		{"Sat 23:00 +3h not Fri 23:30", "UTC", []string{"Sat 23:00 +3h"}, nil, "2026-01-02T23:30:00Z", false},
		{"in local time, not UTC", "Europe/Berlin", []string{"Sun 03:00 +1h"}, nil, "2026-01-04T03:30:00Z", false},
		{"in local time", "Europe/Berlin", []string{"Sun 03:00 +1h"}, nil, "2026-01-04T02:30:00Z", true},
		{"Berlin fall back: second 02:45 is after the window", "Europe/Berlin", []string{"Sun 02:30 +1h"}, nil, "2026-10-25T02:45:00+01:00", false},
		{"Berlin fall back: first 02:45 is inside", "Europe/Berlin", []string{"Sun 02:30 +1h"}, nil, "2026-10-25T02:45:00+02:00", true},
		{"Berlin spring forward: 01:59 CET not yet", "Europe/Berlin", []string{"Sun 02:30 +1h"}, nil, "2026-03-29T01:59:00+01:00", false},
		{"blackout cuts the part on the blackout day", "UTC", []string{"Sat 23:00 +3h"}, []string{"2026-01-04"}, "2026-01-04T01:00:00Z", false},
		{"blackout keeps the part before", "UTC", []string{"Sat 23:00 +3h"}, []string{"2026-01-04"}, "2026-01-03T23:30:00Z", true},
		{"overlap of a blacked-out window with another", "UTC", []string{"Sat 23:00 +3h", "Sun 01:00 +1h"}, []string{"2026-01-03"}, "2026-01-04T01:30:00Z", true},
		{"Kolkata +05:30", "Asia/Kolkata", []string{"daily 00:00 +30m"}, nil, "2026-06-30T18:45:00Z", true},
		{"Chatham +12:45", "Pacific/Chatham", []string{"daily 00:00 +30m"}, nil, "2026-06-30T11:30:00Z", true},
		{"Chatham +12:45, just after", "Pacific/Chatham", []string{"daily 00:00 +30m"}, nil, "2026-06-30T11:45:00Z", false},
		{"no windows", "UTC", nil, nil, "2026-01-01T00:00:00Z", false},
	}
	for _, tt := range tests {
		s := sched(t, tt.zone, tt.windows, tt.black...)
		if got := s.Contains(ts(t, tt.at)); got != tt.want {
			t.Errorf("%s: Contains(%s) = %v, want %v", tt.name, tt.at, got, tt.want)
		}
	}
}

func TestAlwaysOpen(t *testing.T) {
	tests := []struct{ zone, window string }{
		{"UTC", "daily 12:00 +24h"},
		{"UTC", "Mon 00:00 +168h"},
		{"UTC", "Mon,Thu 00:00 +96h"},
		{"Europe/Berlin", "daily 12:00 +25h"}, // a fall-back day lasts 25h
		{"Europe/Berlin", "Mon,Thu 00:00 +97h"},
	}
	for _, tt := range tests {
		s := sched(t, tt.zone, []string{tt.window})
		at := ts(t, "2026-10-25T02:30:00+01:00")
		start, end, ok := s.Next(at)
		if !ok || start.After(at) || end.Sub(at) < Horizon || at.Sub(start) < Horizon-8*24*time.Hour {
			t.Errorf("%s: Next = %s..%s, %v; want an interval around t as long as the horizon", tt.window, start, end, ok)
		}
		for _, x := range []string{"2026-03-29T01:59:59+01:00", "2026-03-29T03:00:00+02:00", "2026-10-25T02:00:00+01:00", "2027-01-01T00:00:00Z"} {
			if !s.Contains(ts(t, x)) {
				t.Errorf("%s: Contains(%s) = false", tt.window, x)
			}
		}
	}
	// A week minus a second leaves a gap of one second a week.
	s := sched(t, "UTC", []string{"Mon 00:00 +167h59m59s"})
	if s.Contains(ts(t, "2026-01-11T23:59:59Z")) {
		t.Errorf("the one-second gap is open")
	}
}

// Lengths are absolute: 24h from 12:00 on the day before a fall-back
// change ends at 11:00 on the wall clock, leaving an hour closed.
func TestDailyWindowOverFallBack(t *testing.T) {
	s := sched(t, "Europe/Berlin", []string{"daily 12:00 +24h"})
	start, end, ok := s.Next(ts(t, "2026-10-25T11:30:00+01:00"))
	if !ok || !start.Equal(ts(t, "2026-10-25T12:00:00+01:00")) {
		t.Errorf("Next = %s..%s, %v; want the window of Oct 25 12:00", start, end, ok)
	}
	start, end, ok = s.Next(ts(t, "2026-10-25T10:30:00+01:00"))
	if !ok || !end.Equal(ts(t, "2026-10-25T11:00:00+01:00")) || !start.Equal(ts(t, "2025-10-26T12:00:00+01:00")) {
		// Spring forward made the day 23h long, so from Mar 29 the
		// windows overlap; the previous gap was at last year's fall back.
		t.Errorf("Next = %s..%s, %v", start, end, ok)
	}
}

func TestNothingWithinHorizon(t *testing.T) {
	s := sched(t, "UTC", []string{"Sun 03:00 +1h"})
	// Every Sunday of the next three years is a blackout day.
	for d := (Date{2026, 1, 4}); d.Year < 2029; d = d.AddDays(7) {
		s.Blackouts = append(s.Blackouts, d)
	}
	if start, end, ok := s.Next(ts(t, "2026-01-01T00:00:00Z")); ok {
		t.Errorf("Next = %s..%s, want none within the horizon", start, end)
	}
	// Once the blackouts end it is found again.
	start, _, ok := s.Next(ts(t, "2028-06-01T00:00:00Z"))
	if !ok || !start.Equal(ts(t, "2029-01-07T03:00:00Z")) {
		t.Errorf("Next = %s, %v; want the first Sunday of 2029", start, ok)
	}
}

// Unusable windows (as a Schedule built without Validate may hold) never
// open; the others still do.
func TestUnusableWindowsIgnored(t *testing.T) {
	s := Schedule{Location: time.UTC, Windows: []Window{
		{Days: days(), Start: 0, Length: time.Hour},
		{Days: allDays, Start: -5, Length: time.Hour},
		{Days: allDays, Start: 1440, Length: time.Hour},
		{Days: allDays, Start: 0, Length: -time.Hour},
		{Days: days(time.Sunday), Start: 180, Length: time.Hour},
	}}
	start, end, ok := s.Next(ts(t, "2026-01-01T00:00:00Z"))
	if !ok || !start.Equal(ts(t, "2026-01-04T03:00:00Z")) || !end.Equal(ts(t, "2026-01-04T04:00:00Z")) {
		t.Errorf("Next = %s..%s, %v", start, end, ok)
	}
}

// The local calendar beats any single rule: compare Contains with a
// brute-force reading of the definition every 5 minutes over DST weekends.
func TestContainsMatchesDefinition(t *testing.T) {
	cases := []struct {
		zone string
		from string
	}{
		{"Europe/Berlin", "2026-03-27T00:00:00Z"},
		{"Europe/Berlin", "2026-10-23T00:00:00Z"},
		{"America/New_York", "2026-03-06T00:00:00Z"},
		{"America/New_York", "2026-10-30T00:00:00Z"},
		{"Pacific/Chatham", "2026-04-03T00:00:00Z"},
		{"Pacific/Chatham", "2026-09-25T00:00:00Z"},
		{"Asia/Kolkata", "2026-12-30T00:00:00Z"},
	}
	windows := []string{"Sun 02:30 +1h", "Sat 23:00 +3h", "Sun 01:00 +2h", "Sun 03:00 +30m", "Sun 02:45 +1h"}
	for _, c := range cases {
		s := sched(t, c.zone, windows, "2026-01-01", "2026-04-04", "2026-10-31")
		ref := newRef(s)
		from := ts(t, c.from)
		for x := from; x.Before(from.Add(96 * time.Hour)); x = x.Add(5 * time.Minute) {
			if got, want := s.Contains(x), ref.open(x); got != want {
				t.Errorf("%s: Contains(%s) = %v, definition says %v", c.zone, x.In(s.Location), got, want)
			}
		}
	}
}

// ref is the definition read literally: x is open when some window started
// at most 9 days before x's day and has not ended, and x's local day is not
// a blackout day. A start is the first instant whose local wall clock reads
// the start time or later on that day (which covers gaps and ambiguity).
type ref struct {
	s      Schedule
	starts map[[2]int64]time.Time // memo: (day, clock) -> start
}

func newRef(s Schedule) *ref { return &ref{s: s, starts: map[[2]int64]time.Time{}} }

func (r *ref) open(x time.Time) bool {
	loc := r.s.location()
	lx := x.In(loc)
	xd := Date{lx.Year(), lx.Month(), lx.Day()}
	for _, b := range r.s.Blackouts {
		if b == xd {
			return false
		}
	}
	for k := 0; k <= 9; k++ {
		d := xd.AddDays(-k)
		for _, w := range r.s.Windows {
			if w.Days == [7]bool{} || !w.Start.Valid() || w.Length <= 0 || !w.Days[d.Weekday()] {
				continue
			}
			start := r.start(loc, d, w.Start)
			if !x.Before(start) && x.Before(start.Add(min(w.Length, effectiveMax))) {
				return true
			}
		}
	}
	return false
}

func (r *ref) start(loc *time.Location, d Date, c Clock) time.Time {
	key := [2]int64{d.num(), int64(c)}
	if u, ok := r.starts[key]; ok {
		return u
	}
	want := time.Date(d.Year, d.Month, d.Day, c.Hour(), c.Minute(), 0, 0, time.UTC)
	wall := func(u time.Time) time.Time {
		l := u.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	}
	u := want.Add(-15 * time.Hour)
	for wall(u.Add(time.Minute)).Before(want) {
		u = u.Add(time.Minute)
	}
	for wall(u).Before(want) {
		u = u.Add(time.Second)
	}
	r.starts[key] = u
	return u
}
