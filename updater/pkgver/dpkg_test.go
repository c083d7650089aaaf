package pkgver

import (
	"os/exec"
	"testing"
)

// TestDebianMatchesDpkg checks our ordering against dpkg's own, where dpkg
// is installed (Debian machines, CI).
func TestDebianMatchesDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed")
	}
	versions := []string{"1.0", "1.0~rc1", "1.0+deb12u1", "1:0.9", "6.1.0-13", "6.1.0-9", "2.36-9+deb12u4",
		"2.36-9+deb12u10", "1.0a", "1.0-1~bpo1", "0:1.2", "1.2", "1.2.3~~", "1.2.3~", "1.10", "1.9", "2.0.0+git20240101"}
	for _, a := range versions {
		for _, b := range versions {
			want := 0
			switch {
			case exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil:
				want = -1
			case exec.Command("dpkg", "--compare-versions", a, "gt", b).Run() == nil:
				want = 1
			}
			if got := Debian(a, b); got != want {
				t.Errorf("Debian(%q, %q) = %d, dpkg says %d", a, b, got, want)
			}
		}
	}
}
