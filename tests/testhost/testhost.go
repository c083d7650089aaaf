// Package testhost boots a real Debian host (systemd, D-Bus, logind, snapper)
// in systemd-nspawn on a loop-mounted btrfs with Speedia's snapshot layout,
// for integration tests and the demo.
//
// The host boots whatever the btrfs default subvolume names; when it reboots
// (nspawn exits 133) the harness boots the default subvolume again, so a test
// sees the real update -> set default -> reboot -> new snapshot cycle.
//
// All mounts live in a private mount namespace (see Main), the loop device is
// detached and every process is killed by PID in Close.
package testhost

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot/native"
)

// RepoDir is where the test apt repositories sit inside the host (in /var,
// shared by all snapshots and the staging chroot). "current" is a symlink
// that SetRepo moves.
const RepoDir = "/var/cache/speedia-testrepo"

// BinDir is where test binaries are put inside the host.
const BinDir = "/var/lib/speedia-test/bin"

// Options configure a test host.
type Options struct {
	Name     string // machine name; default "speedia-test"
	CacheDir string // rootfs and repo cache; default /var/cache/speedia-test
	DiskSize int64  // default 4 GiB (sparse)
	// Prepare, when set, runs on snapshot 1's root tree while it is still
	// writable (e.g. to install the product's binaries and units into /usr).
	Prepare func(root string) error
	Logf    func(format string, args ...any)
	// Podman boots a rootfs with rootful Podman 4.3 (podman.socket
	// enabled) and busybox-static, in its own cgroups with the unified
	// hierarchy that runc needs (see podman.go). Off by default: that
	// rootfs is larger and slower to unpack.
	Podman bool
}

// Host is one test host.
type Host struct {
	opt     Options
	work    string
	image   string
	loopDev string
	Top     string // the btrfs top level (subvolid 5), mounted here
	console *os.File

	mu      sync.Mutex
	nspawn  *exec.Cmd
	leader  int // the container's PID 1, as the host sees it
	boots   int
	closing bool
	exited  chan error // the boot loop ended
}

// SourceDir is the repository's tests/ directory.
func SourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func (h *Host) logf(format string, args ...any) {
	if h.opt.Logf != nil {
		h.opt.Logf(format, args...)
	}
}

func sh(ctx context.Context, name string, args ...string) (string, error) {
	out, err := run.Exec{}.Run(ctx, run.Cmd{Name: name, Args: args})
	return strings.TrimSpace(string(out)), err
}

// RootfsTarball builds or reuses the cached root filesystem tarball.
func RootfsTarball(ctx context.Context, cache string) (string, error) {
	return sh(ctx, "sh", filepath.Join(SourceDir(), "testhost", "rootfs.sh"), cache)
}

// PodmanRootfsTarball builds or reuses the cached root filesystem tarball
// with Podman (Options.Podman).
func PodmanRootfsTarball(ctx context.Context, cache string) (string, error) {
	return sh(ctx, "sh", filepath.Join(SourceDir(), "testhost", "rootfs-podman.sh"), cache)
}

// TestRepos builds or reuses the test apt repositories; returns their directory.
func TestRepos(ctx context.Context, cache string) (string, error) {
	script := filepath.Join(SourceDir(), "testpkgs", "build.sh")
	b, err := os.ReadFile(script)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	dir := filepath.Join(cache, "testrepo-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "v1", "Packages")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if _, err := sh(ctx, "sh", script, tmp); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, dir)
}

// New makes the disk, lays out snapshot 1 (bookworm + v1 test packages) and
// returns a host that is not booted yet. The caller must Close it.
func New(ctx context.Context, opt Options) (h *Host, err error) {
	if opt.Name == "" {
		opt.Name = "speedia-test"
	}
	if opt.CacheDir == "" {
		opt.CacheDir = "/var/cache/speedia-test"
	}
	if opt.DiskSize == 0 {
		opt.DiskSize = 4 << 30
	}
	if !PrivateMountNS() {
		return nil, errors.New("testhost: not in a private mount namespace; call testhost.Main from TestMain")
	}
	rootfs := RootfsTarball
	if opt.Podman {
		rootfs = PodmanRootfsTarball
	}
	tarball, err := rootfs(ctx, opt.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	repos, err := TestRepos(ctx, opt.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("test packages: %w", err)
	}
	work, err := os.MkdirTemp("/var/tmp", "speedia-testhost-")
	if err != nil {
		return nil, err
	}
	h = &Host{opt: opt, work: work, image: filepath.Join(work, "disk.img"), Top: filepath.Join(work, "top")}
	defer func() {
		if err != nil {
			h.Close()
			h = nil
		}
	}()
	if err := os.Mkdir(h.Top, 0o755); err != nil {
		return h, err
	}
	f, err := os.Create(h.image)
	if err != nil {
		return h, err
	}
	err = f.Truncate(opt.DiskSize)
	f.Close()
	if err != nil {
		return h, err
	}
	if _, err := sh(ctx, "mkfs.btrfs", "-q", h.image); err != nil {
		return h, err
	}
	if h.loopDev, err = sh(ctx, "losetup", "--find", "--show", h.image); err != nil {
		return h, err
	}
	if _, err := sh(ctx, "mount", h.loopDev, h.Top); err != nil {
		return h, err
	}
	h.logf("testhost: laying out snapshot 1 on %s (%s)", h.loopDev, h.image)
	err = native.Layout(ctx, run.Exec{}, h.Top, func(root string) error {
		if _, err := sh(ctx, "tar", "-C", root, "--numeric-owner", "-xpf", tarball); err != nil {
			return err
		}
		if err := prepareRoot(ctx, root, repos); err != nil {
			return err
		}
		if opt.Podman {
			if err := preparePodman(root); err != nil {
				return err
			}
		}
		if opt.Prepare != nil {
			return opt.Prepare(root)
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	// The repositories live in the shared /var; "current" starts at v1.
	varRepo := filepath.Join(h.Top, "@", "var", strings.TrimPrefix(RepoDir, "/var/"))
	if _, err := sh(ctx, "cp", "-a", repos+"/.", varRepo+"/"); err != nil {
		return h, err
	}
	if err := h.SetRepo("v1"); err != nil {
		return h, err
	}
	return h, nil
}

// prepareRoot installs the v1 test packages and points apt at the local
// repository only: no test depends on what a mirror publishes today.
func prepareRoot(ctx context.Context, root, repos string) error {
	debs, _ := filepath.Glob(filepath.Join(repos, "v1", "*.deb"))
	tmp := filepath.Join(root, "tmp", "speedia-v1")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	args := []string{root, "dpkg", "-i"}
	for _, d := range debs {
		if _, err := sh(ctx, "cp", d, tmp); err != nil {
			return err
		}
		args = append(args, "/tmp/speedia-v1/"+filepath.Base(d))
	}
	if _, err := sh(ctx, "chroot", args...); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	os.Remove(filepath.Join(root, "etc/apt/sources.list"))
	if old, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d/*")); len(old) > 0 {
		for _, o := range old {
			os.Remove(o)
		}
	}
	src := "deb [trusted=yes] file:" + RepoDir + "/current ./\n"
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/speedia-test.list"), []byte(src), 0o644); err != nil {
		return err
	}
	// snapper's own boot and timeline snapshots would pile up on every boot;
	// apt's daily runs would take the apt lock in the middle of a test.
	for _, unit := range []string{"snapper-boot.timer", "snapper-timeline.timer", "apt-daily.timer", "apt-daily-upgrade.timer"} {
		link := filepath.Join(root, "etc/systemd/system", unit)
		os.Remove(link)
		if err := os.Symlink("/dev/null", link); err != nil {
			return err
		}
	}
	return nil
}

// SetRepo points the host's apt source at one of the test repositories
// (v1, app2, kernel2, broken, bulk2).
func (h *Host) SetRepo(name string) error {
	dir := filepath.Join(h.Top, "@", "var", strings.TrimPrefix(RepoDir, "/var/"))
	if _, err := os.Stat(filepath.Join(dir, name, "Packages")); err != nil {
		return fmt.Errorf("test repository %q: %w", name, err)
	}
	tmp := filepath.Join(dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "current"))
}

// Install copies a file from the build machine into BinDir inside the host.
func (h *Host) Install(src string) (string, error) {
	dst := filepath.Join(h.Top, "@", "var", strings.TrimPrefix(BinDir, "/var/"), filepath.Base(src))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if _, err := sh(context.Background(), "install", "-m", "0755", src, dst); err != nil {
		return "", err
	}
	return filepath.Join(BinDir, filepath.Base(src)), nil
}

// DefaultRoot is the path, below Top, of the snapshot the host boots next.
func (h *Host) DefaultRoot(ctx context.Context) (string, error) {
	out, err := sh(ctx, "btrfs", "subvolume", "get-default", h.Top)
	if err != nil {
		return "", err
	}
	_, path, ok := strings.Cut(out, " path ")
	if !ok {
		return "", fmt.Errorf("unexpected get-default output %q", out)
	}
	return filepath.Join(h.Top, strings.TrimSpace(path)), nil
}

// Boot starts the boot loop and waits until the host is running.
func (h *Host) Boot(ctx context.Context) error {
	var err error
	if h.console, err = os.Create(filepath.Join(h.work, "console.log")); err != nil {
		return err
	}
	if h.opt.Podman {
		if err := h.makeCgroups(); err != nil {
			return err
		}
	}
	h.exited = make(chan error, 1)
	first := make(chan error, 1)
	go h.loop(first)
	if err := <-first; err != nil {
		return err
	}
	return h.WaitRunning(ctx)
}

func (h *Host) loop(first chan error) {
	for {
		root, err := h.DefaultRoot(context.Background())
		var cmd *exec.Cmd
		if err == nil {
			args := []string{"-b", "-D", root, "-M", h.opt.Name, "--register=no", "--keep-unit",
				"--console=read-only", "--private-network", "--bind=" + filepath.Join(h.Top, "@", ".snapshots") + ":/.snapshots"}
			for _, sub := range native.SharedSubvolumes {
				args = append(args, "--bind="+filepath.Join(h.Top, "@", sub)+":/"+sub)
			}
			cmd = exec.Command("systemd-nspawn", args...)
			if h.opt.Podman {
				cmd = h.podmanNspawn(args)
			}
			cmd.Stdout, cmd.Stderr = h.console, h.console
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			h.mu.Lock()
			if h.closing {
				err = errors.New("closing")
			} else if err = cmd.Start(); err == nil {
				h.nspawn, h.leader = cmd, 0
				h.boots++
			}
			h.mu.Unlock()
		}
		if first != nil {
			first <- err
			first = nil
		}
		if err != nil {
			h.exited <- err
			return
		}
		h.logf("testhost: boot %d from %s", h.boots, strings.TrimPrefix(root, h.Top))
		err = cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 133 {
			continue // the container asked for a reboot
		}
		h.mu.Lock()
		h.nspawn, h.leader = nil, 0
		h.mu.Unlock()
		h.exited <- fmt.Errorf("container stopped: %v", err)
		return
	}
}

// PID is the host's PID 1 as seen from the build machine (0 while booting).
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.leader == 0 && h.nspawn != nil {
		// nspawn briefly has an intermediate child while it sets up; the
		// container's PID 1 is the child in another PID namespace.
		self, _ := os.Readlink("/proc/self/ns/pid")
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", h.nspawn.Process.Pid, h.nspawn.Process.Pid))
		for _, f := range strings.Fields(string(b)) {
			ns, err := os.Readlink("/proc/" + f + "/ns/pid")
			if err == nil && ns != self {
				h.leader, _ = strconv.Atoi(f)
				break
			}
		}
	}
	return h.leader
}

// Boots counts how often the host has booted.
func (h *Host) Boots() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.boots
}

// BusAddress is the host's system bus, for DBUS_SYSTEM_BUS_ADDRESS.
func (h *Host) BusAddress() string {
	return fmt.Sprintf("unix:path=/proc/%d/root/run/dbus/system_bus_socket", h.PID())
}

// WaitRunning waits until systemd inside reports running (or degraded).
func (h *Host) WaitRunning(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last string
	for {
		if pid := h.PID(); pid != 0 {
			out, _ := run.Exec{}.Run(ctx, run.Cmd{Name: "nsenter", Args: []string{"-t", strconv.Itoa(pid), "-a", "systemctl", "is-system-running"}})
			last = strings.TrimSpace(string(out))
			if last == "running" || last == "degraded" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("host did not reach running (last state %q): %w; console: %s", last, ctx.Err(), h.ConsoleTail(20))
		case err := <-h.exited:
			h.exited <- err
			return fmt.Errorf("host stopped while booting: %w; console: %s", err, h.ConsoleTail(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// BootID is the running boot's /proc/sys/kernel/random/boot_id.
func (h *Host) BootID() (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/proc/sys/kernel/random/boot_id", h.PID()))
	if err != nil {
		// /proc of the container is only visible from inside.
		out, err := h.Direct(context.Background(), "cat", "/proc/sys/kernel/random/boot_id")
		return strings.TrimSpace(out), err
	}
	return strings.TrimSpace(string(b)), nil
}

// Direct runs a command inside the host's namespaces (not in its cgroups):
// for quick queries.
func (h *Host) Direct(ctx context.Context, args ...string) (string, error) {
	pid := h.PID()
	if pid == 0 {
		return "", errors.New("host is not running")
	}
	out, err := run.Exec{}.Run(ctx, run.Cmd{Name: "nsenter", Args: append([]string{"-t", strconv.Itoa(pid), "-a"}, args...)})
	return string(out), err
}

// Run runs a command inside the host as a transient systemd service (its own
// cgroup, seen by logind and killed by a reboot like any service), passing
// stdout, stderr and the exit code through.
func (h *Host) Run(ctx context.Context, env []string, w io.Writer, args ...string) (string, error) {
	pid := h.PID()
	if pid == 0 {
		return "", errors.New("host is not running")
	}
	a := []string{"-t", strconv.Itoa(pid), "-a", "systemd-run", "--wait", "--pipe", "-q", "--collect"}
	for _, e := range env {
		a = append(a, "--setenv="+e)
	}
	a = append(a, "--")
	out, err := run.Exec{}.Run(ctx, run.Cmd{Name: "nsenter", Args: append(a, args...), Log: w})
	return string(out), err
}

// Reboot reboots the host from inside and waits until it runs again with a
// new boot_id.
func (h *Host) Reboot(ctx context.Context) error {
	before, err := h.BootID()
	if err != nil {
		return err
	}
	boots := h.Boots()
	if _, err := h.Direct(ctx, "systemctl", "reboot"); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return h.WaitReboot(ctx, before, boots)
}

// WaitReboot waits for a reboot that was triggered otherwise (e.g. by logind).
func (h *Host) WaitReboot(ctx context.Context, beforeID string, beforeBoots int) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	for h.Boots() == beforeBoots {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no reboot: %w", ctx.Err())
		case err := <-h.exited:
			h.exited <- err
			return fmt.Errorf("host stopped instead of rebooting: %w; console: %s", err, h.ConsoleTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := h.WaitRunning(ctx); err != nil {
		return err
	}
	after, err := h.BootID()
	if err != nil {
		return err
	}
	if after == beforeID {
		return fmt.Errorf("boot_id unchanged after reboot (%s)", after)
	}
	return nil
}

// ConsoleTail returns the last n lines of the host's console.
func (h *Host) ConsoleTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(h.work, "console.log"))
	return run.LastLines(string(b), n)
}

// Close stops the host (by PID), unmounts, detaches the loop device and
// removes the disk image.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closing = true
	nspawn, leader := h.nspawn, h.leader
	h.mu.Unlock()
	if nspawn != nil {
		if leader == 0 {
			leader = h.PID()
		}
		if leader != 0 {
			// SIGKILL to PID 1 of a PID namespace kills the whole namespace.
			syscall.Kill(leader, syscall.SIGKILL)
		}
		syscall.Kill(nspawn.Process.Pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(nspawn.Process.Pid, syscall.SIGKILL)
			<-h.exited
		}
	}
	if h.console != nil {
		h.console.Close()
	}
	var errs []error
	if h.opt.Podman {
		errs = append(errs, h.removeCgroups())
	}
	if h.loopDev != "" {
		if _, err := sh(context.Background(), "umount", h.Top); err != nil {
			errs = append(errs, err)
		}
		if _, err := sh(context.Background(), "losetup", "-d", h.loopDev); err != nil {
			errs = append(errs, err)
		}
	}
	if os.Getenv("SPEEDIA_KEEP_TESTHOST") == "" {
		errs = append(errs, os.RemoveAll(h.work))
	}
	return errors.Join(errs...)
}

// LoopDevice is the loop device backing the host's disk ("" before New).
func (h *Host) LoopDevice() string { return h.loopDev }

// Image is the disk image file.
func (h *Host) Image() string { return h.image }

// Console returns a reader of the console log (for debugging).
func (h *Host) Console() *bufio.Reader {
	f, err := os.Open(filepath.Join(h.work, "console.log"))
	if err != nil {
		return bufio.NewReader(strings.NewReader(""))
	}
	return bufio.NewReader(f)
}

// ReadFile reads a file of the running host. It reads from inside: through
// /proc/PID/root, absolute symlinks would resolve on the build machine.
func (h *Host) ReadFile(path string) (string, error) {
	return h.Direct(context.Background(), "cat", "--", path)
}

// WriteFile writes a file of the running host (as an admin would).
func (h *Host) WriteFile(path, data string) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/root%s", h.PID(), path), []byte(data), 0o644)
}

// BuildTags are the tags Podman's bindings need to build without cgo (as
// in the Makefile).
const BuildTags = "remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp"

// BuildGo builds a main package of this module for the host (static, so it
// runs on the host's own libc or none). pkg is relative to the module root.
func BuildGo(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", BuildTags, "-o", out, "./"+pkg)
	cmd.Dir = filepath.Dir(SourceDir())
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, b)
	}
	return nil
}
