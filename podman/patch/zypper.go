package patch

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ZypperDriver is zypper: openSUSE and SUSE Linux Enterprise.
type ZypperDriver struct{}

// Manager implements Driver.
func (ZypperDriver) Manager() Manager { return Zypper }

// Detect implements Driver.
func (ZypperDriver) Detect(files Files) bool { return exists(files, "/usr/bin/zypper") }

// zypper exit codes (zypper(8)): 7 is ZYPPER_EXIT_ZYPP_LOCKED; 100-103
// only inform (updates or security patches needed, reboot or restart of
// zypper advised after the run) and are successes. Everything else,
// 104 (no provider found) included, is a failure.
const zypperLocked = 7

func zypperOK(code int) bool { return code == 0 || (code >= 100 && code <= 103) }

// zypperPatchPrefix names a patch (not a package) among the Updates:
// zypper's own kind prefix, which `zypper install` understands.
const zypperPatchPrefix = "patch:"

// Pending implements Driver: refresh, the package updates (with the
// installed edition as edition-old, zypper 1.14+), and the needed
// security patches. A patch's XML does not say which packages it
// updates, so the patches are listed as Updates of their own (Name
// "patch:<id>", New the patch edition, Security true) rather than
// guessed onto packages.
func (ZypperDriver) Pending(ctx context.Context, run Exec) ([]Update, error) {
	if _, err := zypperRun(ctx, run, 0, "zypper", "--non-interactive", "refresh"); err != nil {
		return nil, fmt.Errorf("refreshing the repositories: %w", err)
	}
	out, err := zypperRun(ctx, run, 0, "zypper", "--non-interactive", "--xmlout", "list-updates")
	if err != nil {
		return nil, err
	}
	us, err := parseZypperUpdates(out)
	if err != nil {
		return nil, err
	}
	out, err = zypperRun(ctx, run, 0, "zypper", "--non-interactive", "--xmlout", "list-patches", "--category", "security")
	if err != nil {
		return nil, err
	}
	ps, err := parseZypperPatches(out)
	if err != nil {
		return nil, err
	}
	return append(us, ps...), nil
}

// Upgrade implements Driver. libzypp waits for its own lock for
// ZYPP_LOCK_TIMEOUT seconds, so LockTimeout goes there. rpm keeps
// changed configuration files (.rpmnew); licences are agreed to, as
// there is nobody to ask.
func (ZypperDriver) Upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error {
	base := []string{"zypper", "--non-interactive"}
	if opt.SecurityOnly && len(opt.Packages) == 0 {
		_, err := zypperRun(ctx, run, opt.LockTimeout, append(base, "patch", "--category", "security", "--auto-agree-with-licenses")...)
		return err
	}
	var pkgs, patches []string
	for _, p := range opt.Packages {
		if strings.HasPrefix(p, zypperPatchPrefix) {
			patches = append(patches, p)
		} else {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) > 0 || len(patches) == 0 {
		if _, err := zypperRun(ctx, run, opt.LockTimeout, append(append(base, "update", "--auto-agree-with-licenses"), pkgs...)...); err != nil {
			return err
		}
	}
	if len(patches) > 0 {
		if _, err := zypperRun(ctx, run, opt.LockTimeout, append(append(base, "install", "--auto-agree-with-licenses"), patches...)...); err != nil {
			return err
		}
	}
	return nil
}

func zypperRun(ctx context.Context, run Exec, timeout time.Duration, argv ...string) ([]byte, error) {
	secs := lockSeconds(timeout)
	env := []string{"LC_ALL=C", "ZYPP_LOCK_TIMEOUT=" + strconv.Itoa(secs)}
	out, stderr, code, err := run(ctx, argv, env)
	if err != nil {
		return nil, err
	}
	if zypperOK(code) {
		return out, nil
	}
	msg := zypperMessage(out, stderr)
	if code == zypperLocked {
		return nil, fmt.Errorf("%w (waited %ds): %s", ErrLocked, secs, msg)
	}
	return nil, fmt.Errorf("%w: %s exit %d: %s", ErrFailed, strings.Join(argv, " "), code, msg)
}

// zypperMessage is what zypper said: its error messages in --xmlout
// mode, else its stderr, else the last line of its stdout.
func zypperMessage(out, stderr []byte) string {
	var st zypperStream
	if xml.Unmarshal(out, &st) == nil {
		var errs []string
		for _, m := range st.Messages {
			if m.Type == "error" {
				errs = append(errs, strings.TrimSpace(m.Text))
			}
		}
		if len(errs) > 0 {
			return strings.Join(errs, "; ")
		}
	}
	if s := strings.TrimSpace(string(stderr)); s != "" {
		return strings.Join(strings.Fields(s), " ")
	}
	return lastLine(out)
}

type zypperStream struct {
	Messages []struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"message"`
	Updates []zypperUpdate `xml:"update-status>update-list>update"`
}

type zypperUpdate struct {
	Kind       string `xml:"kind,attr"`
	Name       string `xml:"name,attr"`
	Edition    string `xml:"edition,attr"`
	EditionOld string `xml:"edition-old,attr"`
	Category   string `xml:"category,attr"`
	Status     string `xml:"status,attr"`
	Source     struct {
		Alias string `xml:"alias,attr"`
	} `xml:"source"`
}

// parseZypperUpdates reads `--xmlout list-updates`. Before zypper 1.14
// there is no edition-old, and Old stays empty (unknown).
func parseZypperUpdates(out []byte) ([]Update, error) {
	var st zypperStream
	if err := xml.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("%w: reading zypper list-updates: %v", ErrFailed, err)
	}
	var us []Update
	for _, u := range st.Updates {
		if u.Kind != "package" {
			continue
		}
		us = append(us, Update{Name: u.Name, Old: u.EditionOld, New: u.Edition, Source: u.Source.Alias})
	}
	return us, nil
}

// parseZypperPatches reads `--xmlout list-patches`, keeping the needed
// security patches (the category is checked again, so an unfiltered
// listing reads the same).
func parseZypperPatches(out []byte) ([]Update, error) {
	var st zypperStream
	if err := xml.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("%w: reading zypper list-patches: %v", ErrFailed, err)
	}
	var us []Update
	for _, p := range st.Updates {
		if p.Kind != "patch" || p.Category != "security" || (p.Status != "" && p.Status != "needed") {
			continue
		}
		us = append(us, Update{Name: zypperPatchPrefix + p.Name, New: p.Edition, Security: true, Source: p.Name})
	}
	return us, nil
}
