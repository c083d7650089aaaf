// Package units holds Speedia host's systemd unit, D-Bus policy and
// activation, tmpfiles, sysusers, preset and journal catalog files, embedded,
// and installs them with the binaries into a root tree (an image root, a
// test host, a package staging directory).
//
// Install writes files only. What the caller runs afterwards on a root that
// will boot (docs/units.md):
//
//	journalctl --root=ROOT --update-catalog   (Debian has no boot-time catalog update)
//	systemd-sysusers --root=ROOT              (only needed if the root is not booting for the first time)
package units

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/speedia/host/updater/atomicfile"
)

// "*update*" matches the catalog and, when another engineer's
// update.toml exists, that too: a pattern matching nothing would not compile.
//
//go:embed *.service *.conf *.tmpfiles *.sysusers *.preset *update* speedia-firstboot
var embedded embed.FS

// ErrBadName is returned for a binary name that is not a plain file name.
var ErrBadName = errors.New("bad binary name")

// ErrNoRoot is returned when no root directory is given.
var ErrNoRoot = errors.New("no root directory")

// File is one embedded file and where it goes.
type File struct {
	Name     string      // in this directory (and the embed)
	Path     string      // absolute, in the installed root
	Mode     os.FileMode // 0 means 0644
	Optional bool        // install only when embedded
}

// Perm is the mode the file is installed with.
func (f File) Perm() os.FileMode {
	if f.Mode == 0 {
		return 0o644
	}
	return f.Mode
}

// Service is the daemon's unit name.
const Service = "speedia-updated.service"

// EnableLink is the symlink `systemctl enable` would make, relative to the
// root: presets apply only on first boot or package install, so Install
// creates it itself.
const EnableLink = "/etc/systemd/system/multi-user.target.wants/" + Service

// Firstboot is the unit that runs the config drive on Debian images
// (docs/firstboot.md).
const Firstboot = "speedia-firstboot.service"

// FirstbootEnableLink enables Firstboot: it runs in sysinit, before SSH,
// logins and the network (docs/firstboot.md).
const FirstbootEnableLink = "/etc/systemd/system/sysinit.target.wants/" + Firstboot

// enabled maps each enablement link to its unit.
var enabled = []struct{ link, unit string }{
	{EnableLink, Service},
	{FirstbootEnableLink, Firstboot},
}

var files = []File{
	{Name: Service, Path: "/usr/lib/systemd/system/" + Service},
	{Name: Firstboot, Path: "/usr/lib/systemd/system/" + Firstboot},
	{Name: "speedia-firstboot", Path: "/usr/lib/speedia/speedia-firstboot", Mode: 0o755},
	{Name: "org.speedia.Update1.conf", Path: "/usr/share/dbus-1/system.d/org.speedia.Update1.conf"},
	{Name: "org.speedia.Update1.service", Path: "/usr/share/dbus-1/system-services/org.speedia.Update1.service"},
	{Name: "speedia.tmpfiles", Path: "/usr/lib/tmpfiles.d/speedia.conf"},
	{Name: "speedia.sysusers", Path: "/usr/lib/sysusers.d/speedia.conf"},
	{Name: "80-speedia.preset", Path: "/usr/lib/systemd/system-preset/80-speedia.preset"},
	{Name: "speedia-update.catalog", Path: "/usr/lib/systemd/catalog/speedia-update.catalog"},
	{Name: "update.toml", Path: "/usr/lib/speedia/update.toml", Optional: true},
}

// Files lists every file Install knows, in install order.
func Files() []File { return append([]File(nil), files...) }

// Content returns an embedded file's content.
func Content(name string) ([]byte, error) { return embedded.ReadFile(name) }

// Install copies the binaries (name -> built file) to root/usr/bin (0755),
// every embedded file to its place under root (File.Perm) and enables the
// daemon and the first-boot unit.
// It is idempotent: files are replaced atomically (a running binary too).
func Install(root string, bins map[string]string) error {
	if root == "" {
		return ErrNoRoot
	}
	for name, src := range bins {
		if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
			return fmt.Errorf("install %q: %w", name, ErrBadName)
		}
		if err := copyFile(filepath.Join(root, "usr/bin", name), src, 0o755); err != nil {
			return fmt.Errorf("install binary %s: %w", name, err)
		}
	}
	for _, f := range files {
		data, err := embedded.ReadFile(f.Name)
		if f.Optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("install %s: %w", f.Name, err)
		}
		if err := writeFile(filepath.Join(root, f.Path), data, f.Perm()); err != nil {
			return fmt.Errorf("install %s: %w", f.Name, err)
		}
	}
	for _, e := range enabled {
		if err := symlink(filepath.Join(root, e.link), path.Join("/usr/lib/systemd/system", e.unit)); err != nil {
			return fmt.Errorf("enable %s: %w", e.unit, err)
		}
	}
	return nil
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return replace(dst, mode, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func writeFile(dst string, data []byte, mode os.FileMode) error {
	return replace(dst, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replace writes dst atomically, so a reader (or a running binary) never
// sees half a file.
func replace(dst string, mode os.FileMode, write func(io.Writer) error) error {
	return atomicfile.Write(dst, mode, write)
}

// symlink makes link point to target, replacing whatever is there.
func symlink(link, target string) error {
	if got, err := os.Readlink(link); err == nil && got == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	tmp := link + ".speedia-tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}
