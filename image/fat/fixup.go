package fat

import (
	"encoding/binary"
	"fmt"
	"os"
)

// fixFAT32 mends two things go-diskfs v1.9.4 writes differently from what
// the FAT spec (and fsck.fat) want: ".." in a directory below the root must
// name cluster 0, and FSInfo should carry the free cluster count.
func fixFAT32(f *os.File, offset int64) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, offset); err != nil {
		return err
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nfats := int64(bs[16])
	total := int64(le.Uint32(bs[32:]))
	fatSectors := int64(le.Uint32(bs[36:]))
	root := le.Uint32(bs[44:])
	fsInfo := int64(le.Uint16(bs[48:]))
	backup := int64(le.Uint16(bs[50:]))
	if bps == 0 || spc == 0 || fatSectors == 0 {
		return fmt.Errorf("fix FAT32: bad boot sector")
	}
	fat := make([]byte, fatSectors*bps)
	if _, err := f.ReadAt(fat, offset+reserved*bps); err != nil {
		return err
	}
	dataStart := reserved + nfats*fatSectors
	clusters := (total - dataStart) / spc
	clusterSize := spc * bps
	clusterOff := func(c uint32) int64 { return offset + (dataStart+(int64(c)-2)*spc)*bps }
	next := func(c uint32) uint32 { return le.Uint32(fat[4*int64(c):]) & 0x0fffffff }

	// Subdirectories of the root: their ".." entry (the second) gets cluster 0.
	buf := make([]byte, clusterSize)
	for c, n := root, 0; c >= 2 && c < 0x0ffffff8; c, n = next(c), n+1 {
		if n > int(clusters) {
			return fmt.Errorf("fix FAT32: root directory chain loops")
		}
		if _, err := f.ReadAt(buf, clusterOff(c)); err != nil {
			return err
		}
		for i := 0; i+32 <= len(buf); i += 32 {
			e := buf[i : i+32]
			if e[0] == 0 {
				break
			}
			if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
				continue
			}
			sub := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			dotdot := make([]byte, 32)
			if _, err := f.ReadAt(dotdot, clusterOff(sub)+32); err != nil {
				return err
			}
			if string(dotdot[:2]) != ".." {
				continue
			}
			le.PutUint16(dotdot[20:], 0)
			le.PutUint16(dotdot[26:], 0)
			if _, err := f.WriteAt(dotdot, clusterOff(sub)+32); err != nil {
				return err
			}
		}
	}

	var free, first uint32
	for c := uint32(2); c < uint32(clusters)+2; c++ {
		if next(c) == 0 {
			if free == 0 {
				first = c
			}
			free++
		}
	}
	for _, s := range []int64{fsInfo, backup + 1} {
		b := make([]byte, 8)
		le.PutUint32(b, free)
		le.PutUint32(b[4:], first)
		if _, err := f.WriteAt(b, offset+s*bps+488); err != nil {
			return err
		}
	}
	return nil
}
