// Package system adapts the updater to systemd and logind on the system bus.
package system

import (
	"context"
	"fmt"

	"github.com/coreos/go-systemd/v22/login1"
)

// Logind takes logind inhibitor locks. The bus address comes from
// DBUS_SYSTEM_BUS_ADDRESS when set (which is how tests reach a booted
// container), else the standard system bus.
type Logind struct{}

// Inhibit takes a "block" lock on shutdown and reboot until release is called
// (or the process dies: the lock is a file descriptor).
func (Logind) Inhibit(_ context.Context, why string) (func(), error) {
	conn, err := login1.New()
	if err != nil {
		return nil, fmt.Errorf("connect to logind: %w", err)
	}
	f, err := conn.Inhibit("shutdown", "speedia-updated", why, "block")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("logind Inhibit: %w", err)
	}
	return func() {
		f.Close()
		conn.Close()
	}, nil
}
