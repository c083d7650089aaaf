package testhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// podmanConf makes rootful Podman 4.3 work inside the nspawn host: runc (crun
// fails on the hybrid cgroups here), ulimits below the hard limits, no
// session keyring and no pids limit (the guest has no cgroup controllers).
const podmanConf = `[containers]
default_ulimits = ["nofile=20000:20000","nproc=32768:32768"]
keyring = false
pids_limit = 0

[engine]
runtime = "runc"
`

func preparePodman(root string) error {
	dir := filepath.Join(root, "etc/containers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(podmanConf), 0o644)
}

// cgroupRoots are the build machine's hierarchies nspawn puts a container
// in: with the unified hierarchy it makes payload/ and supervisor/ below its
// own cgroup, so each host gets its own cgroup or two hosts would share them.
var cgroupRoots = []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"}

func (h *Host) cgroups() []string {
	var out []string
	for _, r := range cgroupRoots {
		if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
			out = append(out, filepath.Join(r, filepath.Base(h.work)))
		}
	}
	return out
}

func (h *Host) makeCgroups() error {
	for _, g := range h.cgroups() {
		if err := os.Mkdir(g, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup for the host: %w", err)
		}
	}
	return nil
}

// podmanNspawn runs nspawn in the host's cgroups with the unified hierarchy
// inside (without it the guest's v1 controllers are read-only and runc
// fails) and bpf() allowed (runc queries device programs).
func (h *Host) podmanNspawn(args []string) *exec.Cmd {
	script := `for g in $SPEEDIA_CGROUPS; do echo $$ > "$g/cgroup.procs" || exit 1; done; exec systemd-nspawn "$@"`
	args = append([]string{"-c", script, "sh", "--system-call-filter=bpf"}, args...)
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1", "SPEEDIA_CGROUPS="+strings.Join(h.cgroups(), " "))
	return cmd
}

// removeCgroups removes the host's cgroups, deepest first, once the killed
// processes have left them.
func (h *Host) removeCgroups() error {
	var errs []error
	for _, g := range h.cgroups() {
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if err = rmdirTree(g); err == nil || time.Now().After(deadline) {
				break
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func rmdirTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Podman runs the podman CLI inside the host (Options.Podman). Without
// INVOCATION_ID Podman moves conmon into a scope of its own; otherwise it
// stays in the transient unit of Run and dies with it, taking the container.
func (h *Host) Podman(ctx context.Context, args ...string) (string, error) {
	return h.Run(ctx, nil, nil, append([]string{"env", "-u", "INVOCATION_ID", "podman"}, args...)...)
}

// BusyboxImage imports a local image ref made of the host's busybox-static
// with all its applets in /bin (sh, httpd, wget, sleep...); there is no
// registry. busybox as PID 1 ignores SIGTERM: give containers --init or a
// command that traps TERM.
func (h *Host) BusyboxImage(ctx context.Context, ref string) error {
	script := `set -e
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/bin" "$d/tmp" "$d/www"
cp /bin/busybox "$d/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"; done
tar -C "$d" -c . | env -u INVOCATION_ID podman import -q --change 'CMD ["/bin/sh"]' - "$1"`
	if out, err := h.Run(ctx, nil, nil, "sh", "-c", script, "sh", ref); err != nil {
		return fmt.Errorf("busybox image %s: %w: %s", ref, err, out)
	}
	return nil
}
