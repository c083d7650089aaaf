package patch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ApkDriver is apk: Alpine Linux (apk-tools 2.x and 3.x).
//
// apk has no notion of security updates: the Alpine repositories carry
// no advisory metadata that apk could show, so every Update it reports
// has Security false and SecurityOnly cannot narrow an upgrade.
type ApkDriver struct{}

// Manager implements Driver.
func (ApkDriver) Manager() Manager { return Apk }

// Detect implements Driver: the installed database and the binary
// (/sbin/apk; /usr/sbin/apk where /sbin is merged into /usr).
func (ApkDriver) Detect(files Files) bool {
	return exists(files, "/lib/apk/db/installed") &&
		(exists(files, "/sbin/apk") || exists(files, "/usr/sbin/apk"))
}

// apk is not translated; C keeps the scripts it runs from localising too.
var apkEnv = []string{"LC_ALL=C"}

// Pending implements Driver: refresh the indexes, then simulate the
// upgrade. A simulation, rather than `apk list -u`, lists what an
// upgrade would really do, new dependencies included, and gives old and
// new versions without splitting them off the package names; apk 3
// opens the database read-only for it.
func (ApkDriver) Pending(ctx context.Context, run Exec) ([]Update, error) {
	if err := apkRun(ctx, run, "apk", "update", "-q"); err != nil {
		return nil, fmt.Errorf("refreshing the package indexes: %w", err)
	}
	argv := []string{"apk", "upgrade", "--simulate"}
	out, stderr, code, err := run(ctx, argv, apkEnv)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, apkError(argv, code, out, stderr)
	}
	return parseApkChanges(out), nil
}

// Upgrade implements Driver. apk waits for the database lock itself
// (--wait, in apk since 2.0), so LockTimeout is handed to it. There is
// no --no-interactive: apk before 2.14 rejects that option, and apk only
// asks when stdin is a terminal, which Exec never gives it. apk keeps
// modified configuration files and installs the new ones as .apk-new.
func (ApkDriver) Upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error {
	argv := []string{"apk"}
	if secs := lockSeconds(opt.LockTimeout); secs > 0 {
		argv = append(argv, "--wait", strconv.Itoa(secs))
	}
	argv = append(argv, "upgrade")
	// Only the given packages (with what they need), not the world.
	argv = append(argv, opt.Packages...)
	err := apkRun(ctx, run, argv...)
	if err != nil && opt.LockTimeout > 0 {
		err = fmt.Errorf("%w (waited %s)", err, opt.LockTimeout)
	}
	return err
}

func apkRun(ctx context.Context, run Exec, argv ...string) error {
	out, stderr, code, err := run(ctx, argv, apkEnv)
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	return apkError(argv, code, out, stderr)
}

// apkError maps a failed apk run: a lock held by another apk is
// "Unable to lock database: Resource temporarily unavailable" (EAGAIN
// from a non-blocking flock), or "...: Interrupted system call" once
// --wait ran out. Other errno texts (Permission denied: not root) are
// real failures.
func apkError(argv []string, code int, out, stderr []byte) error {
	all := append(append([]byte{}, stderr...), out...)
	msg := firstLineWith(all, "ERROR:")
	if msg == "" {
		msg = lastLine(all)
	}
	s := string(all)
	if strings.Contains(s, "Unable to lock database: Resource temporarily unavailable") ||
		strings.Contains(s, "Unable to lock database: Interrupted system call") {
		return fmt.Errorf("%w: %s", ErrLocked, msg)
	}
	return fmt.Errorf("%w: %s exit %d: %s", ErrFailed, strings.Join(argv, " "), code, msg)
}

// parseApkChanges reads the change lines apk prints when it commits (or
// simulates): "(1/6) Upgrading libssl1.0 (1.0.2i-r0 -> 1.0.2j-r0)" and,
// for a new dependency, "(1/2) Installing b (2)".
func parseApkChanges(out []byte) []Update {
	var us []Update
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "(") {
			continue
		}
		_, rest, ok := strings.Cut(line, ") ")
		if !ok {
			continue
		}
		verb, rest, _ := strings.Cut(rest, " ")
		name, vers, ok := strings.Cut(rest, " (")
		if !ok || !strings.HasSuffix(vers, ")") {
			continue
		}
		vers = strings.TrimSuffix(vers, ")")
		switch verb {
		case "Upgrading":
			old, newV, ok := strings.Cut(vers, " -> ")
			if !ok {
				continue
			}
			us = append(us, Update{Name: name, Old: old, New: newV})
		case "Installing":
			us = append(us, Update{Name: name, New: vers})
		}
	}
	return us
}
