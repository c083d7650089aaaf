package configdrive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/speedia/host/image/fat"
)

// Contents is what a config drive holds, as the first boot will see it.
type Contents struct {
	Label    string // filesystem label, without FAT's padding
	Script   []byte // combustion/script; nil when absent
	Ignition []byte // ignition/config.ign; nil when absent
}

// Read reads a config drive image (one written by Write, or any FAT32 image
// with the same layout).
func Read(file string) (*Contents, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("config drive: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config drive: %w", err)
	}
	fsys, err := fat.Open(f, 0, st.Size())
	if err != nil {
		return nil, fmt.Errorf("config drive %s: %w", file, err)
	}
	defer fsys.Close()
	c := &Contents{Label: strings.TrimRight(fsys.Label(), " ")}
	if c.Script, err = readFile(fsys, ScriptPath); err != nil {
		return nil, fmt.Errorf("config drive %s: read %s: %w", file, ScriptPath, err)
	}
	if c.Ignition, err = readFile(fsys, IgnitionPath); err != nil {
		return nil, fmt.Errorf("config drive %s: read %s: %w", file, IgnitionPath, err)
	}
	return c, nil
}

// readFile returns the file at p (slash-separated, relative; FAT ignores
// case), or nil if there is none. go-diskfs's errors do not tell a missing
// file from a bad one, so the directories are listed first.
func readFile(fsys fs.ReadDirFS, p string) ([]byte, error) {
	dir := "."
	for _, name := range strings.Split(p, "/") {
		entries, err := fsys.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return strings.EqualFold(e.Name(), name) }) {
			return nil, nil
		}
		dir = path.Join(dir, name)
	}
	f, err := fsys.Open("/" + p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// go-diskfs v1.9.4 reads on to the end of the cluster when a read
	// starts inside one (io.ReadAll's growing buffer does that): reads of
	// 64 KiB, a multiple of any FAT cluster, never do.
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
