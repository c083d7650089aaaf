package iso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// sparseImage makes a file of sizeMiB with random data written at the
// given byte offsets and lengths; the rest are holes.
func sparseImage(t *testing.T, sizeMiB int64, writes [][2]int64) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "raw.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(sizeMiB * MiB); err != nil {
		t.Fatal(err)
	}
	whole := make([]byte, sizeMiB*MiB)
	r := rand.New(rand.NewPCG(1, 2))
	for _, w := range writes {
		b := make([]byte, w[1])
		for i := range b {
			b[i] = byte(r.UintN(255)) + 1 // never zero, so every written MiB is data
		}
		if _, err := f.WriteAt(b, w[0]); err != nil {
			t.Fatal(err)
		}
		copy(whole[w[0]:], b)
	}
	return p, whole
}

// holesWork skips a test on filesystems that do not keep files sparse.
func holesWork(t *testing.T, p string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= st.Size {
		t.Skip("the test directory's filesystem does not keep files sparse")
	}
}

func TestDataSegments(t *testing.T) {
	p, _ := sparseImage(t, 16, [][2]int64{
		{0, 1},                // MiB 0
		{3*MiB + 100, 4096},   // MiB 3
		{5*MiB + MiB/2, MiB},  // MiB 5 and 6
		{7 * MiB, 4096},       // MiB 7: adjacent, merged
		{15*MiB + MiB - 1, 1}, // the last byte
	})
	holesWork(t, p)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := dataSegments(f, 16*MiB)
	if err != nil {
		t.Fatal(err)
	}
	want := []extent{{0, 1}, {3, 1}, {5, 3}, {15, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("segments %v, want %v", got, want)
	}
	// All holes: nothing.
	empty, _ := sparseImage(t, 4, nil)
	g, _ := os.Open(empty)
	defer g.Close()
	if got, err := dataSegments(g, 4*MiB); err != nil || len(got) != 0 {
		t.Errorf("empty image: %v, %v", got, err)
	}
}

func TestUsedExtentsSkipsWrittenZeros(t *testing.T) {
	p, _ := sparseImage(t, 6, [][2]int64{{0, 10}, {2 * MiB, 10}, {4*MiB + 5, 10}})
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// MiB 1 and 3 allocated but zero, as a tool that writes zeros leaves them.
	f.WriteAt(make([]byte, MiB), 1*MiB)
	f.WriteAt(make([]byte, MiB), 3*MiB)
	got, err := usedExtents(context.Background(), f, []extent{{0, 6}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []extent{{0, 1}, {2, 1}, {4, 1}}; !slices.Equal(got, want) {
		t.Errorf("used %v, want %v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := usedExtents(ctx, f, []extent{{0, 6}}); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exts  []extent
		lines []mapLine
		parts []int64
	}{
		{name: "none"},
		{
			name:  "one part",
			exts:  []extent{{0, 1}, {20, 5}},
			lines: []mapLine{{Part: 0, Skip: 0, Seek: 0, Count: 1}, {Part: 0, Skip: 1, Seek: 20, Count: 5}},
			parts: []int64{6},
		},
		{
			name: "split where parts end",
			exts: []extent{{0, 1}, {10, 2000}, {3000, 100}},
			lines: []mapLine{
				{Part: 0, Skip: 0, Seek: 0, Count: 1},
				{Part: 0, Skip: 1, Seek: 10, Count: 1023},
				{Part: 1, Skip: 0, Seek: 1033, Count: 977},
				{Part: 1, Skip: 977, Seek: 3000, Count: 47},
				{Part: 2, Skip: 0, Seek: 3047, Count: 53},
			},
			parts: []int64{partMiB, partMiB, 53},
		},
		{
			name:  "exactly one part",
			exts:  []extent{{5, partMiB}},
			lines: []mapLine{{Part: 0, Skip: 0, Seek: 5, Count: partMiB}},
			parts: []int64{partMiB},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := imageMap{Lines: layout(tc.exts)}
			if !slices.Equal(m.Lines, tc.lines) {
				t.Errorf("lines %v, want %v", m.Lines, tc.lines)
			}
			if !slices.Equal(m.Parts(), tc.parts) {
				t.Errorf("parts %v, want %v", m.Parts(), tc.parts)
			}
		})
	}
}

// memWriter is an io.WriterAt into a growing buffer.
type memWriter struct{ b []byte }

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if n := off + int64(len(p)); n > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, n-int64(len(w.b)))...)
	}
	return copy(w.b[off:], p), nil
}

func TestCopyData(t *testing.T) {
	p, whole := sparseImage(t, 8, [][2]int64{{0, 5}, {3 * MiB, 2 * MiB}, {7 * MiB, 1}})
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &imageMap{SizeMiB: 8, Lines: layout([]extent{{0, 1}, {3, 2}, {7, 1}})}
	const base = 4 * sector // where the part would start in an ISO
	for i := range m.Lines {
		m.Lines[i].partOffset = base
	}
	var dst memWriter
	if err := copyData(context.Background(), &dst, f, m); err != nil {
		t.Fatal(err)
	}
	if m.Sum != sha256.Sum256(whole) {
		t.Errorf("whole sum %x, want sha256 of the file", m.Sum)
	}
	for _, l := range m.Lines {
		data := whole[l.Seek*MiB : (l.Seek+l.Count)*MiB]
		if l.Sum != sha256.Sum256(data) {
			t.Errorf("line at MiB %d: wrong sum", l.Seek)
		}
		if !bytes.Equal(dst.b[base+l.Skip*MiB:base+(l.Skip+l.Count)*MiB], data) {
			t.Errorf("line at MiB %d: wrong data in the part", l.Seek)
		}
	}
	want := fmt.Sprintf("speedia-image 1 8 4 %x\n"+
		"part000.dat 0 0 1 %x\npart000.dat 1 3 2 %x\npart000.dat 3 7 1 %x\n",
		sha256.Sum256(whole), sha256.Sum256(whole[:MiB]), sha256.Sum256(whole[3*MiB:5*MiB]), sha256.Sum256(whole[7*MiB:]))
	if got := m.String(); got != want {
		t.Errorf("map:\n%s\nwant:\n%s", got, want)
	}
}
