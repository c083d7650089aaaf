package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func days(ds ...time.Weekday) [7]bool {
	var d [7]bool
	for _, x := range ds {
		d[x] = true
	}
	return d
}

var allDays = days(time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday)

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want [7]bool
	}{
		{"Sun", days(time.Sunday)},
		{"sun", days(time.Sunday)},
		{"SUNDAY", days(time.Sunday)},
		{"Mon..Fri", days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday)},
		{"Sat,Sun", days(time.Saturday, time.Sunday)},
		{" Sat , Sun ", days(time.Saturday, time.Sunday)},
		{"Mon..Wed,Fri", days(time.Monday, time.Tuesday, time.Wednesday, time.Friday)},
		{"Fri..Mon", days(time.Friday, time.Saturday, time.Sunday, time.Monday)},
		{"Sat..Sun", days(time.Saturday, time.Sunday)},
		{"Wed..Wed", days(time.Wednesday)},
		{"Tuesday..thu", days(time.Tuesday, time.Wednesday, time.Thursday)},
		{"Mon,Mon", days(time.Monday)},
		{"Sun..Sat", allDays},
		{"daily", allDays},
		{"Daily", allDays},
		{"*", allDays},
	}
	for _, tt := range tests {
		got, err := ParseDays(tt.in)
		if err != nil {
			t.Errorf("ParseDays(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDays(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseDaysErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Mnn", `unknown day "Mnn" (use Mon..Sun)`},
		{"", "no days given"},
		{"   ", "no days given"},
		{"Mon,", "empty item"},
		{"Mon-Fri", `unknown day "Mon-Fri"`},
		{"Mon..", `unknown day ""`},
		{"..Fri", `unknown day ""`},
		{"Mon..Wed..Fri", `unknown day "Wed..Fri"`},
		{"Mo", `unknown day "Mo"`},
		{"daily,Mon", `unknown day "daily"`},
	}
	for _, tt := range tests {
		_, err := ParseDays(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDays(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDays(%q) error %v does not wrap ErrInvalid", tt.in, err)
		}
	}
}

func TestFormatDays(t *testing.T) {
	tests := []struct {
		in   [7]bool
		want string
	}{
		{days(), "none"},
		{allDays, "daily"},
		{days(time.Sunday), "Sun"},
		{days(time.Saturday, time.Sunday), "Sat,Sun"},
		{days(time.Sunday, time.Monday), "Mon,Sun"},
		{days(time.Saturday, time.Sunday, time.Monday), "Sat..Mon"},
		{days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday), "Mon..Fri"},
		{days(time.Friday, time.Saturday, time.Sunday, time.Monday), "Fri..Mon"},
		{days(time.Monday, time.Tuesday, time.Wednesday, time.Friday), "Mon..Wed,Fri"},
		{days(time.Monday, time.Wednesday, time.Friday, time.Sunday), "Mon,Wed,Fri,Sun"},
		{days(time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday), "Sun..Fri"},
	}
	for _, tt := range tests {
		if got := FormatDays(tt.in); got != tt.want {
			t.Errorf("FormatDays(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every non-empty set of days survives FormatDays and ParseDays.
func TestFormatDaysRoundTrip(t *testing.T) {
	for mask := 1; mask < 128; mask++ {
		var d [7]bool
		for i := range 7 {
			d[i] = mask&(1<<i) != 0
		}
		got, err := ParseDays(FormatDays(d))
		if err != nil || got != d {
			t.Errorf("ParseDays(FormatDays(%v) = %q) = %v, %v", d, FormatDays(d), got, err)
		}
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in   string
		want Clock
		ok   bool
	}{
		{"03:00", 180, true},
		{"3:05", 185, true},
		{"23:59", 23*60 + 59, true},
		{"00:00", 0, true},
		{"0:00", 0, true},
		{" 12:30 ", 12*60 + 30, true},
		{"24:00", 0, false},
		{"3:60", 0, false},
		{"3:5", 0, false},
		{"003:00", 0, false},
		{"-1:00", 0, false},
		{"+3:00", 0, false},
		{"3", 0, false},
		{"3:00:00", 0, false},
		{"03h00", 0, false},
		{"", 0, false},
		{"٣:00", 0, false}, // a non-ASCII digit
	}
	for _, tt := range tests {
		got, err := ParseClock(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseClock(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if !tt.ok && (err == nil || !errors.Is(err, ErrInvalid)) {
			t.Errorf("ParseClock(%q) = %v, %v; want an ErrInvalid", tt.in, got, err)
		}
	}
	if s := Clock(185).String(); s != "03:05" {
		t.Errorf("Clock(185).String() = %q", s)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want Date
		ok   bool
	}{
		{"2026-12-24", Date{2026, time.December, 24}, true},
		{"2028-02-29", Date{2028, time.February, 29}, true},
		{"2000-02-29", Date{2000, time.February, 29}, true},
		{"2026-02-29", Date{}, false}, // not a leap year
		{"2100-02-29", Date{}, false}, // century, not a leap year
		{"2026-04-31", Date{}, false},
		{"2026-13-01", Date{}, false},
		{"2026-00-10", Date{}, false},
		{"2026-01-00", Date{}, false},
		{"0000-01-01", Date{}, false},
		{"2026-1-05", Date{}, false},
		{"2026/01/05", Date{}, false},
		{"+026-01-05", Date{}, false},
		{"", Date{}, false},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if !tt.ok && (err == nil || !errors.Is(err, ErrInvalid)) {
			t.Errorf("ParseDate(%q) = %v, %v; want an ErrInvalid", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("ParseDate(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestParseBlackout(t *testing.T) {
	got, err := ParseBlackout("2026-12-30..2027-01-02")
	if err != nil {
		t.Fatal(err)
	}
	want := []Date{{2026, 12, 30}, {2026, 12, 31}, {2027, 1, 1}, {2027, 1, 2}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if got, err := ParseBlackout("2026-12-24"); err != nil || len(got) != 1 || got[0] != (Date{2026, 12, 24}) {
		t.Errorf("single day: %v, %v", got, err)
	}
	if got, err := ParseBlackout("2028-01-01..2028-12-31"); err != nil || len(got) != 366 {
		t.Errorf("a leap year: %d days, %v", len(got), err)
	}
	if got, err := ParseBlackout("2026-05-01..2026-05-01"); err != nil || len(got) != 1 {
		t.Errorf("one-day range: %v, %v", got, err)
	}
	for _, bad := range []string{
		"2026-01-02..2026-01-01",
		"2026-01-01..2027-01-02", // 367 days
		"2026-01-01..",
		"..2026-01-01",
		"2026-01-01..2026-01-05..2026-01-09",
		"2026-02-30",
		"christmas",
	} {
		if got, err := ParseBlackout(bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseBlackout(%q) = %v, %v; want an ErrInvalid", bad, got, err)
		}
	}
}

func TestFormatBlackouts(t *testing.T) {
	in := []Date{{2027, 1, 1}, {2026, 5, 1}, {2026, 12, 31}, {2026, 12, 30}, {2026, 5, 1}, {2026, 5, 3}}
	want := "2026-05-01, 2026-05-03, 2026-12-30..2027-01-01"
	if got := FormatBlackouts(in); got != want {
		t.Errorf("FormatBlackouts = %q, want %q", got, want)
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in   string
		want Window
		str  string
	}{
		{"Sun 03:00 +2h", Window{days(time.Sunday), 180, 2 * time.Hour}, "Sun 03:00 +2h0m0s"},
		{"Mon..Fri 22:30 +90m", Window{days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday), 22*60 + 30, 90 * time.Minute}, "Mon..Fri 22:30 +1h30m0s"},
		{"Sat, Sun 1:00 3h", Window{days(time.Saturday, time.Sunday), 60, 3 * time.Hour}, "Sat,Sun 01:00 +3h0m0s"},
		{"daily 00:00 +168h", Window{allDays, 0, MaxLength}, "daily 00:00 +168h0m0s"},
	}
	for _, tt := range tests {
		got, err := ParseWindow(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.str {
			t.Errorf("ParseWindow(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
	}
	for _, bad := range []string{"Sun 03:00", "Sun 03:00 +0s", "Sun 03:00 -1h", "Sun 03:00 +169h", "Sun 3 +1h", "Xyz 03:00 +1h", "Sun 03:00 +1 h", "Sun 03:00 +1d"} {
		if got, err := ParseWindow(bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseWindow(%q) = %v, %v; want an ErrInvalid", bad, got, err)
		}
	}
}

func TestScheduleStringAndValidate(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	s := Schedule{
		Windows:   []Window{{days(time.Sunday), 180, 2 * time.Hour}, {days(time.Saturday, time.Sunday), 23 * 60, 3 * time.Hour}},
		Location:  berlin,
		Blackouts: []Date{{2026, 12, 24}, {2026, 12, 25}},
	}
	want := "Sun 03:00 +2h0m0s, Sat,Sun 23:00 +3h0m0s (Europe/Berlin); blackout 2026-12-24..2026-12-25"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got := (Schedule{Location: time.UTC}).String(); got != "no windows (UTC)" {
		t.Errorf("empty schedule: %q", got)
	}
	for _, bad := range []Schedule{
		{Windows: []Window{{days(), 0, time.Hour}}},
		{Windows: []Window{{allDays, 1440, time.Hour}}},
		{Windows: []Window{{allDays, 0, 0}}},
		{Windows: []Window{{allDays, 0, MaxLength + time.Second}}},
		{Blackouts: []Date{{2026, 2, 30}}},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%v) = %v, want an ErrInvalid", bad, err)
		}
	}
}

func TestDate(t *testing.T) {
	d := Date{2026, time.December, 31}
	if got := d.AddDays(1); got != (Date{2027, time.January, 1}) {
		t.Errorf("AddDays(1) = %v", got)
	}
	if got := d.AddDays(-365); got != (Date{2025, time.December, 31}) {
		t.Errorf("AddDays(-365) = %v", got)
	}
	if d.Weekday() != time.Thursday {
		t.Errorf("Weekday = %v", d.Weekday())
	}
	if (Date{1969, 12, 31}).Weekday() != time.Wednesday {
		t.Errorf("Weekday before 1970 is wrong")
	}
	if d.Compare(d.AddDays(1)) != -1 || d.AddDays(1).Compare(d) != 1 || d.Compare(d) != 0 {
		t.Errorf("Compare is wrong")
	}
}
