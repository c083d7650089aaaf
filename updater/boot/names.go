package boot

import (
	"strconv"
	"strings"
)

const (
	entryPrefix = "speedia-"
	entrySuffix = ".conf"
)

// entryName is a parsed entry file name: speedia-N[+LEFT[-DONE]].conf.
type entryName struct {
	Snapshot int
	Left     int // tries left; -1: no counter
	Done     int // failed tries so far
}

func (n entryName) String() string {
	s := entryPrefix + strconv.Itoa(n.Snapshot)
	switch {
	case n.Left < 0:
	case n.Done == 0:
		s += "+" + strconv.Itoa(n.Left)
	default:
		s += "+" + strconv.Itoa(n.Left) + "-" + strconv.Itoa(n.Done)
	}
	return s + entrySuffix
}

func (n entryName) state() State {
	switch {
	case n.Left < 0:
		return StateGood
	case n.Left == 0:
		return StateBad
	}
	return StateIndeterminate
}

// parseEntryName reports whether name is one of our entries, and parses it.
// Like systemd-boot, the counter follows the last '+' and must run up to the
// suffix, or it is no counter; the suffix and prefix match in any case, as
// on FAT and in systemd-boot's glob.
func parseEntryName(name string) (entryName, bool) {
	if len(name) < len(entrySuffix) || !strings.EqualFold(name[len(name)-len(entrySuffix):], entrySuffix) {
		return entryName{}, false
	}
	base := name[:len(name)-len(entrySuffix)]
	n := entryName{Left: -1}
	if i := strings.LastIndexByte(base, '+'); i >= 0 {
		if left, done, ok := parseCounter(base[i+1:]); ok {
			n.Left, n.Done, base = left, done, base[:i]
		}
	}
	if len(base) <= len(entryPrefix) || !strings.EqualFold(base[:len(entryPrefix)], entryPrefix) {
		return entryName{}, false
	}
	num := base[len(entryPrefix):]
	snap, err := strconv.Atoi(num)
	// Canonical numbers only: we never write "05" or "+5".
	if err != nil || snap <= 0 || strconv.Itoa(snap) != num {
		return entryName{}, false
	}
	n.Snapshot = snap
	return n, true
}

// parseCounter parses "LEFT" or "LEFT-DONE".
func parseCounter(s string) (left, done int, ok bool) {
	l, d, hasDone := strings.Cut(s, "-")
	if left, ok = parseCount(l); !ok {
		return 0, 0, false
	}
	if hasDone {
		if done, ok = parseCount(d); !ok {
			return 0, 0, false
		}
	}
	return left, done, true
}

func parseCount(s string) (int, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 31) // systemd-boot rejects > INT_MAX
	return int(n), err == nil
}
