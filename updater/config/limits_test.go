package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// tomlArray is a TOML array of n copies of item.
func tomlArray(item string, n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(item+", ", n), ", ") + "]"
}

func TestLoadLimits(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	long80 := `"` + x(80) + `…"`
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"a 3 MB wall message", "[reboot]\nwall_message = \"" + x(3<<20) + "\"\n",
			[]string{`etc/update.toml:2: reboot.wall_message: ` + long80 + ` is 3145728 bytes, too long for a wall message (keep it to at most 4096 bytes)`}},
		{"a path", "[health]\n\ndir = \"/" + x(4096) + "\"\n",
			[]string{`etc/update.toml:3: health.dir: "/` + x(79) + `…" is 4097 bytes, too long for a path (keep it to at most 4096 bytes)`}},
		{"a socket path", "[metrics]\nsocket = \"/run/" + x(103) + "\"\n",
			[]string{`etc/update.toml:2: metrics.socket: "/run/` + x(75) + `…" is 108 bytes, too long for a unix socket path (keep it to at most 107 bytes)`}},
		{"a unit name", "[health]\ncritical_units = [\"a.service\",\n  \"" + x(300) + ".service\"]\n",
			[]string{`etc/update.toml:3: health.critical_units[1]: ` + long80 + ` is 308 bytes, too long for a unit name (keep it to at most 256 bytes)`}},
		{"a time zone", "[reboot]\ntimezone = \"" + x(257) + "\"\n",
			[]string{`etc/update.toml:2: reboot.timezone: ` + long80 + ` is 257 bytes, too long for a time zone (keep it to at most 256 bytes)`}},
		{"a duration", "[check]\ninterval = \"" + strings.Repeat("1", 65) + "h\"\n",
			[]string{`etc/update.toml:2: check.interval: "` + strings.Repeat("1", 65) + `h" is 66 bytes, too long for a duration (keep it to at most 64 bytes)`}},
		{"a window's days", "[[reboot.window]]\ndays = \"" + strings.Repeat("Sun,", 20) + "Sun\"\nstart = \"03:00\"\nlength = \"1h\"\n",
			[]string{`etc/update.toml:2: reboot.window[0].days: "` + strings.Repeat("Sun,", 20) + `…" is 83 bytes, too long for a set of days (keep it to at most 64 bytes)`}},
		{"too many blackout ranges", "[reboot]\nblackout = " + tomlArray(`"2026-12-24"`, 257) + "\n",
			[]string{`etc/update.toml:2: reboot.blackout: has 257 entries, too many (keep it to at most 256)`}},
		{"too many critical units", "[health]\ncritical_units = " + tomlArray(`"a.service"`, 300) + "\n",
			[]string{`etc/update.toml:2: health.critical_units: has 300 entries, too many (keep it to at most 256)`}},
		{"too many windows", "[reboot]\nwindow = " + tomlArray(`{days = "Sun", start = "03:00", length = "1h"}`, 257) + "\n",
			[]string{`etc/update.toml:2: reboot.window: has 257 entries, too many (keep it to at most 256)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, root := tree(t, map[string]string{"etc/update.toml": tt.doc})
			c, _, err := Load(p)
			if got := messages(err, root); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Error("a config over a limit was returned")
			}
		})
	}
}

// Values up to their limits are accepted, and the last good config keeps them.
func TestLoadAtTheLimits(t *testing.T) {
	wall := strings.Repeat("w", MaxWallMessage)
	sock := "/" + strings.Repeat("s", MaxSocketPath-1)
	doc := "[reboot]\nwall_message = \"" + wall + "\"\n[metrics]\nsocket = \"" + sock + "\"\n[health]\ncritical_units = " + tomlArray(`"a.service"`, MaxList) + "\n"
	p, _ := tree(t, map[string]string{"etc/update.toml": doc})
	c, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Reboot.WallMessage != wall || c.Metrics.Socket != sock || len(c.Health.CriticalUnits) != MaxList {
		t.Error("values at their limits not kept")
	}
	good := filepath.Join(t.TempDir(), "good.toml")
	if err := SaveGood(good, c); err != nil {
		t.Fatal(err)
	}
	if back, err := LoadGood(good); err != nil || !reflect.DeepEqual(back, c) {
		t.Errorf("last good config: %v", err)
	}
}

// A Config built in code is held to the same limits; SaveGood refuses it.
func TestValidateLimits(t *testing.T) {
	c := Default()
	c.Reboot.WallMessage = strings.Repeat("w", 3<<20)
	c.Containers.Socket = "/" + strings.Repeat("s", 200)
	c.Health.CriticalUnits = make([]string, MaxList+1)
	for i := range c.Health.CriticalUnits {
		c.Health.CriticalUnits[i] = "a.service"
	}
	var got []string
	for _, e := range Problems(c.Validate()) {
		got = append(got, e.Error())
	}
	want := []string{
		`reboot.wall_message: "` + strings.Repeat("w", 80) + `…" is 3145728 bytes, too long for a wall message (keep it to at most 4096 bytes)`,
		`containers.socket: "/` + strings.Repeat("s", 79) + `…" is 201 bytes, too long for a unix socket path (keep it to at most 107 bytes)`,
		`health.critical_units: has 257 entries, too many (keep it to at most 256)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	good := filepath.Join(t.TempDir(), "good.toml")
	if err := SaveGood(good, c); err == nil {
		t.Error("SaveGood saved a config over the limits")
	}
	if _, err := os.Stat(good); err == nil {
		t.Error("SaveGood wrote the file")
	}
}

// A bad value within its limit is quoted cut to 80 characters.
func TestLongBadValueQuotedTruncated(t *testing.T) {
	bad := strings.Repeat("ab", 100)
	cut := `"` + bad[:80] + `…"`
	doc := "[reboot]\nstrategy = \"" + bad + "\"\ntimezone = \"" + bad + "\"\n[health]\ndir = \"" + bad + "\"\n" +
		"critical_units = [\"" + bad + "\"]\n"
	p, root := tree(t, map[string]string{"etc/update.toml": doc})
	_, _, err := Load(p)
	want := []string{
		`etc/update.toml:2: reboot.strategy: ` + cut + ` is not a strategy (use "periodic", "immediate", "manual")`,
		`etc/update.toml:3: reboot.timezone: ` + cut + ` is not a known time zone (use an IANA name such as "Europe/Berlin", or "" for the host's local time)`,
		`etc/update.toml:5: health.dir: ` + cut + ` is not an absolute path`,
		`etc/update.toml:6: health.critical_units[0]: ` + cut + ` is not a systemd unit name (e.g. "dbus.service")`,
	}
	if got := messages(err, root); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for _, m := range messages(err, root) {
		if strings.Contains(m, bad[:81]) {
			t.Errorf("quotes more than 80 characters: %s", m)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"dbus.service", `"dbus.service"`},
		{strings.Repeat("x", 80), strconv.Quote(strings.Repeat("x", 80))},
		{strings.Repeat("x", 81), `"` + strings.Repeat("x", 80) + `…"`},
		// Characters, not bytes: a multi-byte character is never split.
		{strings.Repeat("ä", 100), `"` + strings.Repeat("ä", 80) + `…"`},
		{"a\nb", `"a\nb"`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%.20q...) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
