package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error is one problem in the configuration, e.g.
//
//	/etc/speedia/update.toml:12: reboot.window[1].start: "25:00" is not a time of day (use HH:MM, 00:00-23:59)
//
// Load and LoadGood return every problem, as errors.Join of *Error.
type Error struct {
	File   string // "" only for Validate on a Config built in code
	Line   int    // 1-based; 0 = the whole file
	Column int    // 1-based; only TOML syntax errors carry one
	Key    string // e.g. "reboot.window[1].start" (array indexes from 0); may be ""
	Msg    string
	err    error // cause, for errors.Is/As (fs errors, toml.ParseError, window.ErrInvalid)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Problems lists the *Error values in err, in the order Load reports them.
func Problems(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

func join(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// suggest returns the candidate closest to key (compared by last path
// segment, ignoring case and -/_; same parent breaks ties), or "" when
// none is close enough to be a plausible typo.
func suggest(key string, candidates []string) string {
	parent, leaf := splitKey(key)
	leaf = normalize(leaf)
	best, bestDist, bestOther := "", 0, true
	for _, c := range candidates {
		cp, cl := splitKey(c)
		d := distance(leaf, normalize(cl))
		other := cp != parent
		if best == "" || d < bestDist || d == bestDist && bestOther && !other {
			best, bestDist, bestOther = c, d, other
		}
	}
	limit := 1
	switch n := len(leaf); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	if best == "" || bestDist > limit || best == key {
		return ""
	}
	return best
}

func normalize(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "-", "_")
}

// splitKey splits "a.b[2].c" into "a.b[2]" and "c"; "a" into "" and "a".
func splitKey(key string) (parent, leaf string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 && !strings.HasSuffix(key, `"`) {
		return key[:i], key[i+1:]
	}
	return "", key
}

// distance is the Levenshtein distance of a and b, by bytes: keys are ASCII.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // nobody mistypes a key that badly; keep the cost bounded
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
