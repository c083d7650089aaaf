package window

import (
	"encoding/binary"
	"testing"
	"time"
)

func FuzzParseDays(f *testing.F) {
	for _, s := range []string{"Sun", "Mon..Fri", "Sat,Sun", "Mon..Wed,Fri", "Fri..Mon", "daily", "*", "monday..SUN", "Mnn", "Mon..", ",", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDays(s)
		if err != nil {
			return
		}
		if d == ([7]bool{}) {
			t.Fatalf("ParseDays(%q) accepted no days", s)
		}
		again, err := ParseDays(FormatDays(d))
		if err != nil || again != d {
			t.Fatalf("ParseDays(%q) = %v; FormatDays %q reads back as %v, %v", s, d, FormatDays(d), again, err)
		}
	})
}

func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"03:00", "3:05", "23:59", "24:00", "3:60", "-1:00", "+3:00", "0:00", "99:99", ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClock(s)
		if err != nil {
			return
		}
		if !c.Valid() {
			t.Fatalf("ParseClock(%q) = %d, not a time of day", s, int(c))
		}
		again, err := ParseClock(c.String())
		if err != nil || again != c {
			t.Fatalf("ParseClock(%q) = %v; it reads back as %v, %v", s, c, again, err)
		}
	})
}

func FuzzParseBlackout(f *testing.F) {
	for _, s := range []string{"2026-12-24", "2026-12-24..2027-01-01", "2028-02-29", "2026-02-29", "2026-01-02..2026-01-01", "0001-01-01..0001-12-31", "9999-12-31", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := ParseBlackout(s)
		if err != nil {
			return
		}
		if len(ds) < 1 || len(ds) > MaxBlackoutDays {
			t.Fatalf("ParseBlackout(%q): %d days", s, len(ds))
		}
		for i, d := range ds {
			if !d.Valid() {
				t.Fatalf("ParseBlackout(%q): %v is not a day", s, d)
			}
			if i > 0 && ds[i-1].AddDays(1) != d {
				t.Fatalf("ParseBlackout(%q): %v does not follow %v", s, d, ds[i-1])
			}
		}
		again, err := ParseBlackout(FormatBlackouts(ds))
		if err != nil || len(again) != len(ds) || again[0] != ds[0] || again[len(again)-1] != ds[len(ds)-1] {
			t.Fatalf("ParseBlackout(%q): %q reads back as %v, %v", s, FormatBlackouts(ds), again, err)
		}
	})
}

var fuzzZones = []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe", "America/Santiago"}

// FuzzNext builds a schedule from raw bytes: zone, up to three windows
// (days, start, length up to 8 days), up to four blackout days and a time
// in 2020..2030.
func FuzzNext(f *testing.F) {
	f.Add([]byte{1, 0x01, 0, 150, 0, 60, 0}, int64(0))
	f.Add([]byte{2, 0x7f, 0x05, 0x64, 0x05, 0xa0, 1, 0x40, 0, 0, 0, 0, 0, 0, 3, 2}, int64(1e8))
	f.Add([]byte{4, 0x41, 0x00, 0xb4, 0x00, 0x3c, 0x02, 0x41, 0x00, 0xf0, 0x00, 0x3c}, int64(2.4e8))
	f.Add([]byte{0, 0x7f, 0x02, 0xd0, 0x05, 0xa0, 0x00}, int64(3e8))
	locs := map[string]*time.Location{}
	for _, z := range fuzzZones {
		locs[z] = mustLoad(f, z)
	}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, secs int64) {
		take := func(n int) []byte {
			if len(data) < n {
				data = append(data, make([]byte, n-len(data))...)
			}
			b := data[:n]
			data = data[n:]
			return b
		}
		s := Schedule{Location: locs[fuzzZones[int(take(1)[0])%len(fuzzZones)]]}
		nw := int(take(1)[0]) % 4
		for range nw {
			b := take(5)
			var w Window
			for i := range 7 {
				w.Days[i] = b[0]&(1<<i) != 0
			}
			w.Start = Clock(int(binary.BigEndian.Uint16(b[1:3])) % 1440)
			w.Length = time.Duration(int(binary.BigEndian.Uint16(b[3:5]))%(8*24*60+1)) * time.Minute
			s.Windows = append(s.Windows, w)
		}
		for _, b := range take(4) {
			if b != 0 {
				s.Blackouts = append(s.Blackouts, Date{2020, 1, 1}.AddDays(int(b)*5))
			}
		}
		at := base.Add(time.Duration(uint64(secs)%(10*365*24*3600)) * time.Second)
		ref := newRef(s)

		start, end, ok := s.Next(at)
		if !ok {
			if s.Contains(at) || ref.open(at) {
				t.Fatalf("%v: Next(%s) found none, but it is open", s, at)
			}
			return
		}
		if !end.After(start) || !end.After(at) {
			t.Fatalf("%v: Next(%s) = %s..%s", s, at, start, end)
		}
		from := start
		if at.After(from) {
			from = at
		}
		span := end.Sub(from)
		for _, x := range []time.Time{from, from.Add(span / 3), from.Add(span / 2), end.Add(-time.Second)} {
			if x.Before(from) {
				continue
			}
			if !s.Contains(x) || (x.Sub(at) < 30*24*time.Hour && !ref.open(x)) {
				t.Fatalf("%v: Next(%s) = %s..%s, but %s is closed", s, at, start, end, x)
			}
		}
		if start.After(at) {
			before := start.Add(-time.Second)
			if s.Contains(before) || (start.Sub(at) < 30*24*time.Hour && ref.open(before)) {
				t.Fatalf("%v: Next(%s) = %s..%s, but %s is open already", s, at, start, end, before)
			}
		}
		if end.Sub(at) < Horizon && end.Sub(at) < 30*24*time.Hour && ref.open(end) {
			t.Fatalf("%v: Next(%s) = %s..%s, but its end is open", s, at, start, end)
		}
		if !start.After(at) && !ref.open(at) {
			t.Fatalf("%v: Next(%s) = %s..%s, but t is closed", s, at, start, end)
		}
	})
}
