// Package podmantest runs a real, isolated rootful Podman API service for
// integration tests, benchmarks and the demo.
//
// The service runs in its own PID, mount and network namespaces, under
// catatonit as PID 1, with fresh tmpfs on /run and /dev/shm and its storage,
// runtime dirs and config under one directory. So it never shares Podman's
// default state (/var/lib/containers, /run/containers, /run/netns, the SHM
// lock segment, the podman0 bridge and its firewall rules) with the machine,
// and killing that PID 1 kills every process of it (service, conmon,
// containers) and releases every mount and network namespace it made: that
// is how Reboot and Close work.
package podmantest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotRunning is returned when the service is stopped (closed, or between
// the two halves of a Reboot).
var ErrNotRunning = errors.New("podmantest: service not running")

// Binaries the harness needs; variables so a machine with other paths can
// point them elsewhere.
var (
	PodmanBin    = "podman"
	CatatonitBin = "catatonit"
	NsenterBin   = "nsenter"
	IPBin        = "ip"
)

// StartTimeout bounds how long Start and Reboot wait for _ping.
var StartTimeout = 30 * time.Second

// Service is a rootful Podman API service with its own storage, runtime dirs
// and config under Dir.
type Service struct {
	Dir         string
	Socket      string // the API socket: podman.Connect(ctx, s.Socket)
	Root        string // --root (graphroot)
	RunRoot     string // --runroot; emptied by Reboot
	TmpDir      string // --tmpdir (libpod's runtime state); emptied by Reboot
	Conf        string // containers.conf (CONTAINERS_CONF)
	StorageConf string // storage.conf (CONTAINERS_STORAGE_CONF)
	Log         string // the service's stdout and stderr

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when the namespace's PID 1 was reaped
	pidNS string        // e.g. "pid:[4026532301]"
}

// Start starts `podman system service --time=0` on Dir/podman.sock in fresh
// namespaces and waits until GET /_ping answers. dir must exist and must not
// be under /run or /dev (those are private tmpfs inside). ctx bounds only the
// wait: the service runs until Close.
func Start(ctx context.Context, dir string) (*Service, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("podmantest: rootful podman needs root")
	}
	for _, bin := range []string{PodmanBin, CatatonitBin, NsenterBin, IPBin, "runc", "conmon"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("podmantest: %w", err)
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	for _, hidden := range []string{"/run", "/dev", "/proc"} {
		if dir == hidden || strings.HasPrefix(dir, hidden+"/") {
			return nil, fmt.Errorf("podmantest: dir %s is hidden inside the service's namespace", dir)
		}
	}
	s := &Service{
		Dir:         dir,
		Socket:      filepath.Join(dir, "podman.sock"),
		Root:        filepath.Join(dir, "root"),
		RunRoot:     filepath.Join(dir, "runroot"),
		TmpDir:      filepath.Join(dir, "tmp"),
		Conf:        filepath.Join(dir, "containers.conf"),
		StorageConf: filepath.Join(dir, "storage.conf"),
		Log:         filepath.Join(dir, "service.log"),
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := s.boot(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Service) networkDir() string { return filepath.Join(s.Dir, "networks") }

func (s *Service) varLib() string { return filepath.Join(s.Dir, "varlib") }

func (s *Service) writeConfig() error {
	for _, d := range []string{s.Root, s.RunRoot, s.TmpDir, s.networkDir(), filepath.Join(s.Dir, "imagetmp"),
		filepath.Join(s.varLib(), "upper"), filepath.Join(s.varLib(), "work")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("podmantest: %w", err)
		}
	}
	// runc, not crun: crun fails here (RLIMIT_NOFILE on hybrid cgroups); the
	// ulimits stay within the hard limits of the machine.
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = %q

[network]
network_backend = "netavark"
network_config_dir = %q
`, filepath.Join(s.Dir, "imagetmp"), s.networkDir())
	storage := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, s.Root, s.RunRoot)
	if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	if err := os.WriteFile(s.StorageConf, []byte(storage), 0o644); err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	return nil
}

// globalArgs are the flags every podman invocation gets, the service's too.
func (s *Service) globalArgs() []string {
	return []string{"--root", s.Root, "--runroot", s.RunRoot, "--tmpdir", s.TmpDir,
		"--cgroup-manager", "cgroupfs", "--events-backend", "file"}
}

func (s *Service) env() []string {
	env := []string{"CONTAINERS_CONF=" + s.Conf, "CONTAINERS_STORAGE_CONF=" + s.StorageConf}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINER_HOST", "CONTAINER_CONNECTION", "TMPDIR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// bootScript runs as catatonit's child: what a booted host gives Podman
// (empty /run and /dev/shm, its own /proc, loopback up), then the service.
// /var/lib gets an overlay whose upper dir is under Dir because Podman 4.3
// writes its blob-info cache to /var/lib/containers/cache whatever --root is.
const bootScript = `set -e
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t overlay -o "lowerdir=/var/lib,upperdir=$VARLIB/upper,workdir=$VARLIB/work" overlay /var/lib
"$0" link set lo up
exec "$@"`

// boot starts the namespaces and the service and waits for _ping.
func (s *Service) boot(ctx context.Context) error {
	_ = os.Remove(s.Socket)
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	args := append([]string{"--", "/bin/sh", "-c", bootScript, IPBin, PodmanBin}, s.globalArgs()...)
	args = append(args, "system", "service", "--time=0", "unix://"+s.Socket)
	cmd := exec.Command(CatatonitBin, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(s.env(), "VARLIB="+s.varLib())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
		Unshareflags: syscall.CLONE_NEWNS, // Go also makes / rprivate: nothing leaks out
		Setsid:       true,
		Pdeathsig:    syscall.SIGKILL, // the test binary died: the namespace goes with it
	}
	// Pdeathsig fires when the forking thread exits, so that thread is kept
	// for the service's lifetime by the goroutine that waits for it.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	err = <-started
	logf.Close()
	if err != nil {
		return fmt.Errorf("podmantest: start service: %w", err)
	}
	pidNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", cmd.Process.Pid))
	s.mu.Lock()
	s.cmd, s.done, s.pidNS = cmd, done, pidNS
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	return s.waitPing(ctx, done)
}

func (s *Service) waitPing(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", s.Socket)
		},
		DisableKeepAlives: true,
	}}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://d/_ping", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("podmantest: service exited: %s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("podmantest: waiting for _ping: %w: %s", ctx.Err(), s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Service) logTail() string {
	b, _ := os.ReadFile(s.Log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// PID is the namespace's PID 1 (catatonit) as the machine sees it, or 0
// when stopped. `nsenter -t PID -m -n -p` enters the service's world.
func (s *Service) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Podman runs the podman CLI inside the service's namespaces against the
// same storage and config, and returns its combined output. Relative paths
// are relative to Dir.
func (s *Service) Podman(ctx context.Context, args ...string) (string, error) {
	pid := s.PID()
	if pid == 0 {
		return "", ErrNotRunning
	}
	full := []string{"--target", strconv.Itoa(pid), "--mount", "--net", "--pid", "--wd=" + s.Dir, "--", PodmanBin}
	full = append(append(full, s.globalArgs()...), args...)
	cmd := exec.CommandContext(ctx, NsenterBin, full...)
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// RestartPolicyAlways does what podman-restart.service does at boot.
func (s *Service) RestartPolicyAlways(ctx context.Context) error {
	_, err := s.Podman(ctx, "start", "--all", "--filter", "restart-policy=always")
	return err
}

// Reboot simulates a host reboot for Podman: power-off kill of everything
// (see kill), RunRoot and TmpDir emptied as a tmpfs is after boot, and the
// service started again, which makes Podman "refresh" its state: containers
// that were running are no longer running (Podman 4.3 shows them "Created").
// Nothing restarts them; see RestartPolicyAlways.
func (s *Service) Reboot(ctx context.Context) error {
	if err := s.kill(); err != nil {
		return err
	}
	for _, d := range []string{s.RunRoot, s.TmpDir} {
		if err := emptyDir(d); err != nil {
			return err
		}
	}
	return s.boot(ctx)
}

// Close kills the service and all its containers and releases their mounts
// and network namespaces. Dir stays (t.TempDir removes it). Safe to call twice.
func (s *Service) Close() error {
	err := s.kill()
	_ = os.Remove(s.Socket)
	return err
}

// kill SIGKILLs the namespace's PID 1 by PID: the kernel then kills every
// process in the PID namespace (service, CLI runs, conmon, containers in
// their nested namespaces) before PID 1 is reaped. With the last process
// gone the mount and network namespaces die, and with them every overlay,
// shm and netns mount Podman made. Left on the machine are only the empty
// cgroups of containers that were running, which it removes.
func (s *Service) kill() error {
	s.mu.Lock()
	cmd, done, pidNS := s.cmd, s.done, s.pidNS
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("podmantest: PID %d did not die", cmd.Process.Pid)
	}
	if pids := PIDsInNamespace(pidNS); len(pids) > 0 {
		return fmt.Errorf("podmantest: processes %v outlived their namespace", pids)
	}
	return s.removeCgroups()
}

// removeCgroups removes the container cgroups runc made (cgroupfs manager:
// libpod_parent/libpod-<id> in every hierarchy); a reboot would not keep them.
func (s *Service) removeCgroups() error {
	ids, err := os.ReadDir(filepath.Join(s.Root, "overlay-containers"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("podmantest: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if !id.IsDir() {
			continue
		}
		for _, pattern := range []string{"/sys/fs/cgroup/*/libpod_parent/libpod-", "/sys/fs/cgroup/libpod_parent/libpod-"} {
			dirs, _ := filepath.Glob(pattern + id.Name())
			for _, d := range dirs {
				if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("podmantest: remove cgroup %s: %w", d, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// PIDsInNamespace lists the processes whose PID namespace is ns (as
// readlink /proc/PID/ns/pid prints it).
func PIDsInNamespace(ns string) []int {
	if ns == "" {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && link == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("podmantest: %w", err)
		}
	}
	return nil
}
