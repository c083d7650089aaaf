// Package config loads the update daemon's TOML configuration in layers
// (shipped defaults in /usr/lib, admin overrides in /etc, drop-ins in both)
// and validates it into typed settings. Every problem is reported as an
// *Error naming file, line and key.
package config

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/speedia/host/updater/window"
)

// Reboot strategies.
const (
	StrategyPeriodic  = "periodic"  // reboot in a maintenance window
	StrategyImmediate = "immediate" // reboot as soon as an update is staged
	StrategyManual    = "manual"    // stage only; an admin reboots
)

var strategies = []string{StrategyPeriodic, StrategyImmediate, StrategyManual}

// MinCheckInterval is the shortest check.interval accepted: checking more
// often only loads the mirrors.
const MinCheckInterval = time.Minute

// Config is the validated configuration of speedia-updated.
type Config struct {
	Check      Check
	Reboot     Reboot
	Health     Health
	Metrics    Metrics
	Snapshots  Snapshots
	Containers Containers
}

// Check says when to look for updates.
type Check struct {
	Interval time.Duration // between two checks
	Jitter   time.Duration // random delay added to each check
}

// Reboot says when and how the host reboots into a staged update.
type Reboot struct {
	Strategy string          // one of the Strategy constants
	Schedule window.Schedule // windows, time zone (never nil) and blackout days
	Delay    time.Duration   // warning (wall message) between scheduling and rebooting
	MinGap   time.Duration   // at least this long between two update reboots
	Jitter   time.Duration   // random offset after the window start
	Postpone time.Duration   // most postponing inside a window for inhibitors or users

	RespectInhibitors bool
	RespectUsers      bool
	WallMessage       string
}

// Health says how a freshly booted snapshot is judged.
type Health struct {
	Timeout       time.Duration // all checks must pass within this after boot
	Dir           string        // directory of admin health check scripts
	CriticalUnits []string      // units that must be loaded and not failed (see updater/health)
	MaxAttempts   int           // boots of a new snapshot before giving up on it
}

// Metrics says where metrics are served.
type Metrics struct {
	Socket string // root-only unix socket
	Listen string // optional TCP address; "" = none
}

// Containers says how Podman containers are stopped before an update
// reboot, brought back after it and upgraded.
type Containers struct {
	Enabled     bool          // stop and bring back containers around update reboots
	Socket      string        // Podman's API socket
	Settle      time.Duration // a container without a health check must run this long to count as up
	Timeout     time.Duration // per container, to come up healthy
	Parallel    int           // containers started or stopped at once
	Keep        time.Duration // how long an upgrade's old container and data snapshot are kept
	AutoUpgrade bool          // upgrade containers labelled speedia.upgrade=auto after each check
	// Patch is the patch policy of containers without an org.speedia.patch
	// label: one of PatchPolicies.
	Patch            string
	PatchKeep        int           // rollback points kept per container
	PatchLockTimeout time.Duration // wait for a package lock held inside a container
}

// PatchPolicies are the values of containers.patch and of the
// org.speedia.patch label.
var PatchPolicies = []string{"auto", "security", "notify", "off"}

// Snapshots says how many old snapshots cleanup keeps.
type Snapshots struct {
	Keep int
}

// Default is the configuration the product promises: a daily check with an
// hour of jitter, and reboots in one weekly window at night, local time.
// units/update.toml spells out the same values.
func Default() Config {
	return Config{
		Check: Check{Interval: 24 * time.Hour, Jitter: time.Hour},
		Reboot: Reboot{
			Strategy: StrategyPeriodic,
			Schedule: window.Schedule{
				Windows: []window.Window{{
					Days:   [7]bool{time.Sunday: true},
					Start:  window.Clock(3 * 60),
					Length: 2 * time.Hour,
				}},
				Location: time.Local,
			},
			Delay:             2 * time.Minute,
			MinGap:            24 * time.Hour,
			Jitter:            30 * time.Minute,
			Postpone:          30 * time.Minute,
			RespectInhibitors: true,
			RespectUsers:      true,
			WallMessage:       "Speedia host: rebooting into the updated system",
		},
		Health: Health{
			Timeout:       10 * time.Minute,
			Dir:           "/etc/speedia/health.d",
			CriticalUnits: []string{"dbus.service", "systemd-journald.service", "systemd-logind.service"},
			MaxAttempts:   2,
		},
		Metrics:   Metrics{Socket: "/run/speedia/metrics.sock"},
		Snapshots: Snapshots{Keep: 3},
		Containers: Containers{
			Enabled: true, Socket: "/run/podman/podman.sock", Settle: time.Second,
			Timeout: 2 * time.Minute, Parallel: 8, Keep: 72 * time.Hour, AutoUpgrade: true,
			Patch: "security", PatchKeep: 3, PatchLockTimeout: 5 * time.Minute,
		},
	}
}

// Validate checks ranges and how values fit together. It returns all
// problems (errors.Join of *Error with Key set; Load fills in File and Line).
func (c Config) Validate() error {
	var v validator
	over := v.limits(c)
	v.atLeast("check.interval", c.Check.Interval, MinCheckInterval)
	v.notNegative("check.jitter", c.Check.Jitter)

	r := c.Reboot
	if !over["reboot.strategy"] && !slices.Contains(strategies, r.Strategy) {
		v.add("reboot.strategy", "%s is not a strategy (use %s)", quote(r.Strategy), quotedList(strategies))
	}
	if r.Schedule.Location == nil {
		v.add("reboot.timezone", "no time zone")
	}
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"reboot.delay", r.Delay}, {"reboot.min_gap", r.MinGap}, {"reboot.jitter", r.Jitter}, {"reboot.postpone", r.Postpone}} {
		v.notNegative(k.key, k.d)
	}
	if r.Strategy == StrategyPeriodic && len(r.Schedule.Windows) == 0 {
		v.add("reboot.window", "strategy %q needs at least one [[reboot.window]] (or set reboot.strategy = %q)", StrategyPeriodic, StrategyManual)
	}
	for i, w := range r.Schedule.Windows[:min(len(r.Schedule.Windows), MaxList)] {
		key := fmt.Sprintf("reboot.window[%d]", i)
		if w.Days == [7]bool{} {
			v.add(key+".days", "no days")
		}
		if !w.Start.Valid() {
			v.add(key+".start", "%d minutes is not a time of day (use HH:MM, 00:00-23:59)", int(w.Start))
		}
		switch {
		case w.Length <= 0:
			v.add(key+".length", "must be positive, not %q", formatDuration(w.Length))
		case w.Length > window.MaxLength:
			v.add(key+".length", "%q is longer than a week (%s at most)", formatDuration(w.Length), formatDuration(window.MaxLength))
		}
	}
	for i, d := range r.Schedule.Blackouts {
		if !d.Valid() {
			v.add(fmt.Sprintf("reboot.blackout[%d]", i), "%s is not a calendar day", d)
		}
	}

	h := c.Health
	v.atLeast("health.timeout", h.Timeout, time.Second)
	v.absPath("health.dir", h.Dir, over)
	for i, u := range h.CriticalUnits[:min(len(h.CriticalUnits), MaxList)] {
		if key := indexKey("health.critical_units", i); !over[key] && !validUnitName(u) {
			v.add(key, "%s is not a systemd unit name (e.g. \"dbus.service\")", quote(u))
		}
	}
	if h.MaxAttempts < 1 {
		v.add("health.max_attempts", "must be at least 1, not %d", h.MaxAttempts)
	}

	v.absPath("metrics.socket", c.Metrics.Socket, over)
	if l := c.Metrics.Listen; l != "" && !over["metrics.listen"] {
		if _, port, err := net.SplitHostPort(l); err != nil || !validPort(port) {
			v.add("metrics.listen", "%s is not a TCP address (use host:port, e.g. \"127.0.0.1:9846\", or \"\" for none)", quote(l))
		}
	}
	ct := c.Containers
	v.absPath("containers.socket", ct.Socket, over)
	v.notNegative("containers.settle", ct.Settle)
	v.atLeast("containers.timeout", ct.Timeout, time.Second)
	v.atLeast("containers.keep", ct.Keep, 0)
	if ct.Parallel < 1 {
		v.add("containers.parallel", "must be at least 1, not %d", ct.Parallel)
	}
	if !over["containers.patch"] && !slices.Contains(PatchPolicies, ct.Patch) {
		v.add("containers.patch", "%s is not a patch policy (use %s)", quote(ct.Patch), quotedList(PatchPolicies))
	}
	if ct.PatchKeep < 1 {
		v.add("containers.patch_keep", "must be at least 1 (the last patch's rollback point), not %d", ct.PatchKeep)
	}
	v.atLeast("containers.patch_lock_timeout", ct.PatchLockTimeout, 0)
	if c.Snapshots.Keep < 0 {
		v.add("snapshots.keep", "must not be negative, not %d", c.Snapshots.Keep)
	}
	return v.err()
}

type validator struct{ errs []error }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) notNegative(key string, d time.Duration) {
	if d < 0 {
		v.add(key, "must not be negative, not %q", formatDuration(d))
	}
}

func (v *validator) atLeast(key string, d, low time.Duration) {
	if d < low {
		v.add(key, "must be at least %s, not %q", formatDuration(low), formatDuration(d))
	}
}

func (v *validator) absPath(key, p string, over map[string]bool) {
	if !over[key] && !filepath.IsAbs(p) {
		v.add(key, "%s is not an absolute path", quote(p))
	}
}

func (v *validator) err() error { return join(v.errs) }

// unitSuffixes are the systemd unit types whose state can be checked.
var unitSuffixes = []string{".service", ".socket", ".target", ".mount", ".automount", ".swap", ".path", ".timer", ".slice", ".scope", ".device"}

// validUnitName follows systemd's rules loosely: a known suffix, a
// non-empty prefix of name characters, at most 255 bytes.
func validUnitName(u string) bool {
	if len(u) > 255 {
		return false
	}
	i := strings.LastIndexByte(u, '.')
	if i < 1 || !slices.Contains(unitSuffixes, u[i:]) {
		return false
	}
	for _, r := range u[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\@", r)) {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// formatDuration writes d the short way admins write it: "24h", "1h30m".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func quotedList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}
