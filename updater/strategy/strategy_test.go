package strategy

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/speedia/host/updater/window"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	x, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func schedule(t *testing.T, zone string, windows ...string) window.Schedule {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	s := window.Schedule{Location: loc}
	for _, w := range windows {
		pw, err := window.ParseWindow(w)
		if err != nil {
			t.Fatal(err)
		}
		s.Windows = append(s.Windows, pw)
	}
	return s
}

func TestImmediateAndManual(t *testing.T) {
	now := mustTime(t, "2026-01-03T12:00:00Z")
	in := Input{Now: now, LastReboot: now.Add(-time.Minute), Offset: 0.7}
	if d := (Immediate{}).Decide(in); !d.At.Equal(now) || d.Never || d.Reason != "immediately" {
		t.Errorf("Immediate: %+v", d)
	}
	if d := (Manual{}).Decide(in); !d.Never || !d.At.IsZero() || !strings.Contains(d.Reason, "speedia-update reboot") {
		t.Errorf("Manual: %+v", d)
	}
	for _, s := range []Strategy{Immediate{}, Manual{}, Periodic{}} {
		if s.Name() == "" {
			t.Errorf("%T has no name", s)
		}
	}
}

// 2026-01-04 and 2026-01-11 are Sundays; Berlin is at +01:00 in January.
func TestPeriodic(t *testing.T) {
	sunday := []string{"Sun 03:00 +2h"}
	tests := []struct {
		name       string
		windows    []string
		blackouts  string
		minGap     time.Duration
		jitter     time.Duration
		now, last  string
		offset     float64
		want       string // empty: Never
		wantReason string
	}{
		{"before the window, no jitter", sunday, "", 0, 0,
			"2026-01-03T12:00:00+01:00", "", 0.9, "2026-01-04T03:00:00+01:00", "maintenance window Sun 2026-01-04 03:00-05:00 Europe/Berlin"},
		{"jitter", sunday, "", 0, 30 * time.Minute,
			"2026-01-03T12:00:00+01:00", "", 0.5, "2026-01-04T03:15:00+01:00", "maintenance window Sun 2026-01-04 03:00-05:00 Europe/Berlin"},
		{"jitter clamped to the window less a minute", sunday, "", 0, 10 * time.Hour,
			"2026-01-03T12:00:00+01:00", "", 0.5, "2026-01-04T03:59:30+01:00", ""},
		{"window shorter than a minute: no jitter", []string{"Sun 03:00 +30s"}, "", 0, time.Hour,
			"2026-01-03T12:00:00+01:00", "", 0.5, "2026-01-04T03:00:00+01:00", ""},
		{"now inside the window before the planned time", sunday, "", 0, 30 * time.Minute,
			"2026-01-04T03:10:00+01:00", "", 0.5, "2026-01-04T03:15:00+01:00", ""},
		{"now past the planned time, still inside", sunday, "", 0, 30 * time.Minute,
			"2026-01-04T03:20:00+01:00", "", 0.5, "2026-01-04T03:20:00+01:00", ""},
		{"clock jumped forward past the window: next window", sunday, "", 0, 30 * time.Minute,
			"2026-01-04T06:00:00+01:00", "", 0.5, "2026-01-11T03:15:00+01:00", "maintenance window Sun 2026-01-11 03:00-05:00"},
		{"at the window's end: next window", sunday, "", 0, 0,
			"2026-01-04T05:00:00+01:00", "", 0, "2026-01-11T03:00:00+01:00", ""},
		{"min gap pushes to the next window", sunday, "", 48 * time.Hour, 0,
			"2026-01-03T12:00:00+01:00", "2026-01-03T00:00:00+01:00", 0, "2026-01-11T03:00:00+01:00", "min gap 48h0m0s"},
		{"min gap ends inside a window", sunday, "", 48 * time.Hour, 0,
			"2026-01-03T12:00:00+01:00", "2026-01-02T03:30:00+01:00", 0, "2026-01-04T03:30:00+01:00", "not before Sun 2026-01-04 03:30:00"},
		{"min gap over long ago", sunday, "", 48 * time.Hour, 0,
			"2026-01-03T12:00:00+01:00", "2025-12-01T00:00:00+01:00", 0, "2026-01-04T03:00:00+01:00", ""},
		{"never rebooted: no gap", sunday, "", 48 * time.Hour, 0,
			"2026-01-03T12:00:00+01:00", "", 0, "2026-01-04T03:00:00+01:00", ""},
		{"overlapping windows: jitter spans the merged window", []string{"Sun 03:00 +1h", "Sun 03:30 +1h"}, "", 0, 2 * time.Hour,
			"2026-01-03T12:00:00+01:00", "", 0.5, "2026-01-04T03:44:30+01:00", "03:00-04:30"},
		{"window over midnight", []string{"Sat 23:00 +3h"}, "", 0, 0,
			"2026-01-03T12:00:00+01:00", "", 0, "2026-01-03T23:00:00+01:00", "maintenance window Sat 2026-01-03 23:00-Sun 02:00 Europe/Berlin"},
		{"blackout day skips a window", sunday, "2026-01-04", 0, 0,
			"2026-01-03T12:00:00+01:00", "", 0, "2026-01-11T03:00:00+01:00", ""},
		{"DST gap: 02:30 opens at 03:00 CEST", []string{"Sun 02:30 +1h"}, "", 0, 0,
			"2026-03-28T12:00:00+01:00", "", 0, "2026-03-29T03:00:00+02:00", ""},
		{"no windows: never", nil, "", 0, 0,
			"2026-01-03T12:00:00+01:00", "", 0, "", "no maintenance window configured"},
		{"all windows blacked out: never", sunday, "2026-01-01..2026-12-31", 0, 0,
			"2026-01-03T12:00:00+01:00", "", 0, "", "no maintenance window opens within 2 years"},
		{"offset out of range is clamped", sunday, "", 0, 30 * time.Minute,
			"2026-01-03T12:00:00+01:00", "", 7, "2026-01-04T03:29:59+01:00", ""},
		{"delay in whole seconds", sunday, "", 0, 30 * time.Minute,
			"2026-01-03T12:00:00+01:00", "", 0.123456789, "2026-01-04T03:03:42+01:00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule(t, "Europe/Berlin", tt.windows...)
			if tt.blackouts != "" {
				ds, err := window.ParseBlackout(tt.blackouts)
				if err != nil {
					t.Fatal(err)
				}
				// Two years of blackouts for "never".
				for _, d := range ds {
					s.Blackouts = append(s.Blackouts, d, d.AddDays(365), d.AddDays(730))
				}
			}
			p := Periodic{Schedule: s, MinGap: tt.minGap, Jitter: tt.jitter}
			in := Input{Now: mustTime(t, tt.now), Offset: tt.offset}
			if tt.last != "" {
				in.LastReboot = mustTime(t, tt.last)
			}
			d := p.Decide(in)
			if tt.want == "" {
				if !d.Never || !d.At.IsZero() {
					t.Fatalf("Decide = %+v, want never", d)
				}
			} else if d.Never || !d.At.Equal(mustTime(t, tt.want)) {
				t.Fatalf("Decide = %+v, want At %s", d, tt.want)
			}
			if !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("Reason %q does not contain %q", d.Reason, tt.wantReason)
			}
			if !d.Never && (d.At.Before(in.Now) || !p.Schedule.Contains(d.At)) {
				t.Errorf("At %s is before now or outside every window", d.At)
			}
		})
	}
}

// Re-deciding at any moment before the planned time gives the same time,
// for any offset; after it (inside the window) it gives now.
func TestPeriodicStable(t *testing.T) {
	p := Periodic{Schedule: schedule(t, "America/New_York", "Sat,Sun 23:00 +3h"), MinGap: 24 * time.Hour, Jitter: 90 * time.Minute}
	last := mustTime(t, "2026-01-02T23:30:00-05:00")
	for _, off := range []float64{0, 0.1, 0.5, 0.77, 0.999} {
		first := p.Decide(Input{Now: mustTime(t, "2026-01-02T12:00:00-05:00"), LastReboot: last, Offset: off})
		if first.Never {
			t.Fatalf("offset %v: never", off)
		}
		for now := mustTime(t, "2026-01-02T12:00:00-05:00"); now.Before(first.At.Add(time.Hour)); now = now.Add(7 * time.Minute) {
			d := p.Decide(Input{Now: now, LastReboot: last, Offset: off})
			want := first.At
			if now.After(want) {
				want = now
			}
			if !d.At.Equal(want) {
				t.Fatalf("offset %v, now %s: At %s, first decided %s", off, now, d.At, first.At)
			}
		}
	}
}
