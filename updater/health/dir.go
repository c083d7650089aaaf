package health

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// UnitsSuffix marks a non-executable file in Dir that lists units. (Not
// ".conf": that reads like a systemd drop-in or a script's own settings.)
const UnitsSuffix = ".units"

type kind int

const (
	executable kind = iota
	unitList
)

type entry struct {
	name, path string
	kind       kind
}

// backupSuffixes mark leftovers of editors and package managers: never run.
var backupSuffixes = []string{"~", ".bak", ".orig", ".swp", ".disabled",
	".dpkg-old", ".dpkg-dist", ".dpkg-new", ".dpkg-tmp", ".rpmnew", ".rpmsave", ".rpmorig"}

// scan lists the checks in dir in name order. A missing dir has none.
// notes say which files were ignored and why; hidden files are skipped
// without a note.
func scan(dir string) (entries []entry, notes []string, err error) {
	if dir == "" {
		return nil, nil, nil
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if hasBackupSuffix(name) {
			notes = append(notes, name+": ignored (backup file)")
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%s: ignored (%v)", name, err))
		case fi.IsDir():
			notes = append(notes, name+": ignored (directory)")
		case !fi.Mode().IsRegular():
			notes = append(notes, name+": ignored (not a regular file)")
		case fi.Mode().Perm()&0o111 != 0:
			entries = append(entries, entry{name, path, executable})
		case strings.HasSuffix(name, UnitsSuffix):
			entries = append(entries, entry{name, path, unitList})
		default:
			notes = append(notes, name+": ignored (neither executable nor *"+UnitsSuffix+")")
		}
	}
	return entries, notes, nil
}

func hasBackupSuffix(name string) bool {
	for _, s := range backupSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return strings.Contains(name, ".ucf-")
}

func readUnits(path string) (units, bad []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return parseUnits(f)
}

// parseUnits reads unit names, one per line (whitespace-separated names on
// one line are allowed too); '#' starts a comment. A name without a unit
// type suffix means a service, as with systemctl. bad describes the names
// that cannot be units.
func parseUnits(r io.Reader) (units, bad []string, err error) {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, name := range strings.Fields(line) {
			u, ok := unitName(name)
			if !ok {
				bad = append(bad, fmt.Sprintf("line %d: %q is not a unit name", n, name))
				continue
			}
			units = append(units, u)
		}
	}
	return units, bad, sc.Err()
}

var (
	unitChars = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+$`)
	unitTypes = []string{".service", ".socket", ".target", ".mount", ".automount", ".swap",
		".timer", ".path", ".device", ".slice", ".scope"}
)

// unitName validates a name and adds ".service" when it has no type.
func unitName(s string) (string, bool) {
	if len(s) > 255 || !unitChars.MatchString(s) || strings.HasPrefix(s, "@") {
		return "", false
	}
	typed := false
	for _, t := range unitTypes {
		if strings.HasSuffix(s, t) {
			typed = true
			break
		}
	}
	if !typed {
		s += ".service"
	}
	stem := strings.TrimSuffix(s, filepath.Ext(s))
	if stem == "" || strings.HasSuffix(stem, "@") { // a template is never active
		return "", false
	}
	return s, true
}
