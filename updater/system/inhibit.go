// Package system adapts the updater to systemd and logind on the system bus.
package system

import (
	"context"
	"fmt"

	"github.com/coreos/go-systemd/v22/login1"
	"github.com/godbus/dbus/v5"
)

const (
	logindDest = "org.freedesktop.login1"
	logindPath = dbus.ObjectPath("/org/freedesktop/login1")
	logindMgr  = "org.freedesktop.login1.Manager"
)

// Logind talks to logind: inhibitor locks, scheduled reboots, blockers and
// sessions. The zero value uses the system bus, from DBUS_SYSTEM_BUS_ADDRESS
// when set (which is how tests reach a booted container).
type Logind struct {
	// Dial connects to another bus (authenticated, Hello done); nil means
	// the system bus.
	Dial func(ctx context.Context) (*dbus.Conn, error)
}

// connect returns a private connection and logind's manager object; the
// caller closes the connection.
func (l Logind) connect(ctx context.Context) (*dbus.Conn, dbus.BusObject, error) {
	dial := l.Dial
	if dial == nil {
		dial = func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.ConnectSystemBus(dbus.WithContext(ctx))
		}
	}
	conn, err := dial(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to logind: %w", err)
	}
	return conn, conn.Object(logindDest, logindPath), nil
}

// Inhibit takes a "block" lock on shutdown and reboot until release is called
// (or the process dies: the lock is a file descriptor). It goes through
// go-systemd's login1, whose connection keeps the descriptor alive: a lock
// taken over a private godbus connection that is closed at once was lost
// (the engine's SIGKILL test saw no inhibitor while staging).
func (l Logind) Inhibit(_ context.Context, why string) (func(), error) {
	conn, err := login1.New()
	if err != nil {
		return nil, fmt.Errorf("connect to logind: %w", err)
	}
	f, err := conn.Inhibit("shutdown", Identifier, why, "block")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("logind Inhibit: %w", err)
	}
	return func() {
		f.Close()
		conn.Close()
	}, nil
}
