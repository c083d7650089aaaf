package system

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notify sends sd_notify state lines (e.g. "READY=1", "STATUS=...") to the
// service manager. Outside a Type=notify service it does nothing.
func Notify(state ...string) error {
	if _, err := daemon.SdNotify(false, strings.Join(state, "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready tells systemd that start-up is done, with a status line.
func Ready(status string) error {
	return Notify(daemon.SdNotifyReady, "STATUS="+oneLine(status))
}

// Status sets the status line systemctl status shows.
func Status(s string) error { return Notify("STATUS=" + oneLine(s)) }

// Stopping tells systemd the daemon is shutting down.
func Stopping() error { return Notify(daemon.SdNotifyStopping) }

// oneLine keeps a status from breaking the newline-separated protocol.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// Watchdog pings systemd's watchdog at half of WATCHDOG_USEC until ctx is
// done. When the unit has no watchdog (or it is another process's) it
// returns nil at once and sets no timer at all. An error means a malformed
// WATCHDOG_USEC or a ping that could not be sent; then systemd will restart
// the service when the interval runs out, which is the point of it.
func Watchdog(ctx context.Context) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	return pingEvery(ctx, t.C, func() error { return Notify(daemon.SdNotifyWatchdog) })
}

// pingEvery pings once at once and then on every tick until ctx is done.
func pingEvery(ctx context.Context, ticks <-chan time.Time, ping func() error) error {
	for {
		if err := ping(); err != nil {
			return fmt.Errorf("watchdog: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}
