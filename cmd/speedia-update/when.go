package main

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// parseTime reads a point in time given on the command line, relative to
// now in loc: RFC 3339; "YYYY-MM-DD HH:MM" local; "HH:MM" local, today or
// else tomorrow; "+DURATION" from now. It must lie in the future.
func parseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	var t time.Time
	switch {
	case strings.HasPrefix(s, "+"):
		d, err := parseDuration(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		t = now.Add(d)
	case clockRE.MatchString(s):
		h, _ := strconv.Atoi(clockRE.FindStringSubmatch(s)[1])
		m, _ := strconv.Atoi(clockRE.FindStringSubmatch(s)[2])
		if h > 23 || m > 59 {
			return time.Time{}, usagef("not a time of day (00:00 to 23:59)")
		}
		n := now.In(loc)
		t = time.Date(n.Year(), n.Month(), n.Day(), h, m, 0, 0, loc)
		if !t.After(now) {
			t = time.Date(n.Year(), n.Month(), n.Day()+1, h, m, 0, 0, loc)
		}
	default:
		var err error
		t, err = time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.ParseInLocation("2006-01-02 15:04", s, loc)
		}
		if err != nil {
			return time.Time{}, usagef("not a time: use RFC 3339 (2026-11-29T03:00:00+01:00), \"2026-11-29 03:00\", \"HH:MM\" or \"+30m\"")
		}
	}
	if !t.After(now) {
		return time.Time{}, usagef("%s is in the past", t.In(loc).Format("2006-01-02 15:04 MST"))
	}
	return t, nil
}

// parseUntil is parseTime that also takes a bare duration ("3d", "12h").
func parseUntil(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if durationRE.MatchString(s) {
		d, err := parseDuration(s)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d), nil
	}
	return parseTime(s, now, loc)
}

var (
	clockRE    = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})$`)
	durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(w|d|h|m|s|ms))+$`)
	daysRE     = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?)(w|d)`)
)

// parseDuration is time.ParseDuration plus days (d: 24h) and weeks (w: 7d).
// It must be positive.
func parseDuration(s string) (time.Duration, error) {
	if !durationRE.MatchString(s) {
		return 0, usagef("not a duration (e.g. 30m, 12h, 3d, 1w2d)")
	}
	var total time.Duration
	rest := daysRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := daysRE.FindStringSubmatch(m)
		f, _ := strconv.ParseFloat(sub[1], 64)
		unit := 24 * time.Hour
		if sub[2] == "w" {
			unit *= 7
		}
		total += time.Duration(f * float64(unit))
		return ""
	})
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, usageError{msg: "not a duration: " + err.Error(), err: err}
		}
		total += d
	}
	if total <= 0 {
		return 0, usagef("not a positive duration")
	}
	return total, nil
}
