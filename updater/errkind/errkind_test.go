package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{fmt.Errorf("x: %w", Usage), 2},
		{fmt.Errorf("x: %w", Invalid), 2},
		{fmt.Errorf("x: %w", NothingToDo), 3},
		{fmt.Errorf("x: %w", Busy), 4},
		{fmt.Errorf("x: %w", NotFound), 5},
		{fmt.Errorf("x: %w", Refused), 6},
		{fmt.Errorf("x: %w", Held), 6},
		{fmt.Errorf("x: %w", Bad), 6},
		{fmt.Errorf("x: %w", AccessDenied), 7},
		{fmt.Errorf("x: %w", NoDaemon), 8},
		{fmt.Errorf("%w: %w", NotFound, errors.New("podman")), 5},
		{errors.Join(errors.New("a"), fmt.Errorf("b: %w", Busy)), 4},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestDBusNames(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		if k.DBusName() == "" {
			if DBusName(k) != FailedName {
				t.Errorf("%v without a name maps to %s", k, DBusName(k))
			}
			continue
		}
		if seen[k.DBusName()] {
			t.Errorf("two kinds named %s", k.DBusName())
		}
		seen[k.DBusName()] = true
		if got := FromDBusName(DBusName(fmt.Errorf("ctx: %w", k))); got != k {
			t.Errorf("%s comes back as %v", k.DBusName(), got)
		}
	}
	if FromDBusName(FailedName) != nil || FromDBusName("org.example.Other") != nil {
		t.Error("a name of no kind has one")
	}
	if FromDBusName("org.freedesktop.DBus.Error.ServiceUnknown") != NoDaemon {
		t.Error("no owner is not NoDaemon")
	}
}
