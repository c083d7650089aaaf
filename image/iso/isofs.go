package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// This file edits the ISO 9660 filesystem go-diskfs wrote, in place: it
// sets every timestamp to one date, and points the records of the data
// files at extents appended after go-diskfs' end. go-diskfs v1.9.4 dates
// the volume with time.Now and directory records with the local time zone,
// and copies file data from a staging copy in 2 KiB writes: the data parts
// would cost a second copy of the image on disk and minutes per GiB.

const (
	sector   = 2048
	pvdOff   = 16 * sector
	rootRec  = pvdOff + 156 // the root directory's record inside the PVD
	dateOff  = 18           // a record's recording date (7 bytes)
	maxDepth = 16
)

var errISO = errors.New("ISO 9660")

// isoRecord is one directory record on the image.
type isoRecord struct {
	Off  int64  // of the record in the image
	Path string // lower case, no ";1", e.g. "speedia/image.map"; "" for . and ..
	Dir  bool
	Loc  uint32 // extent, in sectors
	Size uint32
}

// isoVolume is what isoRecords read: the volume size and all records.
type isoVolume struct {
	Blocks  uint32
	Records []isoRecord
}

func (v *isoVolume) file(p string) (isoRecord, bool) {
	for _, r := range v.Records {
		if r.Path == p && !r.Dir {
			return r, true
		}
	}
	return isoRecord{}, false
}

// readVolume reads the primary volume descriptor and walks the tree.
func readVolume(f io.ReaderAt) (*isoVolume, error) {
	pvd := make([]byte, sector)
	if _, err := f.ReadAt(pvd, pvdOff); err != nil {
		return nil, fmt.Errorf("%w: read PVD: %w", errISO, err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return nil, fmt.Errorf("%w: no primary volume descriptor", errISO)
	}
	v := &isoVolume{Blocks: binary.LittleEndian.Uint32(pvd[80:])}
	root := parseRecord(pvd[156:], rootRec)
	root.Dir = true
	v.Records = append(v.Records, root)
	if err := v.walk(f, root, "", 0); err != nil {
		return nil, err
	}
	return v, nil
}

func parseRecord(b []byte, off int64) isoRecord {
	return isoRecord{
		Off:  off,
		Loc:  binary.LittleEndian.Uint32(b[2:]),
		Size: binary.LittleEndian.Uint32(b[10:]),
		Dir:  b[25]&2 != 0,
	}
}

func (v *isoVolume) walk(f io.ReaderAt, dir isoRecord, prefix string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: directories nested deeper than %d", errISO, maxDepth)
	}
	n := (int64(dir.Size) + sector - 1) / sector * sector
	b := make([]byte, n)
	base := int64(dir.Loc) * sector
	if _, err := f.ReadAt(b, base); err != nil {
		return fmt.Errorf("%w: read directory %q: %w", errISO, prefix, err)
	}
	for pos := int64(0); pos < int64(dir.Size); {
		l := int64(b[pos])
		if l == 0 { // records do not cross sectors: the rest is padding
			pos = (pos/sector + 1) * sector
			continue
		}
		if l < 34 || pos+l > n || 33+int64(b[pos+32]) > l {
			return fmt.Errorf("%w: bad record at %d in %q", errISO, base+pos, prefix)
		}
		r := parseRecord(b[pos:pos+l], base+pos)
		name := string(b[pos+33 : pos+33+int64(b[pos+32])])
		if name != "\x00" && name != "\x01" {
			name = strings.TrimSuffix(strings.TrimSuffix(name, ";1"), ".")
			r.Path = prefix + strings.ToLower(name)
		}
		v.Records = append(v.Records, r)
		if r.Dir && r.Path != "" {
			if err := v.walk(f, r, r.Path+"/", depth+1); err != nil {
				return err
			}
		}
		pos += l
	}
	return nil
}

// bothEndian is ISO 9660's 32-bit field: little-endian, then big-endian.
func bothEndian(x uint32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, x)
	binary.BigEndian.PutUint32(b[4:], x)
	return b
}

// setDates gives every record and the volume descriptor the date t (UTC);
// expiration and effective dates are left unset.
func (v *isoVolume) setDates(f io.WriterAt, t time.Time) error {
	t = t.UTC()
	rec := []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
	for _, r := range v.Records {
		if _, err := f.WriteAt(rec, r.Off+dateOff); err != nil {
			return err
		}
	}
	dec := append([]byte(t.Format("20060102150405")+"00"), 0)
	unset := append([]byte("0000000000000000"), 0)
	for i, d := range [][]byte{dec, dec, unset, unset} { // creation, modification, expiration, effective
		if _, err := f.WriteAt(d, pvdOff+813+int64(i)*17); err != nil {
			return err
		}
	}
	return nil
}

// setExtent points a file's record at loc (sectors) with size bytes.
func setExtent(f io.WriterAt, r isoRecord, loc uint32, size int64) error {
	if size > 0xffffffff {
		return fmt.Errorf("%w: %s: %d bytes do not fit one extent", errISO, r.Path, size)
	}
	if _, err := f.WriteAt(bothEndian(loc), r.Off+2); err != nil {
		return err
	}
	_, err := f.WriteAt(bothEndian(uint32(size)), r.Off+10)
	return err
}

// setBlocks sets the volume size in the PVD.
func setBlocks(f io.WriterAt, blocks uint32) error {
	_, err := f.WriteAt(bothEndian(blocks), pvdOff+80)
	return err
}
