package iso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MiB is the unit of the image map: the installer writes with dd bs=1M.
const MiB = 1 << 20

// partMiB is the most data one file on the ISO holds. ISO 9660 records a
// file's size in 32 bits, so a file stays below 4 GiB; 1 GiB keeps clear of
// tools that use signed 32-bit sizes. A variable for the tests.
var partMiB int64 = 1024

// extent is a run of MiBs of the disk image that hold data.
type extent struct {
	Seek, Count int64 // MiB
}

// mapLine is one dd the installer runs: Count MiB from part file Part at
// MiB Skip to the disk at MiB Seek.
type mapLine struct {
	Part              int
	Skip, Seek, Count int64
	Sum               [sha256.Size]byte // of those Count MiB
	partOffset        int64             // bytes: where the part starts in the ISO
}

// imageMap says how the parts on the ISO make up the disk image.
type imageMap struct {
	SizeMiB int64             // the whole disk image
	Sum     [sha256.Size]byte // sha256 of the whole disk image, holes included
	Lines   []mapLine         // by Seek
}

// mapVersion is the map's format; the installer refuses others.
const mapVersion = 1

func partName(i int) string { return fmt.Sprintf("part%03d.dat", i) }

// DataMiB is how much the installer writes.
func (m *imageMap) DataMiB() int64 {
	var n int64
	for _, l := range m.Lines {
		n += l.Count
	}
	return n
}

// Parts is the size of each part file in MiB.
func (m *imageMap) Parts() []int64 {
	var p []int64
	for _, l := range m.Lines {
		for len(p) <= l.Part {
			p = append(p, 0)
		}
		p[l.Part] += l.Count
	}
	return p
}

// String is the map file: a header, then one line per dd. Plain words so
// BusyBox sh can `read` it.
//
//	speedia-image VERSION SIZE_MIB DATA_MIB SHA256
//	PART SKIP_MIB SEEK_MIB COUNT_MIB SHA256
func (m *imageMap) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "speedia-image %d %d %d %x\n", mapVersion, m.SizeMiB, m.DataMiB(), m.Sum)
	for _, l := range m.Lines {
		fmt.Fprintf(&b, "%s %d %d %d %x\n", partName(l.Part), l.Skip, l.Seek, l.Count, l.Sum)
	}
	return b.String()
}

// dataSegments lists the MiBs of f that the filesystem holds data for,
// from SEEK_DATA/SEEK_HOLE, widened to whole MiBs and merged. A filesystem
// without hole support reports the whole file as data, which is correct,
// only bigger.
func dataSegments(f *os.File, size int64) ([]extent, error) {
	var out []extent
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from off to the end
		}
		if err != nil {
			return nil, fmt.Errorf("seek data: %w", err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole: %w", err)
		}
		end = min(end, size)
		s, e := start/MiB, (end+MiB-1)/MiB
		if n := len(out); n > 0 && out[n-1].Seek+out[n-1].Count >= s {
			out[n-1].Count = max(out[n-1].Count, e-out[n-1].Seek)
		} else {
			out = append(out, extent{Seek: s, Count: e - s})
		}
		off = end
	}
	return out, nil
}

// usedExtents narrows segments to the MiBs that are not all zero: images
// written by tools that do not punch holes have allocated zeros too. It
// reads every data MiB once.
func usedExtents(ctx context.Context, f *os.File, segs []extent) ([]extent, error) {
	var out []extent
	buf := make([]byte, MiB)
	zero := make([]byte, MiB)
	for _, s := range segs {
		for i := s.Seek; i < s.Seek+s.Count; i++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, err := f.ReadAt(buf, i*MiB); err != nil {
				return nil, fmt.Errorf("read disk image at MiB %d: %w", i, err)
			}
			if bytes.Equal(buf, zero) {
				continue
			}
			if n := len(out); n > 0 && out[n-1].Seek+out[n-1].Count == i {
				out[n-1].Count++
			} else {
				out = append(out, extent{Seek: i, Count: 1})
			}
		}
	}
	return out, nil
}

// layout packs extents into part files of at most partMiB, splitting an
// extent where a part ends, so that each line reads from one file.
func layout(exts []extent) []mapLine {
	var lines []mapLine
	part, used := 0, int64(0)
	for _, e := range exts {
		for seek, left := e.Seek, e.Count; left > 0; {
			if used == partMiB {
				part, used = part+1, 0
			}
			n := min(left, partMiB-used)
			lines = append(lines, mapLine{Part: part, Skip: used, Seek: seek, Count: n})
			used += n
			seek += n
			left -= n
		}
	}
	return lines
}

// copyData writes the map's lines from the disk image src into dst, each
// part at its own offset (partOffset set by the caller), and fills in the
// sha256 sums: each line's and the whole image's, holes hashed as zeros so
// that the sum equals `sha256sum` of the image file.
func copyData(ctx context.Context, dst io.WriterAt, src io.ReaderAt, m *imageMap) error {
	whole := sha256.New()
	buf := make([]byte, MiB)
	zero := make([]byte, MiB)
	zeros := func(h hash.Hash, n int64) {
		for ; n > 0; n-- {
			h.Write(zero)
		}
	}
	pos := int64(0) // MiB of the image hashed so far
	for i := range m.Lines {
		l := &m.Lines[i]
		if l.Seek < pos {
			return fmt.Errorf("image map: line %d at MiB %d overlaps", i, l.Seek)
		}
		zeros(whole, l.Seek-pos)
		lh := sha256.New()
		for j := int64(0); j < l.Count; j++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := src.ReadAt(buf, (l.Seek+j)*MiB); err != nil {
				return fmt.Errorf("read disk image at MiB %d: %w", l.Seek+j, err)
			}
			if _, err := dst.WriteAt(buf, l.partOffset+(l.Skip+j)*MiB); err != nil {
				return fmt.Errorf("write ISO: %w", err)
			}
			lh.Write(buf)
			whole.Write(buf)
		}
		copy(l.Sum[:], lh.Sum(nil))
		pos = l.Seek + l.Count
	}
	if pos > m.SizeMiB {
		return fmt.Errorf("image map: data past the end of the image")
	}
	zeros(whole, m.SizeMiB-pos)
	copy(m.Sum[:], whole.Sum(nil))
	return nil
}
