// Package etcmerge carries an admin's /etc edits from one snapshot to another
// with a three-way merge: base is /etc as it was when the two forked, source
// holds the admin's later edits, target receives them.
//
// A path the admin changed (source differs from base) is applied to target
// when target still has the base version there. When both sides changed it,
// the policy decides which version stays in place; the other is kept beside
// it with a suffix, so nothing anyone wrote is lost. Each file is replaced
// atomically and a repeated merge is a no-op, so a merge killed half-way is
// finished by running it again.
package etcmerge

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Policy says what happens when admin and target both changed a path.
type Policy struct {
	// SourceWins puts the admin's version in place and keeps target's beside
	// it (forward updates: like dpkg's --force-confold). Otherwise target's
	// version stays and the admin's is kept beside it (rollback to a known
	// good snapshot).
	SourceWins bool
	// Suffix names the copy kept beside, e.g. ".speedia-new".
	Suffix string
}

// Report lists what a merge did, by path relative to /etc.
type Report struct {
	Applied   []string `json:"applied,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Conflicts []string `json:"conflicts,omitempty"` // kept beside with Policy.Suffix
}

type entry struct {
	exists bool
	mode   fs.FileMode
	uid    uint32
	gid    uint32
	link   string
	data   []byte
}

func (a entry) equal(b entry) bool {
	if a.exists != b.exists {
		return false
	}
	if !a.exists {
		return true
	}
	return a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.link == b.link && bytes.Equal(a.data, b.data)
}

func stat(root, rel string) (entry, error) {
	p := filepath.Join(root, rel)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, err
	}
	e := entry{exists: true, mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.uid, e.gid = st.Uid, st.Gid
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		e.link, err = os.Readlink(p)
	case fi.Mode().IsRegular():
		e.data, err = os.ReadFile(p)
	case fi.IsDir():
		// Directories only matter through the files in them.
	default:
		e.mode = fi.Mode().Type() // sockets, fifos, devices: compared by type only
	}
	return e, err
}

// files lists the non-directory paths below root, relative to it.
func files(root string) (map[string]bool, error) {
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = true
		return nil
	})
	return out, err
}

// Merge applies the admin's edits (base -> source) to target.
func Merge(base, source, target string, pol Policy) (Report, error) {
	var rep Report
	if pol.Suffix == "" {
		return rep, errors.New("etcmerge: policy needs a suffix")
	}
	bf, err := files(base)
	if err != nil {
		return rep, fmt.Errorf("read base: %w", err)
	}
	sf, err := files(source)
	if err != nil {
		return rep, fmt.Errorf("read source: %w", err)
	}
	paths := make([]string, 0, len(sf))
	for p := range sf {
		paths = append(paths, p)
	}
	for p := range bf {
		if !sf[p] {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, rel := range paths {
		b, err := stat(base, rel)
		if err != nil {
			return rep, err
		}
		s, err := stat(source, rel)
		if err != nil {
			return rep, err
		}
		if s.equal(b) {
			continue // the admin did not touch it
		}
		t, err := stat(target, rel)
		if err != nil {
			return rep, err
		}
		switch {
		case t.equal(s):
			continue // already there (a repeated merge)
		case t.equal(b):
			if err := put(target, rel, s); err != nil {
				return rep, fmt.Errorf("apply %s: %w", rel, err)
			}
			if s.exists {
				rep.Applied = append(rep.Applied, rel)
			} else {
				rep.Removed = append(rep.Removed, rel)
			}
		default:
			keep, beside := t, s
			if pol.SourceWins {
				keep, beside = s, t
			}
			if prev, err := stat(target, rel+pol.Suffix); err == nil && keep.equal(t) && prev.equal(beside) {
				continue // resolved by an earlier run
			}
			if beside.exists {
				if err := put(target, rel+pol.Suffix, beside); err != nil {
					return rep, fmt.Errorf("keep %s: %w", rel+pol.Suffix, err)
				}
			}
			if err := put(target, rel, keep); err != nil {
				return rep, fmt.Errorf("apply %s: %w", rel, err)
			}
			rep.Conflicts = append(rep.Conflicts, rel)
		}
	}
	return rep, nil
}

// put makes target/rel look like e (or removes it), atomically per path.
func put(root, rel string, e entry) error {
	p := filepath.Join(root, rel)
	if !e.exists {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(p), ".speedia-merge-"+filepath.Base(p))
	os.Remove(tmp)
	switch {
	case e.mode&fs.ModeSymlink != 0:
		if err := os.Symlink(e.link, tmp); err != nil {
			return err
		}
	case e.mode.IsRegular():
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.mode.Perm())
		if err != nil {
			return err
		}
		_, err = f.Write(e.data)
		if err == nil {
			err = f.Chmod(e.mode.Perm() | e.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return err
		}
	default:
		return nil // special files are not carried
	}
	if err := os.Lchown(tmp, int(e.uid), int(e.gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
