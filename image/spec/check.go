package spec

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Each check returns what is wrong with a value, with what to do in
// parentheses, or "" when it is fine.

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	labelRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	userRE    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	packageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+.:-]*$`)
	// suite and components of an apt line
	aptWordRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

func checkName(s string) string {
	if !nameRE.MatchString(s) {
		return fmt.Sprintf("%q is not an image name (use lower-case letters, digits and '-', starting with a letter or digit, 63 at most)", s)
	}
	return ""
}

func checkVersion(s string) string {
	if !versionRE.MatchString(s) {
		return fmt.Sprintf("%q is not MAJOR.MINOR.PATCH (use digits, e.g. \"1.0.0\")", s)
	}
	for _, n := range strings.Split(s, ".") {
		if _, err := strconv.ParseUint(n, 10, 32); err != nil {
			return fmt.Sprintf("%q has a number too large (each part fits 32 bits)", s)
		}
	}
	return ""
}

func checkBase(s string) string {
	if s != string(BaseDebian) && s != string(BaseMicroOS) {
		return fmt.Sprintf("%q is not a base (use %q or %q)", s, BaseDebian, BaseMicroOS)
	}
	return ""
}

// checkHostname follows RFC 1123, in lower case as systemd stores it.
func checkHostname(s string) string {
	bad := len(s) > 253 || s == ""
	for _, label := range strings.Split(s, ".") {
		bad = bad || !labelRE.MatchString(label)
	}
	if bad {
		return fmt.Sprintf("%q is not a host name (use labels of a-z, 0-9 and '-' joined by '.', each 1 to 63 long and not starting or ending with '-', 253 at most in all)", s)
	}
	return ""
}

func checkTimezone(s string) string {
	hint := "use an IANA name such as \"Europe/Berlin\", or leave timezone out for UTC"
	if s == "" || s == "Local" {
		return fmt.Sprintf("%q is not a time zone (%s)", s, hint)
	}
	if _, err := time.LoadLocation(s); err != nil {
		return fmt.Sprintf("%q is not a known time zone (%s)", s, hint)
	}
	return ""
}

// imageArgs are kernel arguments the image sets itself: the root file
// system is the btrfs snapshot the boot entry names.
var imageArgs = []string{"root", "rootflags", "ro", "rw"}

func checkKernelArg(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'\\") {
		return fmt.Sprintf("%q is not one kernel argument (write one argument per element, without white space or quotes)", s)
	}
	name, _, _ := strings.Cut(s, "=")
	if slices.Contains(imageArgs, name) {
		return fmt.Sprintf("%q is set by the image, which boots a btrfs snapshot (leave it out)", s)
	}
	return ""
}

func checkPackage(s string) string {
	if !packageRE.MatchString(s) {
		return fmt.Sprintf("%q is not a package name (use letters, digits and + . _ : -, starting with a letter or digit)", s)
	}
	return ""
}

var sizeUnits = []struct {
	name string
	n    int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseSize reads "4GiB", "4 GiB", "512MiB" or "4294967296" (bytes).
func parseSize(s string) (int64, string) {
	bad := fmt.Sprintf("%q is not a size (use a whole number and a unit of B, KiB, MiB, GiB or TiB, e.g. \"4GiB\")", s)
	num, unit := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(num, u.name); ok {
			num, unit = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil && strings.ContainsAny(num, "GMKTgmkt"):
		return 0, fmt.Sprintf("%q is not a size (units are binary: KiB, MiB, GiB, TiB)", s)
	case err != nil || n < 0:
		return 0, bad
	case n > math.MaxInt64/unit:
		return 0, fmt.Sprintf("%q is too large", s)
	}
	return n * unit, ""
}

// formatSize writes n in the largest unit that divides it.
func formatSize(n int64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func checkDiskSize(n int64) string {
	switch {
	case n < MinDiskSize:
		return fmt.Sprintf("%s is smaller than the minimum, %s", formatSize(n), formatSize(MinDiskSize))
	case n%(1<<20) != 0:
		return fmt.Sprintf("%s is not a whole number of MiB (round it, e.g. to %s)", formatSize(n), formatSize(n>>20<<20))
	}
	return ""
}

func checkFormat(s string) string {
	switch Format(s) {
	case FormatQcow2, FormatRaw, FormatISO:
		return ""
	}
	return fmt.Sprintf("%q is not an image format (use %q, %q or %q)", s, FormatQcow2, FormatRaw, FormatISO)
}

func checkUserName(s string) string  { return checkAccount("user", s) }
func checkGroupName(s string) string { return checkAccount("group", s) }

// checkAccount follows useradd's portable names.
func checkAccount(what, s string) string {
	if !userRE.MatchString(s) {
		return fmt.Sprintf("%q is not a %s name (use a-z, 0-9, '_' and '-', starting with a letter or '_', 32 at most)", s, what)
	}
	return ""
}

func checkShell(s string) string {
	if !path.IsAbs(s) || path.Clean(s) != s || strings.ContainsAny(s, " \t\r\n:") {
		return fmt.Sprintf("%q is not an absolute path to a shell (e.g. \"/bin/bash\")", s)
	}
	return ""
}

// sshKeyParts is how many length-prefixed strings (the type name first) the
// key data of each supported type holds; an extra check that the data is
// whole, not only well-formed base64.
var sshKeyParts = map[string]int{
	"ssh-ed25519":                        2, // type, key
	"ssh-rsa":                            3, // type, e, n
	"ecdsa-sha2-nistp256":                3, // type, curve, point
	"ecdsa-sha2-nistp384":                3,
	"ecdsa-sha2-nistp521":                3,
	"sk-ssh-ed25519@openssh.com":         3, // type, key, application
	"sk-ecdsa-sha2-nistp256@openssh.com": 4, // type, curve, point, application
}

// checkSSHKey accepts an OpenSSH public key line: "TYPE BASE64 [COMMENT]",
// as in a .pub file. Options (authorized_keys' from="...") are not allowed.
func checkSSHKey(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return "holds a line break (write one key per element)"
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return "is not an OpenSSH public key line (use \"TYPE BASE64 [COMMENT]\", e.g. the line of ~/.ssh/id_ed25519.pub)"
	}
	parts, ok := sshKeyParts[f[0]]
	if !ok {
		types := strings.Join(slices.Sorted(maps.Keys(sshKeyParts)), ", ")
		return fmt.Sprintf("key type %q is not supported (use one of %s)", f[0], types)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return fmt.Sprintf("the %s key data is not valid base64 (copy the whole line of the .pub file)", f[0])
	}
	strs, ok := sshStrings(blob)
	switch {
	case !ok || len(strs) == 0:
		return fmt.Sprintf("the %s key data is damaged or cut short (copy the whole line of the .pub file)", f[0])
	case strs[0] != f[0]:
		return fmt.Sprintf("the key data does not hold an %s key (the type and the data do not match: copy the whole line of the .pub file)", f[0])
	case len(strs) != parts || f[0] == "ssh-ed25519" && len(strs[1]) != 32:
		return fmt.Sprintf("the %s key data is damaged or cut short (copy the whole line of the .pub file)", f[0])
	}
	return ""
}

// sshStrings splits SSH wire data into its length-prefixed strings; false
// if the data does not end exactly after the last one.
func sshStrings(b []byte) ([]string, bool) {
	var out []string
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, false
		}
		out = append(out, string(b[4:4+n]))
		b = b[4+n:]
	}
	return out, true
}

func checkURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Sprintf("%q is not an http or https URL", s)
	}
	return ""
}

func checkRepository(s string) string {
	if msg := checkURL(s); msg != "" {
		return msg + " (e.g. \"https://download.opensuse.org/tumbleweed/repo/oss\")"
	}
	return ""
}

// checkAptLine accepts the one-line form without "deb" and without options:
// "URL SUITE COMPONENT...".
func checkAptLine(s string) string {
	const form = "use \"URL SUITE COMPONENT...\", e.g. \"http://deb.debian.org/debian bookworm main\""
	f := strings.Fields(s)
	switch {
	case strings.ContainsAny(s, "\r\n"):
		return fmt.Sprintf("%q holds a line break (write one repository per element)", s)
	case len(f) > 0 && (f[0] == "deb" || f[0] == "deb-src"):
		return fmt.Sprintf("%q starts with %q (leave it out: %s)", s, f[0], form)
	case len(f) > 0 && strings.HasPrefix(f[0], "["):
		return fmt.Sprintf("%q has options in [...], which are not supported (%s)", s, form)
	case len(f) < 3:
		return fmt.Sprintf("%q is not an apt repository line (%s)", s, form)
	}
	if msg := checkURL(f[0]); msg != "" {
		return msg + " (" + form + ")"
	}
	for _, w := range f[1:] {
		if !aptWordRE.MatchString(w) {
			return fmt.Sprintf("%q: %q is not a suite or component name (%s)", s, w, form)
		}
	}
	return ""
}
