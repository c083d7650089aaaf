package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/speedia/host/updater/window"
)

// tree writes files (paths relative to a temp root, "usr/..." or "etc/...")
// and returns Paths pointing at it.
func tree(t *testing.T, files map[string]string) (Paths, string) {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Paths{Vendor: filepath.Join(root, "usr"), Admin: filepath.Join(root, "etc")}, root
}

// messages renders the problems of err with root cut off the file names.
func messages(err error, root string) []string {
	var out []string
	for _, e := range Problems(err) {
		out = append(out, strings.ReplaceAll(e.Error(), root+"/", ""))
	}
	return out
}

func sunday(start window.Clock, length time.Duration) window.Window {
	return window.Window{Days: [7]bool{time.Sunday: true}, Start: start, Length: length}
}

func TestLoadLayers(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	weekdays := [7]bool{false, true, true, true, true, true, false}
	tests := []struct {
		name  string
		files map[string]string
		read  []string
		want  func(c *Config) // edits to Default()
	}{
		{
			name: "no files at all: defaults",
			want: func(c *Config) {},
		},
		{
			name: "admin file wins key by key over vendor file",
			files: map[string]string{
				"usr/update.toml": "[check]\ninterval = \"12h\"\njitter = \"5m\"\n",
				"etc/update.toml": "[check]\njitter = \"10m\"\n",
			},
			read: []string{"usr/update.toml", "etc/update.toml"},
			want: func(c *Config) { c.Check.Interval = 12 * time.Hour; c.Check.Jitter = 10 * time.Minute },
		},
		{
			name: "order: vendor, vendor drop-ins, admin, admin drop-ins; lexical in a directory",
			files: map[string]string{
				"usr/update.toml":        "[reboot]\ndelay = \"1m\"\nmin_gap = \"1h\"\njitter = \"1m\"\npostpone = \"1m\"\n",
				"usr/update.d/20-b.toml": "[reboot]\ndelay = \"3m\"\n",
				"usr/update.d/10-a.toml": "[reboot]\ndelay = \"2m\"\nmin_gap = \"2h\"\n",
				"etc/update.toml":        "[reboot]\nmin_gap = \"3h\"\njitter = \"3m\"\n",
				"etc/update.d/05-z.toml": "[reboot]\njitter = \"4m\"\n",
			},
			read: []string{"usr/update.toml", "usr/update.d/10-a.toml", "usr/update.d/20-b.toml", "etc/update.toml", "etc/update.d/05-z.toml"},
			want: func(c *Config) {
				c.Reboot.Delay, c.Reboot.MinGap = 3*time.Minute, 3*time.Hour
				c.Reboot.Jitter, c.Reboot.Postpone = 4*time.Minute, time.Minute
			},
		},
		{
			name: "an admin drop-in masks the vendor drop-in of the same name",
			files: map[string]string{
				"usr/update.d/50-site.toml": "[snapshots]\nkeep = 9\n[health]\nmax_attempts = 5\n",
				"etc/update.d/50-site.toml": "[snapshots]\nkeep = 4\n",
			},
			read: []string{"etc/update.d/50-site.toml"},
			want: func(c *Config) { c.Snapshots.Keep = 4 },
		},
		{
			name: "an empty admin drop-in masks everything of its vendor twin",
			files: map[string]string{
				"usr/update.d/50-site.toml": "[health]\nmax_attempts = 5\n",
				"etc/update.d/50-site.toml": "",
			},
			read: []string{"etc/update.d/50-site.toml"},
			want: func(c *Config) {},
		},
		{
			name: "non-toml and hidden files in update.d are ignored",
			files: map[string]string{
				"etc/update.d/a.toml.bak":     "[snapshots]\nkeep = 7\n",
				"etc/update.d/.b.toml":        "[snapshots]\nkeep = 8\n",
				"etc/update.d/README":         "not toml",
				"etc/update.d/c.toml":         "[snapshots]\nkeep = 1\n",
				"etc/update.d/sub/d.toml":     "[snapshots]\nkeep = 2\n",
				"usr/update.d/other.conf.old": "garbage",
			},
			read: []string{"etc/update.d/c.toml"},
			want: func(c *Config) { c.Snapshots.Keep = 1 },
		},
		{
			name: "a later [[reboot.window]] list replaces the earlier list as a whole",
			files: map[string]string{
				"usr/update.toml": "[[reboot.window]]\ndays = \"Sun\"\nstart = \"03:00\"\nlength = \"2h\"\n" +
					"[[reboot.window]]\ndays = \"Wed\"\nstart = \"04:00\"\nlength = \"1h\"\n",
				"etc/update.toml": "[[reboot.window]]\ndays = \"Mon..Fri\"\nstart = \"22:30\"\nlength = \"90m\"\n",
			},
			read: []string{"usr/update.toml", "etc/update.toml"},
			want: func(c *Config) {
				c.Reboot.Schedule.Windows = []window.Window{{Days: weekdays, Start: 22*60 + 30, Length: 90 * time.Minute}}
			},
		},
		{
			name: "inline array of tables works the same",
			files: map[string]string{
				"etc/update.toml": "[reboot]\nwindow = [{days = \"Sun\", start = \"01:00\", length = \"1h\"}, {days = \"daily\", start = \"23:00\", length = \"3h\"}]\n",
			},
			read: []string{"etc/update.toml"},
			want: func(c *Config) {
				c.Reboot.Schedule.Windows = []window.Window{sunday(60, time.Hour),
					{Days: [7]bool{true, true, true, true, true, true, true}, Start: 23 * 60, Length: 3 * time.Hour}}
			},
		},
		{
			name: "an empty window list is fine with the manual strategy",
			files: map[string]string{
				"etc/update.toml": "[reboot]\nstrategy = \"manual\"\nwindow = []\n",
			},
			read: []string{"etc/update.toml"},
			want: func(c *Config) { c.Reboot.Strategy = StrategyManual; c.Reboot.Schedule.Windows = nil },
		},
		{
			name: "arrays replace: critical_units and blackout",
			files: map[string]string{
				"usr/update.toml": "[health]\ncritical_units = [\"a.service\", \"b.service\"]\n[reboot]\nblackout = [\"2026-12-24\"]\n",
				"etc/update.toml": "[health]\ncritical_units = [\"c.socket\"]\n[reboot]\nblackout = [\"2026-12-31..2027-01-01\", \"2026-05-01\"]\n",
			},
			read: []string{"usr/update.toml", "etc/update.toml"},
			want: func(c *Config) {
				c.Health.CriticalUnits = []string{"c.socket"}
				c.Reboot.Schedule.Blackouts = []window.Date{{Year: 2026, Month: 12, Day: 31}, {Year: 2027, Month: 1, Day: 1}, {Year: 2026, Month: 5, Day: 1}}
			},
		},
		{
			name: "dotted keys, time zone, booleans, strings, integers",
			files: map[string]string{
				"etc/update.toml": "reboot.timezone = \"Europe/Berlin\"\nreboot.respect_users = false\n" +
					"metrics.listen = \"127.0.0.1:9846\"\nhealth.dir = \"/srv/health\"\nhealth.max_attempts = 3\n" +
					"reboot.wall_message = \"bye\"\nreboot.strategy = \"immediate\"\n",
			},
			read: []string{"etc/update.toml"},
			want: func(c *Config) {
				c.Reboot.Schedule.Location = berlin
				c.Reboot.RespectUsers = false
				c.Metrics.Listen = "127.0.0.1:9846"
				c.Health.Dir = "/srv/health"
				c.Health.MaxAttempts = 3
				c.Reboot.WallMessage = "bye"
				c.Reboot.Strategy = StrategyImmediate
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, root := tree(t, tt.files)
			got, read, err := Load(p)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config:\n got %+v\nwant %+v", got, want)
			}
			var wantRead []string
			for _, r := range tt.read {
				wantRead = append(wantRead, filepath.Join(root, r))
			}
			if !reflect.DeepEqual(read, wantRead) {
				t.Errorf("files read:\n got %q\nwant %q", read, wantRead)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "syntax error carries line and column",
			files: map[string]string{"etc/update.toml": "[check]\ninterval = \"24h\"\njitter = 1h\n"},
			want:  []string{`etc/update.toml:3:11: expected a top-level item to end with a newline, comment, or EOF, but got 'h' instead`},
		},
		{
			name:  "duplicate key is a syntax error",
			files: map[string]string{"etc/update.toml": "[snapshots]\nkeep = 1\nkeep = 2\n"},
			want:  []string{`etc/update.toml:3:1: Key 'snapshots.keep' has already been defined.`},
		},
		{
			name:  "container patch keys",
			files: map[string]string{"etc/update.toml": "[containers]\npatch = \"sometimes\"\npatch_keep = 0\npatch_lock_timeout = \"-1s\"\n"},
			want: []string{
				`etc/update.toml:2: containers.patch: "sometimes" is not a patch policy (use "auto", "security", "notify", "off")`,
				`etc/update.toml:3: containers.patch_keep: must be at least 1 (the last patch's rollback point), not 0`,
				`etc/update.toml:4: containers.patch_lock_timeout: must be at least 0s, not "-1s"`,
			},
		},
		{
			name:  "unknown key with suggestion",
			files: map[string]string{"etc/update.toml": "[check]\n\nintervall = \"1h\"\n"},
			want:  []string{`etc/update.toml:3: check.intervall: unknown key; did you mean "check.interval"?`},
		},
		{
			name:  "unknown section with suggestion",
			files: map[string]string{"etc/update.toml": "# c\n[rebot]\nstrategy = \"manual\"\n"},
			want:  []string{`etc/update.toml:2: rebot: unknown key; did you mean "reboot"?`},
		},
		{
			name:  "key in the wrong section",
			files: map[string]string{"etc/update.toml": "[reboot]\ninterval = \"1h\"\n"},
			want:  []string{`etc/update.toml:2: reboot.interval: unknown key; did you mean "check.interval"?`},
		},
		{
			name:  "dash for underscore",
			files: map[string]string{"etc/update.toml": "[reboot]\nmin-gap = \"1h\"\n"},
			want:  []string{`etc/update.toml:2: reboot.min-gap: unknown key; did you mean "reboot.min_gap"?`},
		},
		{
			name:  "unknown key without a close one",
			files: map[string]string{"etc/update.toml": "colour = \"blue\"\n"},
			want:  []string{`etc/update.toml:1: colour: unknown key`},
		},
		{
			name: "unknown key in the second window",
			files: map[string]string{"etc/update.toml": "[[reboot.window]]\ndays = \"Sun\"\nstart = \"03:00\"\nlength = \"2h\"\n" +
				"[[reboot.window]]\ndays = \"Sat\"\nstart = \"03:00\"\nlenght = \"2h\"\n"},
			want: []string{
				`etc/update.toml:5: reboot.window[1].length: missing (a window needs days, start and length)`,
				`etc/update.toml:8: reboot.window[1].lenght: unknown key; did you mean "reboot.window[1].length"?`,
			},
		},
		{
			name: "bad start in the second window names its line",
			files: map[string]string{"etc/update.toml": "[[reboot.window]]\ndays = \"Sun\"\nstart = \"03:00\"\nlength = \"2h\"\n\n" +
				"[[reboot.window]]\ndays = \"Sat\"\nstart = \"25:00\"\nlength = \"2h\"\n"},
			want: []string{`etc/update.toml:8: reboot.window[1].start: "25:00" is not a time of day (use HH:MM, 00:00-23:59)`},
		},
		{
			name:  "bad days in an inline window",
			files: map[string]string{"etc/update.toml": "[reboot]\nwindow = [\n  {days = \"Sun\", start = \"03:00\", length = \"2h\"},\n  {days = \"Sundays\", start = \"03:00\", length = \"2h\"},\n]\n"},
			want:  []string{`etc/update.toml:4: reboot.window[1].days: "Sundays" is not a set of days (use e.g. "Sun", "Mon..Fri", "Sat,Sun" or "daily")`},
		},
		{
			name: "window length zero and over a week",
			files: map[string]string{"etc/update.toml": "[[reboot.window]]\ndays = \"Sun\"\nstart = \"03:00\"\nlength = \"0s\"\n" +
				"[[reboot.window]]\ndays = \"Sat\"\nstart = \"03:00\"\nlength = \"169h\"\n"},
			want: []string{
				`etc/update.toml:4: reboot.window[0].length: must be positive, not "0s"`,
				`etc/update.toml:8: reboot.window[1].length: "169h" is longer than a week (168h at most)`,
			},
		},
		{
			name:  "window written as a plain table",
			files: map[string]string{"etc/update.toml": "[reboot.window]\ndays = \"Sun\"\n"},
			want:  []string{`etc/update.toml:1: reboot.window: must be an array of tables ([[reboot.window]]), found table`},
		},
		{
			name:  "empty window list with the periodic strategy",
			files: map[string]string{"usr/update.toml": "[reboot]\nstrategy = \"periodic\"\n", "etc/update.toml": "[reboot]\n\nwindow = []\n"},
			want:  []string{`etc/update.toml:3: reboot.window: strategy "periodic" needs at least one [[reboot.window]] (or set reboot.strategy = "manual")`},
		},
		{
			name: "wrong types",
			files: map[string]string{"etc/update.toml": "[check]\ninterval = 24\n[reboot]\nrespect_users = \"yes\"\nstrategy = 1\n" +
				"[health]\nmax_attempts = 2.5\ncritical_units = \"dbus.service\"\n[snapshots]\nkeep = \"3\"\n"},
			want: []string{
				`etc/update.toml:2: check.interval: must be a duration string such as "24h" or "90m", found integer 24`,
				`etc/update.toml:4: reboot.respect_users: must be true or false, found string`,
				`etc/update.toml:5: reboot.strategy: must be a string, found integer 1`,
				`etc/update.toml:7: health.max_attempts: must be an integer, found float 2.5`,
				`etc/update.toml:8: health.critical_units: must be an array of strings, found string`,
				`etc/update.toml:10: snapshots.keep: must be an integer, found string`,
			},
		},
		{
			name:  "section that is not a table",
			files: map[string]string{"etc/update.toml": "check = \"daily\"\n"},
			want:  []string{`etc/update.toml:1: check: must be a table ([check]), found string`},
		},
		{
			name:  "element of a multi-line array",
			files: map[string]string{"etc/update.toml": "[health]\ncritical_units = [\n  \"dbus.service\",\n  \"dbus\",\n  7,\n]\n"},
			want: []string{
				`etc/update.toml:5: health.critical_units[2]: must be a string, found integer 7`,
			},
		},
		{
			name:  "bad unit name",
			files: map[string]string{"etc/update.toml": "[health]\ncritical_units = [\n  \"dbus.service\",\n  \"dbus\",\n]\n"},
			want:  []string{`etc/update.toml:4: health.critical_units[1]: "dbus" is not a systemd unit name (e.g. "dbus.service")`},
		},
		{
			name: "durations: unparsable, days, negative, zero, too short",
			files: map[string]string{"etc/update.toml": "[check]\ninterval = \"30s\"\njitter = \"-1h\"\n[reboot]\ndelay = \"2 minutes\"\nmin_gap = \"7d\"\n" +
				"postpone = \"-5m\"\n[health]\ntimeout = \"0s\"\n"},
			want: []string{
				`etc/update.toml:2: check.interval: must be at least 1m, not "30s"`,
				`etc/update.toml:3: check.jitter: must not be negative, not "-1h"`,
				`etc/update.toml:5: reboot.delay: "2 minutes" is not a duration (use a number and a unit: "90m", "24h", "1h30m")`,
				`etc/update.toml:6: reboot.min_gap: "7d" is not a duration (there is no "d" unit: write days as hours, e.g. "168h")`,
				`etc/update.toml:7: reboot.postpone: must not be negative, not "-5m"`,
				`etc/update.toml:9: health.timeout: must be at least 1s, not "0s"`,
			},
		},
		{
			name:  "unknown strategy",
			files: map[string]string{"etc/update.toml": "[reboot]\nstrategy = \"weekly\"\n"},
			want:  []string{`etc/update.toml:2: reboot.strategy: "weekly" is not a strategy (use "periodic", "immediate", "manual")`},
		},
		{
			name:  "bad time zone",
			files: map[string]string{"etc/update.toml": "[reboot]\ntimezone = \"Europe/Berlinn\"\n"},
			want:  []string{`etc/update.toml:2: reboot.timezone: "Europe/Berlinn" is not a known time zone (use an IANA name such as "Europe/Berlin", or "" for the host's local time)`},
		},
		{
			name:  "bad blackout",
			files: map[string]string{"etc/update.toml": "[reboot]\nblackout = [\"2026-12-24\", \"2026-13-01\",\n  \"2027-01-02..2027-01-01\", \"24.12.2026\"]\n"},
			want: []string{
				`etc/update.toml:2: reboot.blackout[1]: date "2026-13-01": no such day`,
				`etc/update.toml:3: reboot.blackout[2]: blackout "2027-01-02..2027-01-01": ends before it starts`,
				`etc/update.toml:3: reboot.blackout[3]: date "24.12.2026": use YYYY-MM-DD, e.g. 2026-12-24`,
			},
		},
		{
			name:  "max_attempts, keep, paths, listen",
			files: map[string]string{"etc/update.toml": "[health]\nmax_attempts = 0\ndir = \"health.d\"\n[metrics]\nsocket = \"\"\nlisten = \"9846\"\n[snapshots]\nkeep = -1\n"},
			want: []string{
				`etc/update.toml:2: health.max_attempts: must be at least 1, not 0`,
				`etc/update.toml:3: health.dir: "health.d" is not an absolute path`,
				`etc/update.toml:5: metrics.socket: "" is not an absolute path`,
				`etc/update.toml:6: metrics.listen: "9846" is not a TCP address (use host:port, e.g. "127.0.0.1:9846", or "" for none)`,
				`etc/update.toml:8: snapshots.keep: must not be negative, not -1`,
			},
		},
		{
			name:  "integer out of range",
			files: map[string]string{"etc/update.toml": "[snapshots]\nkeep = 99999999999\n"},
			want:  []string{`etc/update.toml:2: snapshots.keep: 99999999999 is out of range`},
		},
		{
			name: "all problems of all files, in file order; a broken file does not stop the others",
			files: map[string]string{
				"usr/update.d/10-a.toml": "[check]\njitter = \"x\"\n",
				"etc/update.toml":        "[check\n",
				"etc/update.d/20-b.toml": "[snapshots]\nkeeep = 1\n",
			},
			want: []string{
				`usr/update.d/10-a.toml:2: check.jitter: "x" is not a duration (use a number and a unit: "90m", "24h", "1h30m")`,
				`etc/update.toml:1:7: expected '.' or ']' to end table name, but got '\n' instead`,
				`etc/update.d/20-b.toml:2: snapshots.keeep: unknown key; did you mean "snapshots.keep"?`,
			},
		},
		{
			name: "a range error is reported where the value in force was set",
			files: map[string]string{
				"usr/update.toml":        "[health]\nmax_attempts = 0\n",
				"etc/update.d/50-x.toml": "\n\n[health]\nmax_attempts = -3\n",
			},
			want: []string{`etc/update.d/50-x.toml:4: health.max_attempts: must be at least 1, not -3`},
		},
		{
			name:  "missing window keys, and a bad one beside them",
			files: map[string]string{"etc/update.toml": "\n[[reboot.window]]\ndays = \"Sun-Mon\"\n"},
			want: []string{
				`etc/update.toml:2: reboot.window[0].length: missing (a window needs days, start and length)`,
				`etc/update.toml:2: reboot.window[0].start: missing (a window needs days, start and length)`,
				`etc/update.toml:3: reboot.window[0].days: "Sun-Mon" is not a set of days (use e.g. "Sun", "Mon..Fri", "Sat,Sun" or "daily")`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, root := tree(t, tt.files)
			c, _, err := Load(p)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Load returned a config with its error: %+v", c)
			}
			got := messages(err, root)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadErrorCauses(t *testing.T) {
	p, _ := tree(t, map[string]string{
		"etc/update.toml":        "[check\n",
		"etc/update.d/a.toml":    "[reboot]\nstart = 1\n",
		"etc/update.d/b.toml":    "[[reboot.window]]\ndays = \"Sun\"\nstart = \"3\"\nlength = \"1h\"\n",
		"etc/update.d/c.toml/x":  "",
		"usr/update.d/keep.toml": "",
	})
	_, read, err := Load(p)
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.Message == "" {
		t.Errorf("no toml.ParseError in %v", err)
	}
	if !errors.Is(err, window.ErrInvalid) {
		t.Errorf("window parse error not wrapped: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("no *Error in %v", err)
	}
	// c.toml is a directory: reported, not read.
	found := false
	for _, e := range Problems(err) {
		if strings.HasSuffix(e.File, "c.toml") && e.Line == 0 && strings.Contains(e.Msg, "cannot read") {
			found = true
		}
	}
	if !found {
		t.Errorf("unreadable c.toml not reported: %v", err)
	}
	if len(read) != 4 {
		t.Errorf("read %q, want 4 files", read)
	}
}

func TestLoadUnreadableDropinDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any directory")
	}
	p, _ := tree(t, map[string]string{"etc/update.d/a.toml": ""})
	dir := filepath.Join(p.Admin, "update.d")
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	_, _, err := Load(p)
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("want a permission error, got %v", err)
	}
	if got := Problems(err); len(got) != 1 || got[0].File != dir {
		t.Errorf("problems %v, want one naming %s", got, dir)
	}
}
