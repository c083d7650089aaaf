package testhost

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// parentNSEnv carries the mount namespace of the process that re-executed
// us, so the child can tell it really got a new one. (/proc/1/ns is not
// readable in every sandbox, so PID 1 is no reference.)
const parentNSEnv = "SPEEDIA_TESTHOST_PARENT_MNTNS"

func mountNS() string {
	ns, _ := os.Readlink("/proc/self/ns/mnt")
	return ns
}

// PrivateMountNS reports whether this process runs in the private mount
// namespace Reexec made (so loop mounts cannot leak into, or be pinned by,
// the rest of the machine).
func PrivateMountNS() bool {
	parent := os.Getenv(parentNSEnv)
	return parent != "" && mountNS() != "" && mountNS() != parent
}

// Reexec runs this program again inside a private mount namespace (unshare
// -m --propagation private), exactly once, and exits with the child's status.
// Every mount made inside dies with the namespace.
func Reexec() {
	if os.Getenv(parentNSEnv) != "" {
		if !PrivateMountNS() {
			fmt.Fprintln(os.Stderr, "testhost: unshare did not give a private mount namespace")
			os.Exit(1)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhost:", err)
		os.Exit(1)
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), parentNSEnv+"="+mountNS())
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				os.Exit(128 + int(ws.Signal()))
			}
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "testhost: re-exec in a private mount namespace:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Main is TestMain for packages that use a test host.
func Main(m *testing.M) {
	Reexec()
	os.Exit(m.Run())
}
