package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/speedia/host/updater/window"
)

// setter parses v (the value of key as the TOML parser gave it) into c. It
// reports false, after recording the problem, when v is unusable; c then
// keeps the value of the earlier layer.
type setter func(d *decoder, c *Config, key string, v any) bool

// schema is every known key: section -> key -> setter. Ranges and
// cross-checks are Validate's job; setters only parse.
var schema = map[string]map[string]setter{
	"check": {
		"interval": func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Check.Interval) },
		"jitter":   func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Check.Jitter) },
	},
	"reboot": {
		"strategy": func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Reboot.Strategy) },
		"timezone": func(d *decoder, c *Config, k string, v any) bool {
			return d.location(k, v, &c.Reboot.Schedule.Location)
		},
		"delay":              func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Reboot.Delay) },
		"min_gap":            func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Reboot.MinGap) },
		"jitter":             func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Reboot.Jitter) },
		"postpone":           func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Reboot.Postpone) },
		"respect_inhibitors": func(d *decoder, c *Config, k string, v any) bool { return d.boolean(k, v, &c.Reboot.RespectInhibitors) },
		"respect_users":      func(d *decoder, c *Config, k string, v any) bool { return d.boolean(k, v, &c.Reboot.RespectUsers) },
		"wall_message":       func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Reboot.WallMessage) },
		"blackout": func(d *decoder, c *Config, k string, v any) bool {
			return d.blackouts(k, v, &c.Reboot.Schedule.Blackouts)
		},
		"window": func(d *decoder, c *Config, k string, v any) bool { return d.windows(k, v, &c.Reboot.Schedule.Windows) },
	},
	"health": {
		"timeout":        func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Health.Timeout) },
		"dir":            func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Health.Dir) },
		"critical_units": func(d *decoder, c *Config, k string, v any) bool { return d.strs(k, v, &c.Health.CriticalUnits) },
		"max_attempts":   func(d *decoder, c *Config, k string, v any) bool { return d.integer(k, v, &c.Health.MaxAttempts) },
	},
	"metrics": {
		"socket": func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Metrics.Socket) },
		"listen": func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Metrics.Listen) },
	},
	"snapshots": {
		"keep": func(d *decoder, c *Config, k string, v any) bool { return d.integer(k, v, &c.Snapshots.Keep) },
	},
	"containers": {
		"enabled":      func(d *decoder, c *Config, k string, v any) bool { return d.boolean(k, v, &c.Containers.Enabled) },
		"socket":       func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Containers.Socket) },
		"settle":       func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Containers.Settle) },
		"timeout":      func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Containers.Timeout) },
		"parallel":     func(d *decoder, c *Config, k string, v any) bool { return d.integer(k, v, &c.Containers.Parallel) },
		"keep":         func(d *decoder, c *Config, k string, v any) bool { return d.duration(k, v, &c.Containers.Keep) },
		"auto_upgrade": func(d *decoder, c *Config, k string, v any) bool { return d.boolean(k, v, &c.Containers.AutoUpgrade) },
		"patch":        func(d *decoder, c *Config, k string, v any) bool { return d.str(k, v, &c.Containers.Patch) },
		"patch_keep":   func(d *decoder, c *Config, k string, v any) bool { return d.integer(k, v, &c.Containers.PatchKeep) },
		"patch_lock_timeout": func(d *decoder, c *Config, k string, v any) bool {
			return d.duration(k, v, &c.Containers.PatchLockTimeout)
		},
	},
}

var windowKeys = []string{"days", "start", "length"}

// allKeys lists sections and section.key names, for suggestions.
func allKeys() []string {
	var keys []string
	for _, s := range sortedKeys(schema) {
		keys = append(keys, s)
		for _, k := range sortedKeys(schema[s]) {
			keys = append(keys, s+"."+k)
		}
	}
	return keys
}

func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %g", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case time.Time:
		return "date/time"
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

func (d *decoder) str(key string, v any, dst *string) bool {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a string, found %s", typeName(v))
		return false
	}
	if !d.fits(key, s) {
		return false
	}
	*dst = s
	return true
}

func (d *decoder) boolean(key string, v any, dst *bool) bool {
	b, ok := v.(bool)
	if !ok {
		d.errorf(key, "must be true or false, found %s", typeName(v))
		return false
	}
	*dst = b
	return true
}

func (d *decoder) integer(key string, v any, dst *int) bool {
	n, ok := v.(int64)
	if !ok {
		d.errorf(key, "must be an integer, found %s", typeName(v))
		return false
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		d.errorf(key, "%d is out of range", n)
		return false
	}
	*dst = int(n)
	return true
}

func (d *decoder) duration(key string, v any, dst *time.Duration) bool {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a duration string such as \"24h\" or \"90m\", found %s", typeName(v))
		return false
	}
	if !d.fitsShort(key, s) {
		return false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		hint := `use a number and a unit: "90m", "24h", "1h30m"`
		if strings.HasSuffix(s, "d") {
			hint = `there is no "d" unit: write days as hours, e.g. "168h"`
		}
		d.wrapf(err, key, "%s is not a duration (%s)", quote(s), hint)
		return false
	}
	*dst = dur
	return true
}

func (d *decoder) location(key string, v any, dst **time.Location) bool {
	var name string
	if !d.str(key, v, &name) {
		return false
	}
	if name == "" {
		*dst = time.Local
		return true
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		d.wrapf(err, key, "%s is not a known time zone (use an IANA name such as \"Europe/Berlin\", or \"\" for the host's local time)", quote(name))
		return false
	}
	*dst = loc
	return true
}

// list returns the elements of an array value; nil, false if v is not one.
func list(v any) ([]any, bool) {
	switch v := v.(type) {
	case []any:
		return v, true
	case []map[string]any:
		out := make([]any, len(v))
		for i, t := range v {
			out[i] = t
		}
		return out, true
	}
	return nil, false
}

func (d *decoder) strs(key string, v any, dst *[]string) bool {
	items, ok := list(v)
	if !ok {
		d.errorf(key, "must be an array of strings, found %s", typeName(v))
		return false
	}
	if !d.fewEnough(key, len(items)) {
		return false
	}
	var out []string
	good := true
	for i, item := range items {
		var s string
		if !d.str(indexKey(key, i), item, &s) {
			good = false
		}
		out = append(out, s)
	}
	if good {
		*dst = out
	}
	return good
}

func (d *decoder) blackouts(key string, v any, dst *[]window.Date) bool {
	var items []string
	if !d.strs(key, v, &items) {
		return false
	}
	var out []window.Date
	good := true
	for i, s := range items {
		days, err := window.ParseBlackout(s)
		if err != nil {
			// window's messages say what is wrong: format, no such day, order, length.
			d.wrapf(err, indexKey(key, i), "%v", err)
			good = false
		}
		out = append(out, days...)
	}
	if good {
		*dst = out
	}
	return good
}

func (d *decoder) windows(key string, v any, dst *[]window.Window) bool {
	items, ok := list(v)
	if !ok {
		d.errorf(key, "must be an array of tables ([[%s]]), found %s", key, typeName(v))
		return false
	}
	if !d.fewEnough(key, len(items)) {
		return false
	}
	var out []window.Window
	good := true
	for i, item := range items {
		w, ok := d.window(indexKey(key, i), item)
		good = good && ok
		out = append(out, w)
	}
	if good {
		*dst = out
	}
	return good
}

func (d *decoder) window(key string, v any) (window.Window, bool) {
	var w window.Window
	t, ok := v.(map[string]any)
	if !ok {
		d.errorf(key, "must be a table with days, start and length, found %s", typeName(v))
		return w, false
	}
	good := true
	for _, k := range sortedKeys(t) {
		if !slices.Contains(windowKeys, k) {
			cands := make([]string, len(windowKeys))
			for i, wk := range windowKeys {
				cands[i] = key + "." + wk
			}
			d.unknown(joinKey(key, k), cands)
			good = false
		}
	}
	for _, k := range windowKeys {
		if _, ok := t[k]; !ok {
			d.errorf(key+"."+k, "missing (a window needs days, start and length)")
			good = false
		}
	}
	var days, start string
	if v, ok := t["days"]; ok && d.str(key+".days", v, &days) {
		var err error
		if w.Days, err = window.ParseDays(days); err != nil {
			d.wrapf(err, key+".days", "%s is not a set of days (use e.g. \"Sun\", \"Mon..Fri\", \"Sat,Sun\" or \"daily\")", quote(days))
			good = false
		}
	} else {
		good = false
	}
	if v, ok := t["start"]; ok && d.str(key+".start", v, &start) {
		var err error
		if w.Start, err = window.ParseClock(start); err != nil {
			d.wrapf(err, key+".start", "%s is not a time of day (use HH:MM, 00:00-23:59)", quote(start))
			good = false
		}
	} else {
		good = false
	}
	if v, ok := t["length"]; !ok || !d.duration(key+".length", v, &w.Length) {
		good = false
	}
	return w, good
}
