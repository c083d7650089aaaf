package testhost

import (
	"fmt"
	"os"
	"testing"

	"github.com/speedia/host/image/mountns"
)

// PrivateMountNS reports whether this process runs in the private mount
// namespace Reexec made (so loop mounts cannot leak into, or be pinned by,
// the rest of the machine).
func PrivateMountNS() bool { return mountns.Private() }

// Reexec runs this program again inside a private mount namespace, exactly
// once, and exits with the child's status. Every mount made inside dies
// with the namespace.
func Reexec() {
	if err := mountns.Reexec(); err != nil {
		fmt.Fprintln(os.Stderr, "testhost:", err)
		os.Exit(1)
	}
}

// Main is TestMain for packages that use a test host.
func Main(m *testing.M) {
	Reexec()
	os.Exit(m.Run())
}
