package client

import (
	"context"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/pkgver"
)

// Status is every property of the daemon, read at once.
type Status struct {
	Phase            string          `json:"phase"`    // idle, checking, staging, pending, rebooting, verifying, rolling-back
	Strategy         string          `json:"strategy"` // periodic, immediate, manual
	Booted           uint32          `json:"booted"`   // snapshot numbers; 0: none
	Pending          uint32          `json:"pending"`
	LastGood         uint32          `json:"last_good"`
	PendingChanges   []pkgver.Change `json:"pending_changes"`
	KernelChanged    bool            `json:"kernel_changed"`
	NextReboot       time.Time       `json:"next_reboot,omitzero"`
	NextRebootReason string          `json:"next_reboot_reason,omitempty"`
	LastCheck        time.Time       `json:"last_check,omitzero"`
	LastCheckResult  string          `json:"last_check_result,omitempty"`
	LastSuccess      time.Time       `json:"last_success,omitzero"`
	NextCheck        time.Time       `json:"next_check,omitzero"`
	Held             bool            `json:"held"`
	HoldReason       string          `json:"hold_reason,omitempty"`
	HoldUntil        time.Time       `json:"hold_until,omitzero"` // zero: until Unhold
	BadUpdates       []Bad           `json:"bad_updates"`
	LastError        string          `json:"last_error,omitempty"`
	ConfigError      string          `json:"config_error,omitempty"`
	RestartNeeded    []string        `json:"restart_needed,omitempty"` // keys that need a daemon restart
}

// Bad is a package set marked bad: it failed after boot and is never staged
// again until cleared.
type Bad struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

// Status reads every property in one GetAll call.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var props map[string]dbus.Variant
	err := c.obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", 0, Interface).Store(&props)
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", mapError(err))
	}
	st, err := decodeStatus(props)
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// decodeStatus fills a Status from GetAll's answer. A property of the wrong
// type is an error; a missing one keeps its zero value (an older daemon).
func decodeStatus(props map[string]dbus.Variant) (Status, error) {
	var st Status
	var micros = map[string]*time.Time{
		"NextReboot":  &st.NextReboot,
		"LastCheck":   &st.LastCheck,
		"LastSuccess": &st.LastSuccess,
		"NextCheck":   &st.NextCheck,
		"HoldUntil":   &st.HoldUntil,
	}
	fields := map[string]any{
		"Phase":            &st.Phase,
		"Strategy":         &st.Strategy,
		"BootedSnapshot":   &st.Booted,
		"PendingSnapshot":  &st.Pending,
		"LastGoodSnapshot": &st.LastGood,
		"KernelChanged":    &st.KernelChanged,
		"NextRebootReason": &st.NextRebootReason,
		"LastCheckResult":  &st.LastCheckResult,
		"Held":             &st.Held,
		"HoldReason":       &st.HoldReason,
		"LastError":        &st.LastError,
		"ConfigError":      &st.ConfigError,
		"RestartNeeded":    &st.RestartNeeded,
	}
	var changes []struct{ Name, Old, New, Kind string }
	var bad []struct{ ID, Summary string }
	fields["PendingChanges"] = &changes
	fields["BadUpdates"] = &bad
	raw := make(map[string]*uint64, len(micros))
	for name := range micros {
		raw[name] = new(uint64)
		fields[name] = raw[name]
	}
	for name, dst := range fields {
		v, ok := props[name]
		if !ok {
			continue
		}
		if err := v.Store(dst); err != nil {
			return Status{}, fmt.Errorf("property %s: %w", name, err)
		}
	}
	for name, t := range micros {
		*t = fromMicros(*raw[name])
	}
	st.PendingChanges = make([]pkgver.Change, 0, len(changes))
	for _, c := range changes {
		st.PendingChanges = append(st.PendingChanges, pkgver.Change{Name: c.Name, Old: c.Old, New: c.New, Kind: c.Kind})
	}
	st.BadUpdates = make([]Bad, 0, len(bad))
	for _, b := range bad {
		st.BadUpdates = append(st.BadUpdates, Bad{ID: b.ID, Summary: b.Summary})
	}
	return st, nil
}
