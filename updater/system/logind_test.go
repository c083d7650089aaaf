package system

import (
	"reflect"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

func TestBlockers(t *testing.T) {
	const self = 42
	all := []inhibitor{
		{What: "shutdown", Who: "backup", Why: "copying", Mode: "block", UID: 0, PID: 100},
		{What: "sleep:shutdown:idle", Who: "editor", Why: "unsaved", Mode: "block", UID: 1000, PID: 101},
		{What: "shutdown", Who: "ModemManager", Why: "tidy up", Mode: "delay", PID: 102},
		{What: "sleep", Who: "gnome", Why: "lock screen", Mode: "block", PID: 103},
		{What: "handle-power-key:shutdownish", Who: "odd", Mode: "block", PID: 104},
		{What: "shutdown", Who: Identifier, Why: "staging", Mode: "block", PID: self},
	}
	want := []Blocker{
		{Who: "backup", Why: "copying", What: "shutdown", PID: 100, UID: 0},
		{Who: "editor", Why: "unsaved", What: "sleep:shutdown:idle", PID: 101, UID: 1000},
	}
	if got := blockers(all, self); !reflect.DeepEqual(got, want) {
		t.Fatalf("blockers:\n got %+v\nwant %+v", got, want)
	}
	if got := blockers(nil, self); got != nil {
		t.Fatalf("blockers(nil) = %+v", got)
	}
}

func TestScheduledReboot(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, tc := range []struct {
		in   scheduled
		ok   bool
		want time.Time
	}{
		{scheduled{"reboot", uint64(at.UnixMicro())}, true, at},
		{scheduled{"dry-reboot", uint64(at.UnixMicro())}, true, at},
		{scheduled{"poweroff", uint64(at.UnixMicro())}, false, time.Time{}},
		{scheduled{"", 0}, false, time.Time{}},
		{scheduled{"reboot", 0}, false, time.Time{}},
	} {
		got, ok := tc.in.reboot()
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%+v.reboot() = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUserSession(t *testing.T) {
	l := listed{ID: "3", UID: 1000, User: "ada", Path: "/org/freedesktop/login1/session/_33"}
	for _, tc := range []struct {
		name  string
		props map[string]dbus.Variant
		ok    bool
		want  Session
	}{
		{"local tty", map[string]dbus.Variant{"Class": dbus.MakeVariant("user"), "State": dbus.MakeVariant("active"), "TTY": dbus.MakeVariant("tty1"), "Remote": dbus.MakeVariant(false)},
			true, Session{ID: "3", User: "ada", TTY: "tty1", UID: 1000}},
		{"ssh", map[string]dbus.Variant{"Class": dbus.MakeVariant("user"), "State": dbus.MakeVariant("online"), "TTY": dbus.MakeVariant("pts/0"), "Remote": dbus.MakeVariant(true), "RemoteHost": dbus.MakeVariant("10.0.0.9")},
			true, Session{ID: "3", User: "ada", TTY: "pts/0", Remote: "10.0.0.9", UID: 1000}},
		{"remote without host", map[string]dbus.Variant{"Class": dbus.MakeVariant("user"), "State": dbus.MakeVariant("active"), "Remote": dbus.MakeVariant(true)},
			true, Session{ID: "3", User: "ada", Remote: "unknown host", UID: 1000}},
		{"closing", map[string]dbus.Variant{"Class": dbus.MakeVariant("user"), "State": dbus.MakeVariant("closing")}, false, Session{}},
		{"greeter", map[string]dbus.Variant{"Class": dbus.MakeVariant("greeter"), "State": dbus.MakeVariant("active")}, false, Session{}},
		{"manager", map[string]dbus.Variant{"Class": dbus.MakeVariant("manager"), "State": dbus.MakeVariant("active")}, false, Session{}},
		{"no properties", nil, false, Session{}},
	} {
		got, ok := userSession(l, readSessionProps(tc.props))
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHasWord(t *testing.T) {
	for _, tc := range []struct {
		list string
		want bool
	}{
		{"shutdown", true}, {"sleep:shutdown", true}, {"shutdown:idle", true},
		{"sleep", false}, {"", false}, {"shutdowns", false}, {"handle-shutdown", false},
	} {
		if got := hasWord(tc.list, "shutdown"); got != tc.want {
			t.Errorf("hasWord(%q) = %v", tc.list, got)
		}
	}
}

func TestErrName(t *testing.T) {
	if got := errName(dbus.Error{Name: "a.B"}); got != "a.B" {
		t.Errorf("value: %q", got)
	}
	if got := errName(&dbus.Error{Name: "a.C"}); got != "a.C" {
		t.Errorf("pointer: %q", got)
	}
	if got := errName(dbus.ErrClosed); got != "" {
		t.Errorf("other: %q", got)
	}
}
