package tu

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/speedia/host/updater/pkgver"
)

// rpmFormat is handed to rpm as is: rpm expands \t and \n itself. An unset
// epoch prints as "(none)".
const rpmFormat = `%{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n`

// DefaultKernelPackages are the kernel flavours whose change needs a full
// reboot.
var DefaultKernelPackages = []string{"kernel-default", "kernel-default-base", "kernel-kvmsmall", "kernel-rt", "kernel-64kb"}

// parseRPM reads rpmFormat lines into name -> "[epoch:]version-release", the
// form zypper prints editions in. Multiversion packages (kernels) keep their
// newest version; gpg-pubkey entries are keys, not packages, and are skipped.
func parseRPM(data []byte) (map[string]string, error) {
	pkgs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, ver, ok := strings.Cut(line, "\t")
		if !ok || name == "" || ver == "" {
			return nil, fmt.Errorf("parse rpm list: bad line %q", line)
		}
		if name == "gpg-pubkey" {
			continue
		}
		ver = strings.TrimPrefix(ver, "(none):")
		if old, dup := pkgs[name]; dup && pkgver.Compare(old, ver) >= 0 {
			continue
		}
		pkgs[name] = ver
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse rpm list: %w", err)
	}
	return pkgs, nil
}

// softLevels are the /run/reboot-needed levels a soft reboot satisfies; any
// other, including an unknown or missing one, asks for a full reboot. t-u and
// zypp-boot-plugin write reboot, kexec or soft-reboot (t-u also knows none).
var softLevels = []string{"soft-reboot", "none"}

// kernelChanged reports whether the update needs more than a soft reboot: a
// kernel package changed, or /run/reboot-needed asks for it.
func kernelChanged(level string, changes []pkgver.Change, kernels []string) bool {
	if !slices.Contains(softLevels, level) {
		return true
	}
	for _, c := range changes {
		if slices.Contains(kernels, c.Name) {
			return true
		}
	}
	return false
}
