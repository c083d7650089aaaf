package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/speedia/host/updater/atomicfile"
	"github.com/speedia/host/updater/window"
)

// The last good configuration is written in the update.toml format itself,
// so LoadGood is the same parser and validation as Load, and an admin can
// read (and diff) what the daemon ran with.

const goodHeader = "# Written by speedia-updated: the last configuration that loaded without errors.\n" +
	"# Used when the configuration files are invalid. Do not edit.\n\n"

// SaveGood writes c to path atomically: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced.
func SaveGood(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("save good config: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(goodHeader)
	if err := toml.NewEncoder(&buf).Encode(document(c)); err != nil {
		return fmt.Errorf("save good config: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("save good config: %w", err)
	}
	return nil
}

// LoadGood reads a file written by SaveGood and validates it again. A
// missing file is an error that matches fs.ErrNotExist.
func LoadGood(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, &Error{File: path, Msg: "no last good configuration", err: err}
		}
		return Config{}, &Error{File: path, Msg: "cannot read: " + errText(err), err: err}
	}
	return load(Default(), []source{{name: path, data: data}})
}

// document is c in the shape of update.toml.
func document(c Config) map[string]any {
	r := c.Reboot
	tz := ""
	if loc := r.Schedule.Location; loc != nil && loc != time.Local {
		tz = loc.String()
	}
	windows := []map[string]any{}
	for _, w := range r.Schedule.Windows {
		windows = append(windows, map[string]any{
			"days":   window.FormatDays(w.Days),
			"start":  w.Start.String(),
			"length": formatDuration(w.Length),
		})
	}
	blackout := []string{}
	if len(r.Schedule.Blackouts) > 0 {
		blackout = strings.Split(window.FormatBlackouts(r.Schedule.Blackouts), ", ")
	}
	units := c.Health.CriticalUnits
	if units == nil {
		units = []string{}
	}
	return map[string]any{
		"check": map[string]any{
			"interval": formatDuration(c.Check.Interval),
			"jitter":   formatDuration(c.Check.Jitter),
		},
		"reboot": map[string]any{
			"strategy":           r.Strategy,
			"timezone":           tz,
			"delay":              formatDuration(r.Delay),
			"min_gap":            formatDuration(r.MinGap),
			"jitter":             formatDuration(r.Jitter),
			"postpone":           formatDuration(r.Postpone),
			"respect_inhibitors": r.RespectInhibitors,
			"respect_users":      r.RespectUsers,
			"wall_message":       r.WallMessage,
			"blackout":           blackout,
			"window":             windows,
		},
		"health": map[string]any{
			"timeout":        formatDuration(c.Health.Timeout),
			"dir":            c.Health.Dir,
			"critical_units": units,
			"max_attempts":   c.Health.MaxAttempts,
		},
		"metrics": map[string]any{
			"socket": c.Metrics.Socket,
			"listen": c.Metrics.Listen,
		},
		"snapshots": map[string]any{
			"keep": c.Snapshots.Keep,
		},
		"containers": map[string]any{
			"enabled":            c.Containers.Enabled,
			"socket":             c.Containers.Socket,
			"settle":             formatDuration(c.Containers.Settle),
			"timeout":            formatDuration(c.Containers.Timeout),
			"parallel":           c.Containers.Parallel,
			"keep":               formatDuration(c.Containers.Keep),
			"auto_upgrade":       c.Containers.AutoUpgrade,
			"patch":              c.Containers.Patch,
			"patch_keep":         c.Containers.PatchKeep,
			"patch_lock_timeout": formatDuration(c.Containers.PatchLockTimeout),
		},
	}
}
