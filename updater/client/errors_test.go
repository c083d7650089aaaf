package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/pkgver"
)

func TestMapError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	missing := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}
	tests := []struct {
		name     string
		err      error
		want     error // errors.Is target; nil: none of ours
		wantText string
	}{
		{"nothing", dbus.Error{Name: errkind.NothingToDo.DBusName(), Body: []any{"no updates available"}}, errkind.NothingToDo, "no updates available"},
		{"busy pointer", &dbus.Error{Name: errkind.Busy.DBusName(), Body: []any{"staging"}}, errkind.Busy, "staging"},
		{"not found", dbus.Error{Name: errkind.NotFound.DBusName()}, errkind.NotFound, "not found"},
		{"refused", dbus.Error{Name: errkind.Refused.DBusName(), Body: []any{"verifying"}}, errkind.Refused, "verifying"},
		{"invalid", dbus.Error{Name: errkind.Invalid.DBusName(), Body: []any{"bad when"}}, errkind.Invalid, "bad when"},
		{"held", dbus.Error{Name: errkind.Held.DBusName(), Body: []any{"held"}}, errkind.Held, "held"},
		{"bad", dbus.Error{Name: errkind.Bad.DBusName(), Body: []any{"marked bad"}}, errkind.Bad, "marked bad"},
		{"denied hides bus text", dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"Rejected send message, 1 matched rules"}}, errkind.AccessDenied, errkind.AccessDenied.Error()},
		{"service unknown", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name was not provided by any .service files"}}, errkind.NoDaemon, errkind.NoDaemon.Error()},
		{"no owner", dbus.Error{Name: "org.freedesktop.DBus.Error.NameHasNoOwner"}, errkind.NoDaemon, errkind.NoDaemon.Error()},
		{"connection refused", refused, errkind.NoDaemon, "dial unix: connect: connection refused: " + errkind.NoDaemon.Error()},
		{"socket missing", missing, errkind.NoDaemon, "dial unix: connect: no such file or directory: " + errkind.NoDaemon.Error()},
		{"no reply", dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply", Body: []any{"recipient disconnected"}}, nil, "speedia-updated did not answer: recipient disconnected"},
		{"unknown name", dbus.Error{Name: "org.example.Other"}, nil, "org.example.Other"},
		{"plain", errors.New("boom"), nil, "boom"},
	}
	all := []error{errkind.NothingToDo, errkind.Busy, errkind.NotFound, errkind.Refused, errkind.Invalid, errkind.Held, errkind.Bad, errkind.AccessDenied, errkind.NoDaemon}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(fmt.Errorf("wrapped: %w", tt.err))
			for _, s := range all {
				if errors.Is(got, s) != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", got, s, !(s == tt.want))
				}
			}
			if got.Error() != tt.wantText && got.Error() != "wrapped: "+tt.wantText {
				t.Errorf("text %q, want %q", got.Error(), tt.wantText)
			}
		})
	}
	if mapError(nil) != nil {
		t.Error("mapError(nil) != nil")
	}
}

func TestDecodeStatus(t *testing.T) {
	at := time.Date(2026, 11, 29, 2, 17, 0, 0, time.UTC)
	props := map[string]dbus.Variant{
		"Phase":            dbus.MakeVariant("pending"),
		"Strategy":         dbus.MakeVariant("periodic"),
		"BootedSnapshot":   dbus.MakeVariant(uint32(4)),
		"PendingSnapshot":  dbus.MakeVariant(uint32(5)),
		"LastGoodSnapshot": dbus.MakeVariant(uint32(4)),
		"PendingChanges":   dbus.MakeVariant([][]any{{"openssl", "3.0.1", "3.0.2", "upgrade"}, {"new", "", "1", "install"}}),
		"KernelChanged":    dbus.MakeVariant(true),
		"NextReboot":       dbus.MakeVariant(uint64(at.UnixMicro())),
		"NextRebootReason": dbus.MakeVariant("maintenance window Sun 03:00-05:00"),
		"LastCheck":        dbus.MakeVariant(uint64(0)),
		"Held":             dbus.MakeVariant(true),
		"HoldUntil":        dbus.MakeVariant(uint64(at.UnixMicro() + 1)),
		"BadUpdates":       dbus.MakeVariant([][]any{{"abc", "openssl 3.0.3"}}), // as off the wire,
		"ConfigError":      dbus.MakeVariant("line 3: unknown key"),
	}
	st, err := decodeStatus(props)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != "pending" || st.Strategy != "periodic" || st.Booted != 4 || st.Pending != 5 || st.LastGood != 4 ||
		!st.KernelChanged || !st.Held || st.ConfigError != "line 3: unknown key" ||
		st.NextRebootReason != "maintenance window Sun 03:00-05:00" {
		t.Errorf("scalars: %+v", st)
	}
	if !st.NextReboot.Equal(at) || !st.LastCheck.IsZero() || !st.HoldUntil.Equal(at.Add(time.Microsecond)) {
		t.Errorf("times: next %v check %v hold %v", st.NextReboot, st.LastCheck, st.HoldUntil)
	}
	wantCh := []pkgver.Change{{Name: "openssl", Old: "3.0.1", New: "3.0.2", Kind: "upgrade"}, {Name: "new", New: "1", Kind: "install"}}
	if fmt.Sprint(st.PendingChanges) != fmt.Sprint(wantCh) {
		t.Errorf("changes %v", st.PendingChanges)
	}
	if len(st.BadUpdates) != 1 || st.BadUpdates[0] != (Bad{"abc", "openssl 3.0.3"}) {
		t.Errorf("bad %v", st.BadUpdates)
	}

	props["BootedSnapshot"] = dbus.MakeVariant("four")
	if _, err := decodeStatus(props); err == nil {
		t.Error("a string BootedSnapshot decoded")
	}
}

func TestStatusJSONOmitsZeroTimes(t *testing.T) {
	st, err := decodeStatus(map[string]dbus.Variant{"Phase": dbus.MakeVariant("idle")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := jsonMarshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"phase":"idle","strategy":"","booted":0,"pending":0,"last_good":0,"pending_changes":[],"kernel_changed":false,"held":false,"bad_updates":[]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestMicros(t *testing.T) {
	if !fromMicros(0).IsZero() || toMicros(time.Time{}) != 0 {
		t.Error("zero is not none")
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	if got := fromMicros(toMicros(at)); !got.Equal(at) {
		t.Errorf("round trip %v", got)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
