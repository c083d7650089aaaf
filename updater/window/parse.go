package window

import (
	"strings"
	"time"
)

var fullDayNames = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// ParseDays reads a set of weekdays: "Sun", "Mon..Fri", "Sat,Sun",
// "Mon..Wed,Fri", "daily" or "*". Names are case-insensitive, three
// letters or in full; a range may wrap around the week ("Fri..Mon").
func ParseDays(s string) ([7]bool, error) {
	var days [7]bool
	t := strings.TrimSpace(s)
	if t == "" {
		return days, invalidf("no days given (use e.g. Mon..Fri, Sat,Sun or daily)")
	}
	if strings.EqualFold(t, "daily") || t == "*" {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	for _, item := range strings.Split(t, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return days, invalidf("empty item in days %q", s)
		}
		from, to, isRange := strings.Cut(item, "..")
		a, err := parseDay(from)
		if err != nil {
			return days, err
		}
		b := a
		if isRange {
			if b, err = parseDay(to); err != nil {
				return days, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (time.Weekday, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for d := range 7 {
		if t == strings.ToLower(dayNames[d]) || t == fullDayNames[d] {
			return time.Weekday(d), nil
		}
	}
	return 0, invalidf("unknown day %q (use Mon..Sun)", s)
}

// ParseClock reads a time of day "HH:MM" or "H:MM", 00:00..23:59.
func ParseClock(s string) (Clock, error) {
	t := strings.TrimSpace(s)
	hs, ms, ok := strings.Cut(t, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 {
		return 0, invalidf("time of day %q: use HH:MM, e.g. 03:00", s)
	}
	h, okh := digits(hs)
	m, okm := digits(ms)
	if !okh || !okm {
		return 0, invalidf("time of day %q: use HH:MM, e.g. 03:00", s)
	}
	if h > 23 || m > 59 {
		return 0, invalidf("time of day %q: out of range 00:00..23:59", s)
	}
	return Clock(h*60 + m), nil
}

// ParseDate reads a calendar day "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t := strings.TrimSpace(s)
	bad := invalidf("date %q: use YYYY-MM-DD, e.g. 2026-12-24", s)
	if len(t) != 10 || t[4] != '-' || t[7] != '-' {
		return Date{}, bad
	}
	y, oky := digits(t[:4])
	m, okm := digits(t[5:7])
	d, okd := digits(t[8:])
	if !oky || !okm || !okd {
		return Date{}, bad
	}
	date := Date{y, time.Month(m), d}
	if !date.Valid() {
		return Date{}, invalidf("date %q: no such day", s)
	}
	return date, nil
}

// MaxBlackoutDays is the longest range ParseBlackout accepts.
const MaxBlackoutDays = 366

// ParseBlackout reads one blackout day "2026-12-24" or an inclusive range
// "2026-12-24..2027-01-01" of at most MaxBlackoutDays days, in order.
func ParseBlackout(s string) ([]Date, error) {
	from, to, isRange := strings.Cut(s, "..")
	a, err := ParseDate(from)
	if err != nil {
		return nil, err
	}
	if !isRange {
		return []Date{a}, nil
	}
	b, err := ParseDate(to)
	if err != nil {
		return nil, err
	}
	n := b.num() - a.num() + 1
	switch {
	case n < 1:
		return nil, invalidf("blackout %q: ends before it starts", s)
	case n > MaxBlackoutDays:
		return nil, invalidf("blackout %q: %d days, more than %d", s, n, MaxBlackoutDays)
	}
	days := make([]Date, 0, n)
	for i := range n {
		days = append(days, civil(a.num()+i))
	}
	return days, nil
}

// ParseWindow reads a window as Window.String writes it: days, start and
// length, e.g. "Sun 03:00 +2h", "Mon..Fri 22:30 +90m", "Sat, Sun 1:00 3h".
func ParseWindow(s string) (Window, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return Window{}, invalidf("window %q: use DAYS HH:MM +LENGTH, e.g. \"Sun 03:00 +2h\"", s)
	}
	days, err := ParseDays(strings.Join(f[:len(f)-2], " "))
	if err != nil {
		return Window{}, err
	}
	start, err := ParseClock(f[len(f)-2])
	if err != nil {
		return Window{}, err
	}
	length, err := time.ParseDuration(strings.TrimPrefix(f[len(f)-1], "+"))
	if err != nil {
		return Window{}, invalidf("window %q: length %q: use e.g. +2h or +90m", s, f[len(f)-1])
	}
	w := Window{Days: days, Start: start, Length: length}
	if err := w.Validate(); err != nil {
		return Window{}, err
	}
	return w, nil
}

// digits reads a non-empty string of ASCII digits (no sign, no spaces).
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
