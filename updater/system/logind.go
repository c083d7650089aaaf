package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Identifier names the daemon to logind (inhibitor "who") and journald
// (SYSLOG_IDENTIFIER).
const Identifier = "speedia-updated"

// BootIDFile holds the kernel's random ID of the running boot.
const BootIDFile = "/proc/sys/kernel/random/boot_id"

// ScheduleReboot asks logind to reboot at the given time (a time in the past
// means now), announcing it to logged-in users with wall (empty: logind's
// default text). A later call replaces the schedule.
func (l Logind) ScheduleReboot(ctx context.Context, at time.Time, wall string) error {
	conn, obj, err := l.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := obj.CallWithContext(ctx, logindMgr+".SetWallMessage", 0, wall, true).Store(); err != nil {
		return fmt.Errorf("logind SetWallMessage: %w", err)
	}
	if now := time.Now(); at.Before(now) {
		at = now
	}
	if err := obj.CallWithContext(ctx, logindMgr+".ScheduleShutdown", 0, "reboot", uint64(at.UnixMicro())).Store(); err != nil {
		return fmt.Errorf("logind ScheduleShutdown: %w", err)
	}
	return nil
}

// CancelReboot cancels a scheduled shutdown of any kind; it reports whether
// one was pending.
func (l Logind) CancelReboot(ctx context.Context) (bool, error) {
	conn, obj, err := l.connect(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var cancelled bool
	if err := obj.CallWithContext(ctx, logindMgr+".CancelScheduledShutdown", 0).Store(&cancelled); err != nil {
		return false, fmt.Errorf("logind CancelScheduledShutdown: %w", err)
	}
	return cancelled, nil
}

// scheduled is logind's ScheduledShutdown property, (st).
type scheduled struct {
	Type string
	USec uint64
}

// ScheduledReboot reports the reboot logind has scheduled; ok is false when
// none is (a scheduled poweroff or halt is not a reboot).
func (l Logind) ScheduledReboot(ctx context.Context) (at time.Time, ok bool, err error) {
	conn, obj, err := l.connect(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	defer conn.Close()
	var v dbus.Variant
	if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, logindMgr, "ScheduledShutdown").Store(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("logind ScheduledShutdown: %w", err)
	}
	var s scheduled
	if err := v.Store(&s); err != nil {
		return time.Time{}, false, fmt.Errorf("logind ScheduledShutdown %s: %w", v.Signature(), err)
	}
	at, ok = s.reboot()
	return at, ok, nil
}

func (s scheduled) reboot() (time.Time, bool) {
	if (s.Type != "reboot" && s.Type != "dry-reboot") || s.USec == 0 {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(s.USec)), true
}

// Blocker is another program's "block" inhibitor lock on shutdown.
type Blocker struct {
	Who, Why, What string
	PID, UID       uint32
}

// inhibitor is one entry of logind's ListInhibitors, a(ssssuu).
type inhibitor struct {
	What, Who, Why, Mode string
	UID, PID             uint32
}

// Blockers lists the locks that block a shutdown, except this process's own
// (the daemon's lock around staging must not stop its own reboot).
func (l Logind) Blockers(ctx context.Context) ([]Blocker, error) {
	conn, obj, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var all []inhibitor
	if err := obj.CallWithContext(ctx, logindMgr+".ListInhibitors", 0).Store(&all); err != nil {
		return nil, fmt.Errorf("logind ListInhibitors: %w", err)
	}
	return blockers(all, uint32(os.Getpid())), nil
}

func blockers(all []inhibitor, self uint32) []Blocker {
	var out []Blocker
	for _, in := range all {
		if in.Mode != "block" || in.PID == self || !hasWord(in.What, "shutdown") {
			continue
		}
		out = append(out, Blocker{Who: in.Who, Why: in.Why, What: in.What, PID: in.PID, UID: in.UID})
	}
	return out
}

// hasWord reports whether a colon-separated list (logind's "what") holds w.
func hasWord(list, w string) bool {
	for _, f := range strings.Split(list, ":") {
		if f == w {
			return true
		}
	}
	return false
}

// Session is a logged-in user's session.
type Session struct {
	ID, User, TTY string
	Remote        string // the remote host of a remote session, else ""
	UID           uint32
}

// listed is one entry of logind's ListSessions, a(susso).
type listed struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// sessionProps are the Session properties Users reads.
type sessionProps struct {
	Class, State, TTY, RemoteHost string
	Remote                        bool
}

// Users lists the sessions of logged-in users (class "user", state active or
// online): a reboot waits for them. Lingering sessions that are closing and
// greeters or background managers do not count.
func (l Logind) Users(ctx context.Context) ([]Session, error) {
	conn, obj, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var all []listed
	if err := obj.CallWithContext(ctx, logindMgr+".ListSessions", 0).Store(&all); err != nil {
		return nil, fmt.Errorf("logind ListSessions: %w", err)
	}
	var out []Session
	for _, s := range all {
		var props map[string]dbus.Variant
		err := conn.Object(logindDest, s.Path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", 0, "org.freedesktop.login1.Session").Store(&props)
		if errName(err) == "org.freedesktop.DBus.Error.UnknownObject" {
			continue // the session ended since the list was made
		}
		if err != nil {
			return nil, fmt.Errorf("logind session %s: %w", s.ID, err)
		}
		if sess, ok := userSession(s, readSessionProps(props)); ok {
			out = append(out, sess)
		}
	}
	return out, nil
}

func readSessionProps(m map[string]dbus.Variant) sessionProps {
	str := func(k string) string { s, _ := m[k].Value().(string); return s }
	remote, _ := m["Remote"].Value().(bool)
	return sessionProps{Class: str("Class"), State: str("State"), TTY: str("TTY"), RemoteHost: str("RemoteHost"), Remote: remote}
}

func userSession(s listed, p sessionProps) (Session, bool) {
	if p.Class != "user" || (p.State != "active" && p.State != "online") {
		return Session{}, false
	}
	out := Session{ID: s.ID, User: s.User, TTY: p.TTY, UID: s.UID}
	if p.Remote {
		out.Remote = p.RemoteHost
		if out.Remote == "" {
			out.Remote = "unknown host"
		}
	}
	return out, true
}

// BootID is the running boot's ID: it changes on every boot, so it tells a
// reboot that happened from one that did not.
func BootID() (string, error) {
	b, err := os.ReadFile(BootIDFile)
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// errName is the D-Bus error name of err, or "".
func errName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) {
		return p.Name
	}
	return ""
}
