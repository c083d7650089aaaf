package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on every string and list of the configuration. A value over its
// limit is refused like any other bad value: the file's problem names
// file, line and key, and the last good configuration stays in force.
const (
	// MaxWallMessage is the most bytes of reboot.wall_message: a few lines
	// for the logged-in users' terminals.
	MaxWallMessage = 4096
	// MaxPath is the most bytes of a path (Linux's PATH_MAX).
	MaxPath = 4096
	// MaxSocketPath is the most bytes of a unix socket's path: the kernel's
	// sun_path holds 108, with the terminating NUL.
	MaxSocketPath = 107
	// MaxName is the most bytes of a name or address: a unit name (systemd
	// allows 255), a time zone, a strategy, host:port.
	MaxName = 256
	// MaxShort is the most bytes of a duration, a set of days, a time of
	// day or a blackout range; the longest valid ones have fewer than 30.
	MaxShort = 64
	// MaxList is the most entries of any array (reboot.window,
	// reboot.blackout, health.critical_units).
	MaxList = 256
	// maxQuoted is the most characters of a bad value an error quotes.
	maxQuoted = 80
)

// quote is strconv.Quote of s cut to maxQuoted characters, with an
// ellipsis where it was cut: problems stay one readable line.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == maxQuoted {
			return strconv.Quote(s[:i] + "…")
		}
		n++
	}
	return strconv.Quote(s)
}

// stringLimit is the most bytes the string at key may have, and what such
// a string is, for the problem. Array indexes in key do not matter.
func stringLimit(key string) (int, string) {
	switch stripIndexes(key) {
	case "reboot.wall_message":
		return MaxWallMessage, "a wall message"
	case "health.dir":
		return MaxPath, "a path"
	case "metrics.socket", "containers.socket":
		return MaxSocketPath, "a unix socket path"
	case "reboot.window[].days":
		return MaxShort, "a set of days"
	case "reboot.window[].start":
		return MaxShort, "a time of day"
	case "reboot.blackout[]":
		return MaxShort, "a blackout range"
	case "health.critical_units[]":
		return MaxName, "a unit name"
	case "reboot.strategy":
		return MaxName, "a strategy"
	case "reboot.timezone":
		return MaxName, "a time zone"
	case "metrics.listen":
		return MaxName, "an address"
	}
	return MaxName, "a name"
}

// stripIndexes turns "reboot.window[1].days" into "reboot.window[].days".
func stripIndexes(key string) string {
	if !strings.Contains(key, "[") {
		return key
	}
	var b strings.Builder
	skip := false
	for _, r := range key {
		switch {
		case r == '[':
			skip = true
			b.WriteRune(r)
		case r == ']':
			skip = false
			b.WriteRune(r)
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// tooLong is the problem of s over max bytes, or "" when it fits.
func tooLong(s string, max int, what string) string {
	if len(s) <= max {
		return ""
	}
	return fmt.Sprintf("%s is %d bytes, too long for %s (keep it to at most %d bytes)", quote(s), len(s), what, max)
}

// tooMany is the problem of a list of n entries, or "" when it is short enough.
func tooMany(n int) string {
	if n <= MaxList {
		return ""
	}
	return fmt.Sprintf("has %d entries, too many (keep it to at most %d)", n, MaxList)
}

// fits records a problem and reports false when s at key is over its limit.
func (d *decoder) fits(key, s string) bool {
	max, what := stringLimit(key)
	return d.within(key, tooLong(s, max, what))
}

// fitsShort is fits for a duration, whatever its key.
func (d *decoder) fitsShort(key, s string) bool {
	return d.within(key, tooLong(s, MaxShort, "a duration"))
}

// fewEnough records a problem and reports false when a list at key is too long.
func (d *decoder) fewEnough(key string, n int) bool {
	return d.within(key, tooMany(n))
}

func (d *decoder) within(key, problem string) bool {
	if problem == "" {
		return true
	}
	d.errorf(key, "%s", problem)
	return false
}

// limits checks the strings and lists of a Config built in code or loaded,
// and returns the keys over their limit: Validate checks nothing else of
// them.
func (v *validator) limits(c Config) map[string]bool {
	over := map[string]bool{}
	str := func(key, s string) {
		max, what := stringLimit(key)
		if p := tooLong(s, max, what); p != "" {
			v.add(key, "%s", p)
			over[key] = true
		}
	}
	str("reboot.strategy", c.Reboot.Strategy)
	str("reboot.wall_message", c.Reboot.WallMessage)
	str("health.dir", c.Health.Dir)
	str("metrics.socket", c.Metrics.Socket)
	str("metrics.listen", c.Metrics.Listen)
	str("containers.socket", c.Containers.Socket)
	str("containers.patch", c.Containers.Patch)
	for _, l := range []struct {
		key string
		n   int
	}{{"reboot.window", len(c.Reboot.Schedule.Windows)}, {"health.critical_units", len(c.Health.CriticalUnits)}} {
		if p := tooMany(l.n); p != "" {
			v.add(l.key, "%s", p)
			over[l.key] = true
		}
	}
	for i, u := range c.Health.CriticalUnits {
		str(indexKey("health.critical_units", i), u)
	}
	return over
}
