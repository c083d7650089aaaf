// Package podman is Speedia host's client of the Podman API service: it
// takes the inventory of running containers, stops them in order before a
// reboot, brings them back in order after it, and hard-upgrades stateful
// containers. It is the only package that imports Podman's bindings.
package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/errorhandling"
	"golang.org/x/sys/unix"

	"github.com/speedia/host/updater/errkind"
)

// DefaultSocket is rootful Podman's API socket.
const DefaultSocket = "/run/podman/podman.sock"

// Connect returns a context bound to the Podman service at socket, after
// checking that the service answers.
func Connect(ctx context.Context, socket string) (context.Context, error) {
	conn, err := bindings.NewConnection(ctx, "unix://"+socket)
	if err != nil {
		return nil, fmt.Errorf("connect to podman at %s (is podman.socket or `podman system service` running?): %w", socket, err)
	}
	return conn, nil
}

// Manager stops, starts and upgrades containers through one Podman
// service. It connects for each operation, so a restarted or
// socket-activated service is found again.
type Manager struct {
	Socket string // default DefaultSocket
	// Units starts and stops containers that a systemd unit manages; nil:
	// such containers are reported, not touched behind systemd's back.
	Units Units
	// Dir keeps upgrade records and data snapshots (see Upgrade).
	Dir string
	Log *slog.Logger

	// Defaults for containers that do not say otherwise.
	Settle   time.Duration // a container without a health check must run this long
	Timeout  time.Duration // per container, to come up healthy
	Parallel int           // containers started or stopped at once within a level
	Keep     time.Duration // how long an upgrade's old container and data are kept
	// Dial connects to a published port to tell a container is ready
	// (nil: net.Dialer); tests dial into the Podman service's network.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu sync.Mutex // one operation at a time: a reboot's stop never meets an upgrade
}

// Defaults for the Manager's zero fields.
const (
	DefaultSettle   = time.Second
	DefaultTimeout  = 2 * time.Minute
	DefaultParallel = 8
	DefaultKeep     = 72 * time.Hour
	DefaultDir      = "/var/lib/speedia/containers"
)

func (m *Manager) socket() string {
	if m.Socket == "" {
		return DefaultSocket
	}
	return m.Socket
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.Default()
	}
	return m.Log
}

func (m *Manager) dial(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, poll)
	defer cancel()
	dial := m.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// lockDir takes the Manager's directory lock: helper processes run one
// operation at a time across processes too, so that one never recovers a
// patch that another is still doing, and a reboot's stop waits for a patch.
func (m *Manager) lockDir() (func(), error) {
	if err := os.MkdirAll(m.dir(), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(m.dir(), ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func (m *Manager) settle(c Container) time.Duration {
	switch {
	case c.Settle > 0:
		return c.Settle
	case m.Settle > 0:
		return m.Settle
	}
	return DefaultSettle
}

func (m *Manager) timeout() time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	return DefaultTimeout
}

func (m *Manager) parallel() int {
	if m.Parallel > 0 {
		return m.Parallel
	}
	return DefaultParallel
}

func (m *Manager) dir() string {
	if m.Dir == "" {
		return DefaultDir
	}
	return m.Dir
}

func (m *Manager) keep() time.Duration {
	if m.Keep > 0 {
		return m.Keep
	}
	return DefaultKeep
}

// connect returns a bindings context that is cancelled with ctx.
func (m *Manager) connect(ctx context.Context) (context.Context, context.CancelFunc, error) {
	conn, err := Connect(ctx, m.socket())
	if err != nil {
		return nil, nil, err
	}
	conn, cancel := context.WithCancel(conn)
	stop := context.AfterFunc(ctx, cancel)
	return conn, func() { stop(); cancel() }, nil
}

// with runs fn on a fresh connection, one operation at a time.
func (m *Manager) with(ctx context.Context, fn func(conn context.Context) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	conn, cancel, err := m.connect(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	unlock, err := m.lockDir()
	if err != nil {
		return err
	}
	defer unlock()
	return fn(conn)
}

// errkind.NotFound is wrapped by errors about a container, image or volume
// that Podman does not have; an upgrade or rollback refused before anything
// changes wraps errkind.NothingToDo or errkind.Refused.

func apiCode(err error) int {
	var p *errorhandling.ErrorModel
	if errors.As(err, &p) {
		return p.ResponseCode
	}
	var v errorhandling.ErrorModel
	if errors.As(err, &v) {
		return v.ResponseCode
	}
	return 0
}

func isNotFound(err error) bool { return apiCode(err) == http.StatusNotFound }

// explain wraps Podman's API errors with the package's sentinels, so
// callers (and exit codes) can tell them apart.
func explain(err error) error {
	switch apiCode(err) {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", errkind.NotFound, err)
	}
	return err
}
