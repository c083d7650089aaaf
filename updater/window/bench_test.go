package window

import (
	"testing"
	"time"
)

func BenchmarkNext(b *testing.B) {
	for _, w := range []string{"Sun 03:00 +2h", "daily 00:00 +24h"} {
		s := sched(b, "Europe/Berlin", []string{w}, "2026-12-24..2027-01-01")
		at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		b.Run(w, func(b *testing.B) {
			for b.Loop() {
				s.Next(at)
			}
		})
	}
}
