package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/window"
)

const shipped = "../../units/update.toml"

func TestShippedFileIsDefault(t *testing.T) {
	data, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	// Over an empty base, so every key must be in the file to match.
	got, err := load(Config{}, []source{{name: shipped, data: data}})
	if err != nil {
		t.Fatalf("shipped file: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("shipped file:\n got %+v\nwant %+v", got, want)
	}

	// And through Load, installed where the image puts it.
	p, _ := tree(t, map[string]string{"usr/update.toml": string(data)})
	got, read, err := Load(p)
	if err != nil || len(read) != 1 || !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load: %v, read %q, config %+v", err, read, got)
	}
}

func TestShippedFileCommentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	seen := map[string]bool{}
	section := ""
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		case strings.Contains(l, " = "):
			key := section + "." + strings.SplitN(l, " ", 2)[0]
			seen[key] = true
			if i == 0 || !strings.HasPrefix(lines[i-1], "# ") {
				t.Errorf("line %d: %s has no comment above it", i+1, key)
			}
		}
	}
	for _, k := range allKeys() {
		if strings.Contains(k, ".") && k != "reboot.window" && !seen[k] {
			t.Errorf("%s is not in the shipped file", k)
		}
	}
	for _, k := range windowKeys {
		if !seen["reboot.window."+k] {
			t.Errorf("reboot.window.%s is not in the shipped file", k)
		}
	}
}

func TestDocsNameEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range allKeys() {
		if strings.Contains(k, ".") && !strings.Contains(string(data), "`"+k+"`") {
			t.Errorf("docs/config.md does not describe `%s`", k)
		}
	}
	for _, k := range windowKeys {
		if !strings.Contains(string(data), "`reboot.window."+k+"`") {
			t.Errorf("docs/config.md does not describe `reboot.window.%s`", k)
		}
	}
}

func TestDefaultPromise(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default does not validate: %v", err)
	}
	want := window.Schedule{Windows: []window.Window{sunday(3*60, 2*time.Hour)}, Location: time.Local}
	if !reflect.DeepEqual(c.Reboot.Schedule, want) || c.Reboot.Jitter != 30*time.Minute ||
		c.Check.Interval != 24*time.Hour || c.Check.Jitter != time.Hour || c.Reboot.Strategy != StrategyPeriodic {
		t.Errorf("Default is not a weekly night window with a daily check: %+v", c)
	}
	// Default returns fresh slices: a caller's edit must not leak.
	c.Health.CriticalUnits[0] = "x.service"
	c.Reboot.Schedule.Windows[0].Start = 0
	if d := Default(); d.Health.CriticalUnits[0] != "dbus.service" || d.Reboot.Schedule.Windows[0].Start != 180 {
		t.Error("Default shares slices between calls")
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	// Problems of a Config built in code carry keys but no file.
	tests := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"nil location", func(c *Config) { c.Reboot.Schedule.Location = nil }, []string{"reboot.timezone: no time zone"}},
		{"no days", func(c *Config) { c.Reboot.Schedule.Windows[0].Days = [7]bool{} }, []string{"reboot.window[0].days: no days"}},
		{"bad clock", func(c *Config) { c.Reboot.Schedule.Windows[0].Start = 1440 },
			[]string{"reboot.window[0].start: 1440 minutes is not a time of day (use HH:MM, 00:00-23:59)"}},
		{"bad date", func(c *Config) { c.Reboot.Schedule.Blackouts = []window.Date{{Year: 2026, Month: 2, Day: 30}} },
			[]string{"reboot.blackout[0]: 2026-02-30 is not a calendar day"}},
		{"several at once", func(c *Config) { c.Snapshots.Keep = -1; c.Reboot.Delay = -time.Second },
			[]string{"reboot.delay: must not be negative, not \"-1s\"", "snapshots.keep: must not be negative, not -1"}},
		{"a unit name with a path", func(c *Config) { c.Health.CriticalUnits = []string{"../x.service"} },
			[]string{`health.critical_units[0]: "../x.service" is not a systemd unit name (e.g. "dbus.service")`}},
		{"a port out of range", func(c *Config) { c.Metrics.Listen = "[::1]:70000" },
			[]string{`metrics.listen: "[::1]:70000" is not a TCP address (use host:port, e.g. "127.0.0.1:9846", or "" for none)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			var got []string
			for _, e := range Problems(c.Validate()) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "/etc/speedia/update.toml", Line: 12, Key: "reboot.window[1].start", Msg: `"25:00" is not a time of day (use HH:MM, 00:00-23:59)`},
			`/etc/speedia/update.toml:12: reboot.window[1].start: "25:00" is not a time of day (use HH:MM, 00:00-23:59)`},
		{Error{File: "/etc/speedia/update.toml", Line: 3, Column: 7, Msg: "syntax"}, "/etc/speedia/update.toml:3:7: syntax"},
		{Error{File: "/etc/speedia/update.d", Msg: "cannot list drop-ins: permission denied"}, "/etc/speedia/update.d: cannot list drop-ins: permission denied"},
		{Error{Key: "check.interval", Msg: "m"}, "check.interval: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	all := allKeys()
	tests := []struct{ key, want string }{
		{"check.intervall", "check.interval"},
		{"check.Interval", "check.interval"},
		{"check.jiter", "check.jitter"},   // same section wins the tie with reboot.jitter
		{"reboot.jiter", "reboot.jitter"}, // and the other way round
		{"reboot.respect_inhibitor", "reboot.respect_inhibitors"},
		{"snapshot", "snapshots"},
		{"health.units", ""},
		{"x", ""},
		{"reboot.max_attempts", "health.max_attempts"},
	}
	for _, tt := range tests {
		if got := suggest(tt.key, all); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s",
		0: "0s", time.Hour + time.Second: "1h0m1s", -5 * time.Minute: "-5m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", formatDuration(d), d)
		}
	}
}

func TestFilesOrder(t *testing.T) {
	p, root := tree(t, map[string]string{
		"usr/update.d/b.toml": "", "usr/update.d/a.toml": "", "usr/update.d/c.toml": "",
		"etc/update.d/c.toml": "", "etc/update.d/0.toml": "",
	})
	got, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range []string{"usr/update.toml", "usr/update.d/a.toml", "usr/update.d/b.toml", "etc/update.toml", "etc/update.d/0.toml", "etc/update.d/c.toml"} {
		want = append(want, filepath.Join(root, f))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
