// Package pkgver orders package versions and computes what an update changed.
//
// Plain dotted numeric versions are compared with hashicorp/go-version; all
// others (epochs, revisions, "~" pre-releases, letters) with Debian's own
// ordering, which is what apt used to pick them.
package pkgver

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	version "github.com/hashicorp/go-version"
)

var dotted = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// Compare returns -1, 0 or +1 as a is older than, equal to or newer than b.
func Compare(a, b string) int {
	if dotted.MatchString(a) && dotted.MatchString(b) {
		va, errA := version.NewVersion(a)
		vb, errB := version.NewVersion(b)
		if errA == nil && errB == nil {
			return va.Compare(vb)
		}
	}
	return sign(Debian(a, b))
}

// Debian compares two Debian version strings like dpkg --compare-versions.
func Debian(a, b string) int {
	ea, ua, ra := split(a)
	eb, ub, rb := split(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return sign(c)
	}
	return sign(verrevcmp(ra, rb))
}

func split(v string) (epoch int, upstream, revision string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, _ = strconv.Atoi(v[:i])
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

func order(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// verrevcmp is dpkg's comparison of one version part: non-digit runs by
// character order ("~" sorts before everything, even the end), digit runs
// numerically.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := 0, 0
			if i < len(a) {
				ac = order(a[i])
			}
			if j < len(b) {
				bc = order(b[j])
			}
			if ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		first := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if first != 0 {
			return first
		}
	}
	return 0
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// Change is one package that differs between two snapshots.
type Change struct {
	Name string `json:"name"`
	Old  string `json:"old,omitempty"` // empty: newly installed
	New  string `json:"new,omitempty"` // empty: removed
	Kind string `json:"kind"`          // install, upgrade, downgrade, remove, reinstall
}

// Diff lists the packages whose versions differ between old and new, by name.
func Diff(old, new map[string]string) []Change {
	var out []Change
	for name, nv := range new {
		ov, ok := old[name]
		switch {
		case !ok:
			out = append(out, Change{Name: name, New: nv, Kind: "install"})
		case ov != nv:
			kind := "upgrade"
			switch Compare(ov, nv) {
			case 1:
				kind = "downgrade"
			case 0:
				kind = "reinstall" // same order, different spelling (e.g. "1.0" vs "1.00")
			}
			out = append(out, Change{Name: name, Old: ov, New: nv, Kind: kind})
		}
	}
	for name, ov := range old {
		if _, ok := new[name]; !ok {
			out = append(out, Change{Name: name, Old: ov, Kind: "remove"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
