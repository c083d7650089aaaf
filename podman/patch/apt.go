package patch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
)

// AptDriver is apt/dpkg: Debian, Ubuntu and their derivatives.
type AptDriver struct{}

// Manager implements Driver.
func (AptDriver) Manager() Manager { return Apt }

// Detect implements Driver: a dpkg database and apt-get.
func (AptDriver) Detect(files Files) bool {
	return exists(files, "/var/lib/dpkg/status") && exists(files, "/usr/bin/apt-get")
}

// aptEnv keeps apt and dpkg from asking anything.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "LC_ALL=C"}

// Pending implements Driver: refresh the lists, then simulate a
// dist-upgrade (no lock taken, nothing changed).
func (AptDriver) Pending(ctx context.Context, run Exec) ([]Update, error) {
	if err := aptRun(ctx, run, 0, "apt-get", "-q", "update"); err != nil {
		return nil, fmt.Errorf("refreshing the package lists: %w", err)
	}
	out, stderr, code, err := run(ctx, []string{"apt-get", "-s", "-q", "-o", "Debug::NoLocking=1", "dist-upgrade"}, aptEnv)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("%w: apt-get -s dist-upgrade exit %d: %s", ErrFailed, code, aptError(stderr))
	}
	return parseAptSimulation(out), nil
}

// Upgrade implements Driver: only the packages named (install
// --only-upgrade, their candidate versions), else a dist-upgrade; the
// admin's configuration files are kept (confold) unless untouched (confdef).
func (AptDriver) Upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error {
	args := []string{"apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Use-Pty=0"}
	if len(opt.Packages) == 0 {
		args = append(args, "dist-upgrade")
	} else {
		args = append(args, "install", "--only-upgrade")
		args = append(args, opt.Packages...)
	}
	return aptRun(ctx, run, opt.LockTimeout, args...)
}

// aptRun runs an apt command that takes a lock: apt itself waits up to
// timeout for a lock held by another process (DPkg::Lock::Timeout).
func aptRun(ctx context.Context, run Exec, timeout time.Duration, argv ...string) error {
	full := append([]string{argv[0], "-o", fmt.Sprintf("DPkg::Lock::Timeout=%d", lockSeconds(timeout))}, argv[1:]...)
	_, stderr, code, err := run(ctx, full, aptEnv)
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	msg := aptError(stderr)
	if isAptLocked(stderr) {
		return fmt.Errorf("%w (waited %s): %s", ErrLocked, timeout, msg)
	}
	return fmt.Errorf("%w: %s exit %d: %s", ErrFailed, strings.Join(argv[:2], " "), code, msg)
}

func isAptLocked(stderr []byte) bool {
	s := string(stderr)
	return strings.Contains(s, "Could not get lock") || strings.Contains(s, "Unable to acquire the dpkg frontend lock") ||
		strings.Contains(s, "Unable to lock directory") || strings.Contains(s, "Unable to lock the administration directory")
}

// aptError is the first "E:" line apt printed, else its last line.
func aptError(stderr []byte) string {
	if l := firstLineWith(stderr, "E: "); l != "" {
		return l
	}
	return lastLine(stderr)
}

// parseAptSimulation reads apt-get -s output: "Inst name [old] (new
// origin:version/suite, origin:version/suite [arch])"; a package without
// [old] is new. A suite ending in -security makes it a security update
// (Debian's and Ubuntu's security archives).
func parseAptSimulation(out []byte) []Update {
	var us []Update
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Inst ") {
			continue
		}
		rest := strings.TrimPrefix(line, "Inst ")
		name, rest, _ := strings.Cut(rest, " ")
		u := Update{Name: name}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "[") {
			old, after, ok := strings.Cut(rest[1:], "]")
			if !ok {
				continue
			}
			u.Old, rest = old, strings.TrimSpace(after)
		}
		open, close := strings.Index(rest, "("), strings.LastIndex(rest, ")")
		if open < 0 || close < open {
			continue
		}
		inner := rest[open+1 : close]
		if i := strings.LastIndex(inner, " ["); i >= 0 {
			inner = inner[:i] // the architecture
		}
		newV, sources, _ := strings.Cut(inner, " ")
		u.New = newV
		var suites []string
		for _, s := range strings.Split(sources, ", ") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			suite := s
			if i := strings.LastIndex(s, "/"); i >= 0 {
				suite = s[i+1:]
			}
			if strings.HasSuffix(suite, "-security") {
				u.Security = true
				u.Source = suite
			}
			suites = append(suites, suite)
		}
		if u.Source == "" && len(suites) > 0 {
			u.Source = suites[0]
		}
		us = append(us, u)
	}
	return us
}
