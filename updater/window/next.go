package window

import (
	"slices"
	"time"
)

// Horizon bounds every search: Next reports no window when none opens
// within it, and an interval longer than it (a schedule that is always
// open) is cut to it.
const Horizon = 2 * 366 * 24 * time.Hour

// effectiveMax caps a window's length in the arithmetic. Windows repeat at
// most a week (169h with DST) apart, so a longer one leaves no gap and
// capping it changes nothing.
const effectiveMax = 8 * 24 * time.Hour

// Contains reports whether a window of s is open at t.
func (s Schedule) Contains(t time.Time) bool {
	// A merged interval holds t iff one of its windows does, and every
	// window that can hold t is in the first scanned range.
	start, _, ok := s.next(t, false)
	return ok && !start.After(t)
}

// Next returns the window interval open at t (start <= t < end; start may
// lie before t) or else the next one after t. Overlapping and adjacent
// windows are merged into one interval, blackout days are cut out. A
// start time in a DST gap opens at the first instant after the gap, an
// ambiguous one at its first occurrence; lengths are absolute. ok is
// false when s has no usable window or none opens within Horizon.
func (s Schedule) Next(t time.Time) (start, end time.Time, ok bool) {
	return s.next(t, true)
}

type interval struct{ start, end time.Time }

// next scans local days around t, growing the scanned range until the
// interval it found cannot be extended by windows of days outside it.
// With whole false the interval's ends are not grown (enough for
// Contains).
func (s Schedule) next(t time.Time, whole bool) (time.Time, time.Time, bool) {
	c := s.calendar()
	if len(c.windows) == 0 {
		return time.Time{}, time.Time{}, false
	}
	const horizonDays = int64(Horizon / (24 * time.Hour))
	today := c.dayOf(t)
	// Intervals of day n start on day n or (after a DST gap) just after it
	// and end within maxLen; the margins below allow one extra day.
	back := int64(c.maxLen/(24*time.Hour)) + 2
	lo, hi := today-back, today+8
	step := int64(16)
	for {
		ivs := c.scan(lo, hi)
		i := slices.IndexFunc(ivs, func(iv interval) bool { return iv.end.After(t) })
		if i < 0 {
			if !whole || hi-today > horizonDays {
				return time.Time{}, time.Time{}, false
			}
			lo, hi, step = hi+1-back, hi+step, min(2*step, 256)
			continue
		}
		iv := ivs[i]
		if whole && !iv.end.Before(c.startOfDay(hi)) && iv.end.Sub(t) <= Horizon {
			hi, step = hi+step, min(2*step, 256)
			continue
		}
		if whole && iv.start.Before(c.startOfDay(lo).Add(c.maxLen+48*time.Hour)) && t.Sub(iv.start) <= Horizon {
			lo, step = lo-step, min(2*step, 256)
			continue
		}
		return iv.start, iv.end, true
	}
}

// calendar is a Schedule prepared for scanning.
type calendar struct {
	loc     *time.Location
	windows []Window
	maxLen  time.Duration
	black   map[int64]bool
}

func (s Schedule) calendar() calendar {
	c := calendar{loc: s.location()}
	for _, w := range s.Windows {
		if w.Days == [7]bool{} || !w.Start.Valid() || w.Length <= 0 {
			continue // never opens
		}
		w.Length = min(w.Length, effectiveMax)
		c.windows = append(c.windows, w)
		c.maxLen = max(c.maxLen, w.Length)
	}
	for _, d := range s.Blackouts {
		if d.Valid() {
			if c.black == nil {
				c.black = map[int64]bool{}
			}
			c.black[d.num()] = true
		}
	}
	return c
}

// scan returns the intervals of the windows starting on days lo..hi,
// blackouts cut out, sorted and merged.
func (c calendar) scan(lo, hi int64) []interval {
	var ivs []interval
	for n := lo; n <= hi; n++ {
		wd := weekday(n)
		for _, w := range c.windows {
			if !w.Days[wd] {
				continue
			}
			start := c.resolve(n, int64(w.Start)*60)
			ivs = c.cut(interval{start, start.Add(w.Length)}, ivs)
		}
	}
	slices.SortFunc(ivs, func(a, b interval) int { return a.start.Compare(b.start) })
	merged := ivs[:0]
	for _, iv := range ivs {
		if k := len(merged) - 1; k >= 0 && !iv.start.After(merged[k].end) {
			if iv.end.After(merged[k].end) {
				merged[k].end = iv.end
			}
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

// cut appends the parts of iv that lie outside blackout days to dst.
func (c calendar) cut(iv interval, dst []interval) []interval {
	if len(c.black) == 0 {
		return append(dst, iv)
	}
	first := c.dayOf(iv.start)
	cur := iv.start
	// The bound only guards against zones whose dates run backwards.
	for n := first; cur.Before(iv.end) && n <= first+int64(effectiveMax/(24*time.Hour))+2; n++ {
		end := c.startOfDay(n + 1)
		if end.After(iv.end) {
			end = iv.end
		}
		if !c.black[n] && cur.Before(end) {
			dst = append(dst, interval{cur, end})
		}
		if end.After(cur) {
			cur = end
		}
	}
	return dst
}

// dayOf is the day number of t's local calendar day.
func (c calendar) dayOf(t time.Time) int64 {
	y, m, d := t.In(c.loc).Date()
	return Date{y, m, d}.num()
}

func (c calendar) startOfDay(n int64) time.Time { return c.resolve(n, 0) }

// resolve returns the instant at which the local wall clock reads sec
// seconds after midnight of day n. An ambiguous wall time (fall back) is
// its first occurrence; a wall time in a gap (spring forward) becomes the
// first instant after the gap. time.Date guarantees neither: it picks
// differently per zone.
func (c calendar) resolve(n, sec int64) time.Time {
	naive := n*secondsPerDay + sec // the wall clock read as if it were UTC
	if c.loc == time.UTC {
		return time.Unix(naive, 0).In(c.loc)
	}
	// No zone is 15h away from UTC, so the offsets in force 15h around
	// naive include every offset the wall time can have.
	var cands [3]int64
	for i, d := range []int64{-15 * 3600, 0, 15 * 3600} {
		cands[i] = naive - c.offset(naive+d)
	}
	best, found := int64(0), false
	for _, u := range cands {
		if c.wall(u) == naive && (!found || u < best) {
			best, found = u, true
		}
	}
	if found {
		return time.Unix(best, 0).In(c.loc)
	}
	// A gap: the wall clock jumps over naive between the candidates; find
	// the first instant whose wall clock reads naive or later.
	lo, hi := slices.Min(cands[:]), slices.Max(cands[:])
	if c.wall(lo) >= naive || c.wall(hi) < naive {
		y, m, d := civil(n).Year, civil(n).Month, civil(n).Day
		return time.Date(y, m, d, 0, 0, int(sec), 0, c.loc)
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if c.wall(mid) >= naive {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.Unix(lo, 0).In(c.loc)
}

// offset is the zone offset in seconds in force at Unix time u.
func (c calendar) offset(u int64) int64 {
	_, off := time.Unix(u, 0).In(c.loc).Zone()
	return int64(off)
}

// wall is the local wall clock at Unix time u, read as if it were UTC.
func (c calendar) wall(u int64) int64 { return u + c.offset(u) }
