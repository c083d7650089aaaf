// Package fat writes FAT filesystems in userspace with go-diskfs: the build
// machines cannot mount vfat, and the ESP, the ISO's El Torito image and the
// config drive are all FAT.
package fat

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// File is one file to put into the filesystem: from Src on disk, or Data.
type File struct {
	Path string // slash-separated, relative, e.g. "EFI/BOOT/BOOTX64.EFI"
	Src  string
	Data []byte
}

// MinSize is the smallest filesystem Write makes: FAT32 needs 65525
// clusters (of 512 bytes here), plus the FATs and reserved sectors.
const MinSize = 33 << 20

// go-diskfs takes the time of "." and ".." entries from SOURCE_DATE_EPOCH;
// Write sets it for its duration, one Write at a time.
var envMu sync.Mutex

// Write makes a FAT filesystem of size bytes at offset in f with the label
// and files. Every timestamp is mtime and the volume serial is 0, so equal
// input gives equal bytes.
func Write(f *os.File, offset, size int64, label string, mtime time.Time, files []File) error {
	if err := check(files); err != nil {
		return err
	}
	var b backend.Storage = file.New(f, false)
	if offset != 0 {
		b = backend.Sub(b, offset, size)
	}
	if size < MinSize {
		return fmt.Errorf("FAT filesystem of %d bytes: too small for FAT32 (at least %d)", size, MinSize)
	}
	envMu.Lock()
	defer envMu.Unlock()
	old, had := os.LookupEnv("SOURCE_DATE_EPOCH")
	os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(mtime.Unix(), 10))
	defer func() {
		if had {
			os.Setenv("SOURCE_DATE_EPOCH", old)
		} else {
			os.Unsetenv("SOURCE_DATE_EPOCH")
		}
	}()
	// start is 0: the sub-storage already begins at the partition.
	fsys, err := fat32.Create(b, size, 0, 512, label, true)
	if err != nil {
		return fmt.Errorf("make FAT filesystem: %w", err)
	}
	if err := fill(fsys, mtime.UTC(), files); err != nil {
		return err
	}
	if err := fixFAT32(f, offset); err != nil {
		return fmt.Errorf("make FAT filesystem: %w", err)
	}
	return nil
}

func check(files []File) error {
	seen := map[string]bool{}
	for _, fl := range files {
		p := fl.Path
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
			return fmt.Errorf("FAT file %q: not a clean relative path", p)
		}
		if seen[strings.ToUpper(p)] {
			return fmt.Errorf("FAT file %q: twice (FAT ignores case)", p)
		}
		seen[strings.ToUpper(p)] = true
	}
	return nil
}

func fill(fsys filesystem.FileSystem, mtime time.Time, files []File) error {
	// Sorted, so the directory order on disk does not depend on the caller.
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	dirs := map[string]bool{}
	for _, fl := range files {
		for d := path.Dir(fl.Path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	slices.Sort(dirList) // parents before children
	for _, d := range dirList {
		if err := fsys.Mkdir("/" + d); err != nil {
			return fmt.Errorf("FAT mkdir %s: %w", d, err)
		}
	}
	for _, fl := range files {
		if err := put(fsys, fl); err != nil {
			return fmt.Errorf("FAT write %s: %w", fl.Path, err)
		}
	}
	for _, p := range append(dirList, paths(files)...) {
		if err := fsys.Chtimes("/"+p, mtime, mtime, mtime); err != nil {
			return fmt.Errorf("FAT times %s: %w", p, err)
		}
	}
	return nil
}

func paths(files []File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

func put(fsys filesystem.FileSystem, fl File) error {
	w, err := fsys.OpenFile("/"+fl.Path, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return err
	}
	var r io.Reader
	if fl.Src != "" {
		src, err := os.Open(fl.Src)
		if err != nil {
			w.Close()
			return err
		}
		defer src.Close()
		r = src
	} else {
		r = strings.NewReader(string(fl.Data))
	}
	// Big buffers: go-diskfs writes cluster chains per call.
	if _, err := io.CopyBuffer(w, r, make([]byte, 4<<20)); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Tree lists the regular files below dir as Files, e.g. an ESP staged in a
// directory. Anything else than files and directories is an error.
func Tree(dir string) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file; FAT holds only files and directories", p)
		}
		out = append(out, File{Path: filepath.ToSlash(rel), Src: p})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadFile reads one file of the FAT filesystem at offset in f.
func ReadFile(f *os.File, offset, size int64, p string) ([]byte, error) {
	fsys, err := Open(f, offset, size)
	if err != nil {
		return nil, err
	}
	return ReadAll(fsys, p)
}

// ReadAll reads a whole file. go-diskfs v1.9.4 returns bytes past the end
// of a file when a read starts inside a cluster (as io.ReadAll's growing
// reads do), so this reads in big chunks and cuts at the file's size.
func ReadAll(fsys filesystem.FileSystem, p string) ([]byte, error) {
	r, err := fsys.OpenFile("/"+strings.TrimPrefix(p, "/"), os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, fi.Size())
	buf := make([]byte, 64<<10)
	for int64(len(out)) < fi.Size() {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(out)) < fi.Size() {
		return nil, fmt.Errorf("%s: short read (%d of %d bytes)", p, len(out), fi.Size())
	}
	return out[:fi.Size()], nil
}

// Open reads the FAT32 filesystem at offset in f.
func Open(f *os.File, offset, size int64) (filesystem.FileSystem, error) {
	var b backend.Storage = file.New(f, true)
	if offset != 0 {
		b = backend.Sub(b, offset, size)
	}
	fsys, err := fat32.Read(b, size, 0, 512)
	if err != nil {
		return nil, fmt.Errorf("not a FAT32 filesystem: %w", err)
	}
	return fsys, nil
}
