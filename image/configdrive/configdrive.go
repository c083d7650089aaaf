// Package configdrive makes a host's first-boot config drive from its spec:
// a small FAT32 image labelled "ignition" holding a Combustion script and
// an Ignition config (docs/firstboot.md). MicroOS runs both from its initrd;
// the Debian image runs the script from speedia-firstboot.service.
package configdrive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/speedia/host/image/fat"
	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/updater/atomicfile"
)

// Label is the drive's filesystem label. Ignition reads only a drive
// labelled exactly "ignition"; Combustion tries "combustion" first and takes
// "ignition" as its fallback, so one drive serves both.
const Label = "ignition"

// Paths of the two files on the drive, as Combustion and Ignition look for them.
const (
	ScriptPath   = "combustion/script"
	IgnitionPath = "ignition/config.ign"
)

// Size of the drive image: the smallest FAT32 (what is on it is a few KiB).
const Size = fat.MinSize

// ErrEmpty is returned for a spec that gives the drive nothing to do.
var ErrEmpty = errors.New("nothing for the config drive: the spec has no hostname, SSH keys, update policy or first-boot script")

// ErrUnsafe is returned for a value the drive cannot carry as it is.
var ErrUnsafe = errors.New("cannot be put on the config drive")

// fatEpoch is the earliest time FAT can record.
var fatEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Write writes the config drive for s to out: a FAT32 image of Size bytes,
// replaced atomically. Equal specs give equal bytes: every timestamp is the
// spec's Date and the volume serial is 0.
func Write(s *spec.Spec, out string) error {
	script, err := Script(s)
	if err != nil {
		return err
	}
	ign, err := Ignition(s)
	if err != nil {
		return err
	}
	mtime := s.Date.UTC()
	if mtime.Before(fatEpoch) {
		mtime = fatEpoch
	}
	files := []fat.File{
		{Path: ScriptPath, Data: script},
		{Path: IgnitionPath, Data: ign},
	}
	dir := filepath.Dir(out)
	f, err := os.CreateTemp(dir, "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	err = f.Truncate(Size)
	if err == nil {
		err = fat.Write(f, 0, Size, Label, mtime, files)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err == nil {
		err = atomicfile.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("config drive %s: %w", out, err)
	}
	return nil
}

// empty tells whether s gives the drive nothing to do.
func empty(s *spec.Spec) bool {
	if s.Hostname != "" || s.Update.TOML != "" || len(s.Firstboot.ScriptBody) > 0 {
		return false
	}
	for _, u := range s.Users {
		if u.Name != "root" || len(u.SSHKeys) > 0 {
			return false
		}
	}
	return true
}

// check refuses what the script or the Ignition config cannot carry
// faithfully. The spec loader validates names and keys; these are the limits
// of the drive's formats.
func check(s *spec.Spec) error {
	if empty(s) {
		return ErrEmpty
	}
	if strings.ContainsAny(s.Hostname, "\n\x00") {
		return fmt.Errorf("hostname %q: %w", s.Hostname, ErrUnsafe)
	}
	for _, u := range s.Users {
		for i, k := range u.SSHKeys {
			// One key, one line of authorized_keys.
			if strings.ContainsAny(k, "\r\n\x00") || strings.TrimSpace(k) == "" {
				return fmt.Errorf("user %s: SSH key %d is empty or spans lines: %w", u.Name, i+1, ErrUnsafe)
			}
		}
	}
	if strings.ContainsRune(s.Update.TOML, 0) {
		return fmt.Errorf("update policy holds a NUL byte: %w", ErrUnsafe)
	}
	if strings.ContainsRune(string(s.Firstboot.ScriptBody), 0) {
		return fmt.Errorf("first-boot script holds a NUL byte (a shell script cannot): %w", ErrUnsafe)
	}
	return nil
}

// defaultShell is the spec's default login shell.
const defaultShell = "/bin/bash"

func shell(u spec.User) string {
	if u.Shell == "" {
		return defaultShell
	}
	return u.Shell
}

// withNewline makes text end in a newline: a here-document always adds one,
// and the Ignition config must write the same bytes.
func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}
