package main

import (
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on any machine

	"github.com/speedia/host/updater/errkind"
)

func TestParseTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, berlin) // a Sunday, CET
	beforeDST := time.Date(2026, 3, 28, 12, 0, 0, 0, berlin)
	tests := []struct {
		in   string
		now  time.Time
		want time.Time
	}{
		{"2026-11-29T03:17:00+01:00", now, time.Date(2026, 11, 29, 3, 17, 0, 0, berlin)},
		{"2026-11-29T02:17:00Z", now, time.Date(2026, 11, 29, 3, 17, 0, 0, berlin)},
		{"2026-11-29 03:17", now, time.Date(2026, 11, 29, 3, 17, 0, 0, berlin)},
		{"22:30", now, time.Date(2026, 11, 22, 22, 30, 0, 0, berlin)}, // later today
		{"03:00", now, time.Date(2026, 11, 23, 3, 0, 0, 0, berlin)},   // past today: tomorrow
		{"10:00", now, time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)},  // now is not the future
		{"7:05", now, time.Date(2026, 11, 23, 7, 5, 0, 0, berlin)},
		{" +30m ", now, now.Add(30 * time.Minute)},
		{"+1d2h", now, now.Add(26 * time.Hour)},
		{"+1w", now, now.Add(7 * 24 * time.Hour)},
		{"+1.5h", now, now.Add(90 * time.Minute)},
		// 02:30 on the night clocks go forward does not exist: it is 03:30 CEST.
		{"02:30", beforeDST, time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)},
		// The day after the change is 23 hours long; "+1d" is 24 hours.
		{"+1d", beforeDST, beforeDST.Add(24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime(tt.in, tt.now, berlin)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTimeRejects(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, in := range []string{"", "tomorrow", "25:00", "12:60", "+", "+0s", "+-5m", "+5", "2026-11-21T10:00:00Z", "2026-11-22 09:59", "3d"} {
		t.Run(in, func(t *testing.T) {
			if got, err := parseTime(in, now, time.UTC); !errors.Is(err, errkind.Usage) {
				t.Errorf("parseTime(%q) = %v, %v; want a usage error", in, got, err)
			}
		})
	}
}

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"3d", now.Add(72 * time.Hour)},
		{"12h", now.Add(12 * time.Hour)},
		{"1w2d", now.Add(9 * 24 * time.Hour)},
		{"90m", now.Add(90 * time.Minute)},
		{"+2h", now.Add(2 * time.Hour)},
		{"23:00", time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC)},
		{"2026-12-01 08:00", time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseUntil(tt.in, now, time.UTC)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseUntil(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"0d", "3 days", "d", "-1h"} {
		if _, err := parseUntil(in, now, time.UTC); !errors.Is(err, errkind.Usage) {
			t.Errorf("parseUntil(%q): %v, want a usage error", in, err)
		}
	}
}
