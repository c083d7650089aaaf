package native

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dpkgStatusPath is where the package database lives inside a root. It is
// moved out of /var into the snapshot (with /var/lib/dpkg a symlink to it), so
// the database always matches the files of the snapshot it describes.
const dpkgStatusPath = "usr/lib/sysimage/dpkg/status"

// installedPackages parses a dpkg status file: name (with :arch when not
// "all" or native) -> version, for packages whose status is "installed".
func installedPackages(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var name, ver, status string
	flush := func() {
		if name != "" && strings.HasSuffix(status, " installed") {
			out[name] = ver
		}
		name, ver, status = "", "", ""
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			name = v
		case "Version":
			ver = v
		case "Status":
			status = v
		}
	}
	flush()
	return out, sc.Err()
}

func readPackages(root string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(root, dpkgStatusPath))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoStatus, err)
	}
	defer f.Close()
	return installedPackages(f)
}

// kernelFiles are the files whose change means a full reboot is needed (a
// new kernel or initrd), as opposed to userspace-only changes.
var kernelGlobs = []string{"boot/vmlinuz-*", "boot/initrd.img-*", "usr/lib/modules/*/vmlinuz"}

// kernelFingerprint hashes the kernels and initrds of a root, by relative path.
func kernelFingerprint(root string) (map[string]string, error) {
	out := map[string]string{}
	for _, g := range kernelGlobs {
		matches, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			sum, err := hashFile(m)
			if err != nil {
				return nil, fmt.Errorf("kernel fingerprint: %w", err)
			}
			out[rel] = sum
		}
	}
	return out, nil
}

// kernelVersions lists the module directories of a root (one per kernel).
func kernelVersions(root string) []string {
	ents, _ := os.ReadDir(filepath.Join(root, "usr/lib/modules"))
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func sameFingerprint(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DpkgStatus reads a dpkg status file (e.g. ROOT/var/lib/dpkg/status of a
// plain root tree): installed package name -> version.
func DpkgStatus(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return installedPackages(f)
}
