//go:build integration

package tu

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/testhost"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// TestSystemdRunUnit runs transient units on the booted test host's real
// systemd over its system bus: the same path that drives transactional-update
// on MicroOS.
func TestSystemdRunUnit(t *testing.T) {
	ctx := context.Background()
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-tu-unit", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", h.BusAddress())
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"echo staged > /run/speedia-unit-probe", 0},
		{"echo failing >&2; exit 3", 3},
	} {
		name := fmt.Sprintf("speedia-tu-test-%d.service", time.Now().UnixNano())
		code, err := Systemd{}.RunUnit(ctx, name, []string{"/bin/sh", "-c", tc.script})
		if err != nil && tc.want == 0 {
			t.Fatalf("RunUnit(%q): %v", tc.script, err)
		}
		if code != tc.want {
			t.Fatalf("RunUnit(%q) = %d, %v; want exit %d", tc.script, code, err, tc.want)
		}
	}
	if got, err := h.ReadFile("/run/speedia-unit-probe"); err != nil || strings.TrimSpace(got) != "staged" {
		t.Fatalf("the unit did not run inside the host: %q, %v", got, err)
	}
	// The unit was stopped and reset afterwards: nothing left behind.
	if out, _ := h.Direct(ctx, "systemctl", "list-units", "--all", "--no-legend", "speedia-tu-test-*"); strings.TrimSpace(out) != "" {
		t.Fatalf("units left behind:\n%s", out)
	}
}
