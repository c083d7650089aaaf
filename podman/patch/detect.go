package patch

import (
	"bufio"
	"bytes"
	"strings"
)

// Drivers are the known package managers, in the order Find tries them.
var Drivers = []Driver{AptDriver{}, ApkDriver{}, DnfDriver{}, YumDriver{}, ZypperDriver{}}

// Find returns the driver of the package manager the container's files
// show, or nil: not patchable (distroless, busybox, scratch).
func Find(files Files) Driver {
	for _, d := range Drivers {
		if d.Detect(files) {
			return d
		}
	}
	return nil
}

// ByName returns the driver of manager m, or nil.
func ByName(m Manager) Driver {
	for _, d := range Drivers {
		if d.Manager() == m {
			return d
		}
	}
	return nil
}

func exists(files Files, path string) bool {
	_, err := files(path)
	return err == nil
}

// ReadOS reads /etc/os-release (or /usr/lib/os-release, where the
// standard says to look next). ok is false when neither exists: no
// distribution, as in scratch or busybox images.
func ReadOS(files Files) (os OS, ok bool) {
	b, err := files("/etc/os-release")
	if err != nil {
		if b, err = files("/usr/lib/os-release"); err != nil {
			return OS{}, false
		}
	}
	return ParseOSRelease(b), true
}

// ParseOSRelease reads os-release(5): KEY=value lines, values optionally
// quoted.
func ParseOSRelease(b []byte) OS {
	var o OS
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = unquote(v)
		switch k {
		case "ID":
			o.ID = v
		case "ID_LIKE":
			o.IDLike = strings.Fields(v)
		case "VERSION_ID":
			o.VersionID = v
		case "VERSION_CODENAME":
			o.Codename = v
		case "PRETTY_NAME":
			o.Pretty = v
		}
	}
	return o
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
	}
	return v
}
