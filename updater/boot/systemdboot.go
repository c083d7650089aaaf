package boot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	sortKey       = "speedia"
	defaultGlob   = entryPrefix + "*"
	loaderTimeout = "3" // seconds; written only if the admin set none
	filesDir      = "speedia"
)

var hashDirName = regexp.MustCompile(`^[0-9a-f]{16}$`)

// SystemdBoot implements Loader with systemd-boot and Boot Loader
// Specification type #1 entries on the ESP.
//
// Rollback: SetNext of a snapshot older than other entries renames those
// newer entries to 0 tries left ("bad"). systemd-boot sorts bad entries last,
// so the target boots next, and the newer snapshots stay in the menu to boot
// by hand; SetNext of one of them later makes it next again. Removing them
// instead would lose that; a higher version for the target would make the
// version lie about the snapshot.
type SystemdBoot struct {
	ESP string // mount point of the ESP, e.g. /efi or /boot/efi

	mu sync.Mutex
}

var _ Loader = (*SystemdBoot)(nil)

func (s *SystemdBoot) entriesDir() string { return filepath.Join(s.ESP, "loader", "entries") }

// SetNext implements Loader.
func (s *SystemdBoot) SetNext(ctx context.Context, e Entry) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("boot entry: %w", err)
	}
	if e.Tries == 0 {
		e.Tries = DefaultTries
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.setNext(ctx, e); err != nil {
		return fmt.Errorf("boot snapshot %d next: %w", e.Snapshot, err)
	}
	return nil
}

func (s *SystemdBoot) setNext(ctx context.Context, e Entry) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	// loader.conf first: the entry below is picked by the glob as soon as it exists.
	if err := s.writeLoaderConf(); err != nil {
		return err
	}
	linux, err := s.install(ctx, e.Kernel, "linux")
	if err != nil {
		return err
	}
	var initrd string
	if e.Initrd != "" {
		if initrd, err = s.install(ctx, e.Initrd, "initrd"); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	files, err := s.scan()
	if err != nil {
		return err
	}
	dir := s.entriesDir()
	name := entryName{Snapshot: e.Snapshot, Left: e.Tries}.String()
	if err := writeFileAtomic(filepath.Join(dir, name), renderEntry(e, linux, initrd)); err != nil {
		return err
	}
	// Older files for this snapshot go only now that the new one is in place.
	for _, f := range files {
		if f.Snapshot == e.Snapshot && !strings.EqualFold(f.file, name) {
			if err := os.Remove(filepath.Join(dir, f.file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	// Rollback. files is sorted by snapshot, so the newer entry that boots
	// now is renamed last: until then it keeps booting, after that the target.
	for _, f := range files {
		if f.Snapshot > e.Snapshot && f.state() != StateBad {
			if err := renameSync(dir, f.file, bad(f.entryName).String()); err != nil {
				return err
			}
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return s.gc()
}

// Remove implements Loader.
func (s *SystemdBoot) Remove(ctx context.Context, snapshot int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.remove(ctx, snapshot); err != nil {
		return fmt.Errorf("remove boot entry %d: %w", snapshot, err)
	}
	return nil
}

func (s *SystemdBoot) remove(ctx context.Context, snapshot int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	files, err := s.scan()
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Snapshot == snapshot {
			if err := os.Remove(filepath.Join(s.entriesDir(), f.file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := syncDir(s.entriesDir()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.gc()
}

// Bless implements Loader, like systemd-bless-boot: the counter is dropped.
func (s *SystemdBoot) Bless(ctx context.Context, snapshot int) error {
	return s.retag(ctx, "bless", snapshot, func(entryName) entryName {
		return entryName{Snapshot: snapshot, Left: -1}
	})
}

// MarkBad implements Loader. Tries done are kept, as systemd-boot would.
func (s *SystemdBoot) MarkBad(ctx context.Context, snapshot int) error {
	return s.retag(ctx, "mark bad", snapshot, bad)
}

// bad gives n 0 tries left: "+0" from good, "+0-DONE" from counting.
func bad(n entryName) entryName {
	n.Left = 0
	return n
}

// retag renames the snapshot's entry to the name that to gives it.
func (s *SystemdBoot) retag(ctx context.Context, op string, snapshot int, to func(entryName) entryName) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s boot entry %d: %w", op, snapshot, err)
	}
	if err := s.rename(snapshot, to); err != nil {
		return fmt.Errorf("%s boot entry %d: %w", op, snapshot, err)
	}
	return nil
}

func (s *SystemdBoot) rename(snapshot int, to func(entryName) entryName) error {
	files, err := s.scan()
	if err != nil {
		return err
	}
	// Normally one file per snapshot; a crash in SetNext may leave two.
	// The newest is the one SetNext wrote last; drop the rest first.
	var mine []entryFile
	for _, f := range files {
		if f.Snapshot == snapshot {
			mine = append(mine, f)
		}
	}
	if len(mine) == 0 {
		return ErrNotFound
	}
	slices.SortStableFunc(mine, func(a, b entryFile) int { return b.mod.Compare(a.mod) })
	dir := s.entriesDir()
	for _, f := range mine[1:] {
		if err := os.Remove(filepath.Join(dir, f.file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	name := to(mine[0].entryName).String()
	if name == mine[0].file {
		return syncDir(dir)
	}
	return renameSync(dir, mine[0].file, name)
}

// List implements Loader. The order is the one systemd-boot gives our
// entries: bad last, then newest snapshot first.
func (s *SystemdBoot) List(ctx context.Context) ([]EntryInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list boot entries: %w", err)
	}
	files, err := s.scan()
	if err != nil {
		return nil, fmt.Errorf("list boot entries: %w", err)
	}
	var out []EntryInfo
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(s.entriesDir(), f.file))
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed under us, e.g. by systemd-bless-boot
		}
		if err != nil {
			return nil, fmt.Errorf("list boot entries: %w", err)
		}
		info := EntryInfo{Snapshot: f.Snapshot, File: f.file, TriesLeft: f.Left, TriesDone: f.Done, State: f.state()}
		var opts []string
		for k, v := range keys(data) {
			switch k {
			case "title":
				info.Title = v
			case "version":
				info.Version = v
			case "linux":
				info.Kernel = v
			case "initrd":
				if info.Initrd == "" {
					info.Initrd = v
				}
			case "options":
				opts = append(opts, v)
			}
		}
		info.Options = strings.Join(opts, " ")
		out = append(out, info)
	}
	slices.SortStableFunc(out, func(a, b EntryInfo) int {
		if ab, bb := a.State == StateBad, b.State == StateBad; ab != bb {
			if ab {
				return 1
			}
			return -1
		}
		return b.Snapshot - a.Snapshot
	})
	return out, nil
}

// prepare creates our directories; the ESP itself must exist, so an
// unmounted ESP is not silently replaced by a directory on the root.
func (s *SystemdBoot) prepare(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fi, err := os.Stat(s.ESP); err != nil {
		return fmt.Errorf("ESP: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("ESP %s: not a directory", s.ESP)
	}
	for _, d := range []string{s.entriesDir(), filepath.Join(s.ESP, filesDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// entryFile is one of our entry files in loader/entries.
type entryFile struct {
	entryName
	file string
	mod  time.Time
}

// scan lists our entry files, sorted by snapshot.
func (s *SystemdBoot) scan() ([]entryFile, error) {
	des, err := os.ReadDir(s.entriesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []entryFile
	for _, de := range des {
		n, ok := parseEntryName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // gone since ReadDir
		}
		out = append(out, entryFile{entryName: n, file: de.Name(), mod: fi.ModTime()})
	}
	slices.SortStableFunc(out, func(a, b entryFile) int { return a.Snapshot - b.Snapshot })
	return out, nil
}

// install copies a kernel or initrd to ESP/speedia/<sha256[:16]>/kind unless
// that is there already, and returns its path as the entry names it.
func (s *SystemdBoot) install(ctx context.Context, src, kind string) (string, error) {
	sum, size, err := hashFile(ctx, src)
	if err != nil {
		return "", err
	}
	rel := path.Join(filesDir, sum[:16], kind)
	dst := filepath.Join(s.ESP, filepath.FromSlash(rel))
	// Written atomically, so a file of the right size is the whole file.
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		return "/" + rel, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := syncDir(filepath.Join(s.ESP, filesDir)); err != nil {
		return "", err
	}
	err = writeAtomic(dst, func(w io.Writer) error { return copyVerified(ctx, w, src, sum) })
	if err != nil {
		return "", err
	}
	return "/" + rel, nil
}

func renderEntry(e Entry, linux, initrd string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by the speedia updater; edits are lost.\n")
	fmt.Fprintf(&b, "title %s\n", e.title())
	fmt.Fprintf(&b, "sort-key %s\n", sortKey)
	fmt.Fprintf(&b, "version %d\n", e.Snapshot)
	fmt.Fprintf(&b, "linux %s\n", linux)
	if initrd != "" {
		fmt.Fprintf(&b, "initrd %s\n", initrd)
	}
	opts := append([]string{"root=UUID=" + e.RootUUID, "rootflags=subvol=" + e.Subvol, "ro"}, e.Options...)
	fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	return b.Bytes()
}

// keys yields the key/value lines of an entry or loader.conf, in order.
func keys(data []byte) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			k, v := line, ""
			if i := strings.IndexAny(line, " \t"); i >= 0 {
				k, v = line[:i], strings.TrimSpace(line[i+1:])
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

// writeLoaderConf sets our keys in loader.conf and keeps the rest.
func (s *SystemdBoot) writeLoaderConf() error {
	p := filepath.Join(s.ESP, "loader", "loader.conf")
	old, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	merged := mergeLoaderConf(string(old))
	if merged == string(old) {
		return nil // spare the ESP a write
	}
	return writeFileAtomic(p, []byte(merged))
}

// mergeLoaderConf returns loader.conf with "default speedia-*", replacing the
// admin's default (ours must win, or snapshots would not boot), and a short
// timeout unless the admin set one. Other lines stay as they are.
func mergeLoaderConf(old string) string {
	var out []string
	var haveDefault, haveTimeout bool
	if old != "" {
		for _, line := range strings.Split(strings.TrimSuffix(old, "\n"), "\n") {
			switch f := strings.Fields(line); {
			case len(f) == 0 || strings.HasPrefix(f[0], "#"):
			case f[0] == "default":
				if haveDefault {
					continue // systemd-boot would use the last one
				}
				haveDefault = true
				line = "default " + defaultGlob
			case f[0] == "timeout":
				haveTimeout = true
			}
			out = append(out, line)
		}
	}
	if !haveDefault {
		out = append(out, "default "+defaultGlob)
	}
	if !haveTimeout {
		out = append(out, "timeout "+loaderTimeout)
	}
	return strings.Join(out, "\n") + "\n"
}

// gc removes kernels and initrds no entry refers to, and temp files a crash
// left behind. Entries of other OSes count too; if one cannot be read,
// nothing is removed.
func (s *SystemdBoot) gc() error {
	loaderDir := filepath.Join(s.ESP, "loader")
	if des, err := os.ReadDir(loaderDir); err == nil {
		for _, de := range des {
			if isTemp(de.Name()) && strings.HasPrefix(de.Name(), ".loader.conf") {
				os.Remove(filepath.Join(loaderDir, de.Name()))
			}
		}
	}
	used := map[string]bool{}
	des, err := os.ReadDir(s.entriesDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gc: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if isTemp(name) && strings.HasPrefix(name, "."+entryPrefix) {
			os.Remove(filepath.Join(s.entriesDir(), name))
			continue
		}
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(strings.ToLower(name), entrySuffix) || de.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.entriesDir(), name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		for k, v := range keys(data) {
			switch k {
			case "linux", "initrd", "efi", "devicetree":
				used[espPath(v)] = true
			}
		}
	}
	top := filepath.Join(s.ESP, filesDir)
	dirs, err := os.ReadDir(top)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gc: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || !hashDirName.MatchString(d.Name()) {
			continue // not ours
		}
		dir := filepath.Join(top, d.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		kept := 0
		for _, f := range files {
			if used[espPath(path.Join(filesDir, d.Name(), f.Name()))] {
				kept++
				continue
			}
			if err := os.Remove(filepath.Join(dir, f.Name())); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
		}
		if kept == 0 {
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("gc: %w", err)
			}
		}
	}
	if err := syncDir(top); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gc: %w", err)
	}
	return nil
}

// espPath normalizes a path in an entry for comparison: "/" or "\"
// separators, optional leading slash, and FAT ignores case.
func espPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	return strings.ToLower(strings.TrimPrefix(path.Clean("/"+p), "/"))
}
