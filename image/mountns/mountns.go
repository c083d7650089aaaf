// Package mountns runs a command in a private mount namespace: every mount
// it makes dies with it, so a killed build leaves no mount (and, with loop
// devices detached while mounted, no loop device) behind.
package mountns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// parentEnv carries the mount namespace of the process that re-executed us,
// so the child can tell it really got a new one.
const parentEnv = "SPEEDIA_PARENT_MNTNS"

func current() string {
	ns, _ := os.Readlink("/proc/self/ns/mnt")
	return ns
}

// Private reports whether this process runs in the namespace Reexec made.
func Private() bool {
	parent := os.Getenv(parentEnv)
	return parent != "" && current() != "" && current() != parent
}

// Reexec runs this program again with the same arguments inside a private
// mount namespace (unshare -m --propagation private) and exits with its
// status. In the child (Private is true) it returns at once.
func Reexec() error {
	if os.Getenv(parentEnv) != "" {
		if !Private() {
			return errors.New("unshare did not give a private mount namespace")
		}
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), parentEnv+"="+current())
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("re-exec in a private mount namespace: %w", err)
	}
	os.Exit(0)
	return nil
}
