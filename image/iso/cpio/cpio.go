// Package cpio writes "newc" cpio archives, the format the Linux kernel
// unpacks as an initramfs. Only what an initramfs needs: directories,
// regular files, symlinks and device nodes, all owned by root.
package cpio

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrName means an entry name the kernel would not unpack as meant.
var ErrName = errors.New("cpio: bad entry name")

// File type bits of the mode field (as in stat(2)).
const (
	typeDir  = 0o040000
	typeReg  = 0o100000
	typeLink = 0o120000
	typeChr  = 0o020000
)

// Writer writes one archive. Every entry gets the same mtime, so equal
// input gives equal bytes. The first error sticks: later calls return it.
type Writer struct {
	w     io.Writer
	mtime int64
	ino   uint32
	off   int64
	err   error
}

// New starts an archive on w with mtime for every entry.
func New(w io.Writer, mtime time.Time) *Writer {
	return &Writer{w: w, mtime: mtime.Unix()}
}

// Dir adds a directory.
func (w *Writer) Dir(name string, perm uint32) error {
	return w.entry(name, typeDir|perm&0o7777, 0, 0, 0, nil)
}

// File adds a regular file of size bytes read from r.
func (w *Writer) File(name string, perm uint32, size int64, r io.Reader) error {
	return w.entry(name, typeReg|perm&0o7777, size, 0, 0, r)
}

// Symlink adds a symbolic link to target.
func (w *Writer) Symlink(name, target string) error {
	return w.entry(name, typeLink|0o777, int64(len(target)), 0, 0, strings.NewReader(target))
}

// CharDev adds a character device node.
func (w *Writer) CharDev(name string, perm uint32, major, minor uint32) error {
	return w.entry(name, typeChr|perm&0o7777, 0, major, minor, nil)
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	return w.entry("TRAILER!!!", 0, 0, 0, 0, nil)
}

func (w *Writer) entry(name string, mode uint32, size int64, major, minor uint32, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") ||
		(name != "." && strings.Contains("/"+name+"/", "/../")) {
		w.err = fmt.Errorf("%w: %q", ErrName, name)
		return w.err
	}
	if size < 0 || size > 0xffffffff {
		w.err = fmt.Errorf("cpio: %s: size %d does not fit the newc format", name, size)
		return w.err
	}
	w.ino++
	nlink := uint32(1)
	if mode&0o170000 == typeDir {
		nlink = 2
	}
	// 13 fields of 8 hex digits: ino mode uid gid nlink mtime filesize
	// devmajor devminor rdevmajor rdevminor namesize check.
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		w.ino, mode, 0, 0, nlink, uint32(w.mtime), uint32(size), 0, 0, major, minor, len(name)+1, 0)
	w.write([]byte(hdr + name + "\x00"))
	w.pad()
	if r != nil && w.err == nil {
		n, err := io.CopyN(w.w, r, size)
		w.off += n
		if err != nil {
			w.err = fmt.Errorf("cpio: %s: %w", name, err)
		}
	}
	w.pad()
	return w.err
}

// pad aligns to 4 bytes, as newc wants after the name and after the data.
func (w *Writer) pad() {
	if n := (4 - w.off%4) % 4; n > 0 {
		w.write(make([]byte, n))
	}
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("cpio: %w", err)
	}
}
