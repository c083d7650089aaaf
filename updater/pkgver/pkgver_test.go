package pkgver

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "2.0", -1},
		{"2.0", "1.0", 1},
		{"1.10", "1.9", 1},  // numeric, not lexical
		{"1.0", "1.0.0", 0}, // go-version: equal
		{"1.0", "1.0", 0},
		{"1.0~rc1", "1.0", -1}, // tilde sorts before the release
		{"1.0", "1.0+deb12u1", -1},
		{"1:0.9", "2.0", 1},        // epoch wins
		{"6.1.0-13", "6.1.0-9", 1}, // Debian revision is numeric
		{"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
		{"1.0a", "1.0", 1},
		{"1.0-1", "1.0-1~bpo1", 1},
		{"0:1.2", "1.2", 0},
		{"1.2.3~~", "1.2.3~", -1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d (antisymmetry)", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestDiff(t *testing.T) {
	old := map[string]string{"a": "1.0", "b": "2.0", "c": "1.0", "gone": "1"}
	new := map[string]string{"a": "1.1", "b": "1.9", "c": "1.0", "added": "3"}
	want := []Change{
		{Name: "a", Old: "1.0", New: "1.1", Kind: "upgrade"},
		{Name: "added", New: "3", Kind: "install"},
		{Name: "b", Old: "2.0", New: "1.9", Kind: "downgrade"},
		{Name: "gone", Old: "1", Kind: "remove"},
	}
	if got := Diff(old, new); !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff = %+v\nwant %+v", got, want)
	}
}

func FuzzDebianAntisymmetric(f *testing.F) {
	for _, s := range []string{"1.0", "1:2.3-4", "1.0~rc1", "2.36-9+deb12u4", "a~b"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if Debian(a, b) != -Debian(b, a) {
			t.Fatalf("Debian(%q,%q)=%d but reverse=%d", a, b, Debian(a, b), Debian(b, a))
		}
		if Debian(a, a) != 0 {
			t.Fatalf("Debian(%q,%q) != 0", a, a)
		}
	})
}
