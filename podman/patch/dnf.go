package patch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
)

// DnfDriver is dnf (Fedora, RHEL 8+ and rebuilds; dnf4 and dnf5 alike).
type DnfDriver struct{}

// YumDriver is yum on RHEL/CentOS 7. Its command line and output are
// dnf's ancestors, so both drivers share rpmDriver.
type YumDriver struct{}

// Manager implements Driver.
func (DnfDriver) Manager() Manager { return Dnf }

// Manager implements Driver.
func (YumDriver) Manager() Manager { return Yum }

// Detect implements Driver: dnf (or dnf5 alone) and an rpm database.
func (DnfDriver) Detect(files Files) bool {
	return (exists(files, "/usr/bin/dnf") || exists(files, "/usr/bin/dnf5")) && hasRPMDB(files)
}

// Detect implements Driver: yum without dnf (on EL8+ yum is dnf's alias).
func (YumDriver) Detect(files Files) bool {
	return exists(files, "/usr/bin/yum") && !exists(files, "/usr/bin/dnf") && !exists(files, "/usr/bin/dnf5") && hasRPMDB(files)
}

// hasRPMDB looks for the database files, as Files reads files, not
// directories: sqlite (Fedora 33+, EL9+) in either place, or bdb (EL7/8).
func hasRPMDB(files Files) bool {
	for _, p := range []string{"/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages"} {
		if exists(files, p) {
			return true
		}
	}
	return false
}

// Pending implements Driver.
func (DnfDriver) Pending(ctx context.Context, run Exec) ([]Update, error) {
	return dnfTool.pending(ctx, run)
}

// Upgrade implements Driver.
func (DnfDriver) Upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error {
	return dnfTool.upgrade(ctx, run, opt)
}

// Pending implements Driver.
func (YumDriver) Pending(ctx context.Context, run Exec) ([]Update, error) {
	return yumTool.pending(ctx, run)
}

// Upgrade implements Driver.
func (YumDriver) Upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error {
	return yumTool.upgrade(ctx, run, opt)
}

// rpmDriver holds where dnf and yum spell things differently.
type rpmDriver struct {
	tool       string
	security   []string // updateinfo arguments listing security advisories
	installed  []string // list arguments limiting it to installed packages
	upgradeCmd string   // the upgrade subcommand
}

var (
	// dnf5 no longer takes updateinfo's positional "security"; dnf4 and
	// dnf5 both take --security and list --installed.
	dnfTool = rpmDriver{tool: "dnf", security: []string{"updateinfo", "list", "--security"},
		installed: []string{"list", "--installed"}, upgradeCmd: "upgrade"}
	// EL7 yum documents "updateinfo list security" and "list installed".
	yumTool = rpmDriver{tool: "yum", security: []string{"updateinfo", "list", "security"},
		installed: []string{"list", "installed"}, upgradeCmd: "update"}
)

// dnf and yum translate their output; the parsers read the C locale.
var rpmEnv = []string{"LC_ALL=C"}

// exit_on_lock makes a held lock an error instead of an endless wait
// (dnf4 and yum wait for ever; dnf5 fails at once anyway), so the driver
// bounds the wait itself. dnf, dnf5 and yum all know the option.
const rpmNoWait = "--setopt=exit_on_lock=1"

// pending: check-update for what is pending (it refreshes expired
// metadata), updateinfo for which are security fixes, list installed for
// the versions being replaced.
func (d rpmDriver) pending(ctx context.Context, run Exec) ([]Update, error) {
	argv := []string{d.tool, "-q", rpmNoWait, "check-update"}
	out, stderr, code, err := run(ctx, argv, rpmEnv)
	if err != nil {
		return nil, err
	}
	switch code {
	case 0: // nothing pending
		return nil, nil
	case 100: // updates available
	default:
		return nil, rpmError(argv, code, out, stderr)
	}
	us := parseRPMList(out)
	if len(us) == 0 {
		return nil, nil
	}

	argv = append([]string{d.tool, "-q", rpmNoWait}, d.security...)
	sec, stderr, code, err := run(ctx, argv, rpmEnv)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, rpmError(argv, code, sec, stderr)
	}
	advisories := parseUpdateinfo(sec)

	// The installed versions of exactly these packages (name.arch).
	argv = append([]string{d.tool, "-q", rpmNoWait}, d.installed...)
	for _, u := range us {
		argv = append(argv, u.Name)
	}
	inst, stderr, code, err := run(ctx, argv, rpmEnv)
	if err != nil {
		return nil, err
	}
	if code != 0 && rpmLocked(code, inst, stderr) {
		return nil, rpmError(argv, code, inst, stderr)
	}
	// Otherwise a partial answer (a package obsoleted meanwhile) still
	// gives the versions it has; the rest stay unknown.
	old := map[string]string{}
	for _, p := range parseRPMList(inst) {
		old[p.Name] = p.New
	}
	for i := range us {
		us[i].Old = old[us[i].Name]
		if id, ok := advisories[us[i].Name]; ok {
			us[i].Security, us[i].Source = true, id
		}
	}
	return us, nil
}

// upgrade: rpm itself keeps changed configuration files (it writes the
// packaged one as .rpmnew), so no option is needed for that.
func (d rpmDriver) upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error {
	argv := []string{d.tool, "-y", rpmNoWait, d.upgradeCmd}
	if opt.SecurityOnly {
		argv = append(argv, "--security")
	}
	argv = append(argv, opt.Packages...)
	return retryLocked(ctx, opt.LockTimeout, func() (bool, error) {
		out, stderr, code, err := run(ctx, argv, rpmEnv)
		if err != nil {
			return false, err
		}
		if code == 0 {
			return false, nil
		}
		err = rpmError(argv, code, out, stderr)
		if rpmLocked(code, out, stderr) {
			return true, fmt.Errorf("%w (waited %s)", err, opt.LockTimeout)
		}
		return false, err
	})
}

// rpmLocked: dnf4 exits 200 with "RPMDB already locked by <pid>" (or the
// metadata lock) under exit_on_lock; dnf5 says "Failed to obtain rpm
// transaction lock. Another transaction is in progress."; yum says
// "Another app is currently holding the yum lock; exiting as configured
// by exit_on_lock" (exit 1).
func rpmLocked(code int, out, stderr []byte) bool {
	if code == 200 {
		return true
	}
	s := string(stderr) + string(out)
	for _, m := range []string{"already locked by", "Failed to obtain rpm transaction lock",
		"currently holding the yum lock", "another copy is running as pid", "Waiting for process with pid"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func rpmError(argv []string, code int, out, stderr []byte) error {
	all := append(append([]byte{}, stderr...), out...)
	msg := firstLineWith(all, "Error:", "Transaction failed:", "Failed to")
	if msg == "" {
		msg = lastLine(all)
	}
	if rpmLocked(code, out, stderr) {
		return fmt.Errorf("%w: %s", ErrLocked, msg)
	}
	return fmt.Errorf("%w: %s exit %d: %s", ErrFailed, strings.Join(argv, " "), code, msg)
}

// parseRPMList reads the three columns of check-update and list:
// "coreutils.x86_64   8.32-27.fc34   updates" (name.arch, [epoch:]version-
// release, repository). Repository mirror lines, the metadata banner and
// headers have other shapes and are skipped; dnf4 wraps a long name.arch
// onto a line of its own, which is joined with the next. The obsoletes
// section of check-update is not upgrades of the named packages.
func parseRPMList(out []byte) []Update {
	var us []Update
	var carry string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "Obsoleting Packages") || strings.HasPrefix(line, "Obsoleting packages") {
			break
		}
		f := strings.Fields(line)
		if carry != "" {
			if len(f) == 2 {
				f = append([]string{carry}, f...)
			}
			carry = ""
		}
		if len(f) == 1 && isNameArch(f[0]) {
			carry = f[0]
			continue
		}
		if len(f) != 3 || !isNameArch(f[0]) || !strings.Contains(f[1], "-") {
			continue
		}
		us = append(us, Update{Name: f[0], New: f[1], Source: strings.TrimPrefix(f[2], "@")})
	}
	return us
}

// rpmArches are the architectures a name.arch can end in.
var rpmArches = map[string]bool{"x86_64": true, "noarch": true, "i686": true, "i386": true, "aarch64": true,
	"ppc64le": true, "s390x": true, "armv7hl": true, "src": true, "ppc64": true, "riscv64": true}

func isNameArch(s string) bool {
	i := strings.LastIndex(s, ".")
	return i > 0 && rpmArches[s[i+1:]]
}

// parseUpdateinfo maps name.arch to the first security advisory for it.
// dnf4 and yum print "FEDORA-2018-318f184113 Moderate/Sec. CQRlib-1.1.2-
// 16.fc29.x86_64" (with --all an installed-marker column in front); dnf5
// prints a header and "ID security Moderate <nevra> <date> <time>", the
// severity column possibly empty.
func parseUpdateinfo(out []byte) map[string]string {
	adv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && (f[0] == "i" || f[0] == "I") {
			f = f[1:]
		}
		if len(f) < 3 {
			continue
		}
		nevra := f[len(f)-1]
		sec := strings.HasSuffix(f[1], "/Sec.")
		if len(f) >= 5 && strings.Count(f[len(f)-1], ":") == 2 { // dnf5: date and time last
			nevra, sec = f[len(f)-3], f[1] == "security"
		}
		if !sec {
			continue
		}
		key, ok := nevraKey(nevra)
		if !ok {
			continue
		}
		if _, seen := adv[key]; !seen {
			adv[key] = f[0]
		}
	}
	return adv
}

// nevraKey turns name-[epoch:]version-release.arch into name.arch.
func nevraKey(nevra string) (string, bool) {
	dot := strings.LastIndex(nevra, ".")
	if dot < 0 || !rpmArches[nevra[dot+1:]] {
		return "", false
	}
	nvr, arch := nevra[:dot], nevra[dot+1:]
	r := strings.LastIndex(nvr, "-")
	if r < 0 {
		return "", false
	}
	v := strings.LastIndex(nvr[:r], "-")
	if v <= 0 {
		return "", false
	}
	return nvr[:v] + "." + arch, true
}
