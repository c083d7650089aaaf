package vmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/speedia/host/tests/vm"
	cmdrun "github.com/speedia/host/updater/run"
)

// Policy is the update policy the VM gets from its config drive: the
// example's periodic strategy with a maintenance window that is open from
// an hour before now for 12 hours, so the daemon reboots as soon as it has
// staged (after a 5 s warning); no waiting for logged-in users, since the
// test itself logs in over SSH all the time.
func Policy(now time.Time) string {
	start := now.UTC().Truncate(time.Hour).Add(-time.Hour)
	return fmt.Sprintf(`[check]
interval = "24h"
jitter = "0s"

[reboot]
strategy = "periodic"
timezone = "UTC"
delay = "5s"
min_gap = "0s"
jitter = "0s"
respect_users = false

[[reboot.window]]
days = "daily"
start = %q
length = "12h"

[health]
timeout = "5m"
`, start.Format("15:04"))
}

// Options describe one VM host.
type Options struct {
	Image    *Image
	Dir      string // work dir: the disk overlay, config drive, serial log, SSH key
	RepoPort int    // the local apt repository on the host's 127.0.0.1
	Root     string // the repository's root (for bin/speedia-image)
	Log      io.Writer
}

// Host is the booted VM.
type Host struct {
	VM  *vm.VM
	Key string // SSH private key for root
	o   Options
}

// Boot makes a copy-on-write disk over the image, a config drive (SSH key,
// hostname, Policy, and a first-boot script that points apt at the test's
// repository), boots them and waits for SSH.
func Boot(ctx context.Context, o Options) (*Host, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	disk := filepath.Join(o.Dir, "disk.qcow2")
	os.Remove(disk)
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", o.Image.Path, disk).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("vmhost: qemu-img create: %w: %s", err, out)
	}
	key, pub, err := vm.NewKey(o.Dir)
	if err != nil {
		return nil, err
	}
	seed, err := configDrive(ctx, o, pub)
	if err != nil {
		return nil, err
	}
	qdir := filepath.Join(o.Dir, "qemu")
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	v, err := vm.Start(ctx, vm.Options{
		Dir:     qdir,
		Disks:   []vm.Disk{{Path: disk, Format: "qcow2"}, {Path: seed, Format: "raw", ReadOnly: true}},
		Memory:  2048,
		Forward: []int{WebPort, DBPort},
		// The cycle reboots the guest many times; a power cycle per reboot
		// keeps it clear of QEMU's occasional hang in a warm reset.
		ColdReboot: true,
		Log:        o.Log,
	})
	if err != nil {
		return nil, err
	}
	h := &Host{VM: v, Key: key, o: o}
	wait, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := v.WaitSSH(wait, key, "root"); err != nil {
		v.Close()
		return nil, err
	}
	return h, nil
}

func configDrive(ctx context.Context, o Options, pub string) (string, error) {
	script := fmt.Sprintf(`#!/bin/sh
# The VM's only package source: the test's repository on the host, which
# QEMU's user network shows as 10.0.2.2.
set -eu
echo 'deb [trusted=yes] http://10.0.2.2:%d/ ./' > /etc/apt/sources.list
rm -f /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
# Initrds with only the modules this VM needs: under emulation, building
# one with MODULES=most (Debian's default) takes over ten minutes.
echo MODULES=dep > /etc/initramfs-tools/conf.d/speedia-vm
# Plain reboots stay firmware reboots; kexec only when asked for.
[ ! -f /etc/default/kexec ] || sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' /etc/default/kexec
`, o.RepoPort)
	if err := os.WriteFile(filepath.Join(o.Dir, "firstboot.sh"), []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("vmhost: %w", err)
	}
	var policy strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(Policy(time.Now())), "\n") {
		// The spec nests the policy under [update].
		if strings.HasPrefix(l, "[[") {
			l = "[[update." + l[2:]
		} else if strings.HasPrefix(l, "[") {
			l = "[update." + l[1:]
		}
		policy.WriteString(l + "\n")
	}
	spec := fmt.Sprintf(`name = "debian-web"
version = "1.0.0"
base = "debian"
date = 2026-11-22
hostname = "web1-vm"

[[users]]
name = "root"
ssh_keys = [%q]

%s
[firstboot]
script = "firstboot.sh"
`, pub, policy.String())
	specPath := filepath.Join(o.Dir, "drive.toml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		return "", fmt.Errorf("vmhost: %w", err)
	}
	seed := filepath.Join(o.Dir, "seed.img")
	out, err := exec.CommandContext(ctx, filepath.Join(o.Root, "bin", "speedia-image"), "config-drive", specPath, "--out", seed).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("vmhost: speedia-image config-drive: %w: %s", err, out)
	}
	return seed, nil
}

// Run runs a shell command line in the guest as root.
func (h *Host) Run(ctx context.Context, cmd string) (string, error) {
	return h.VM.SSH(ctx, h.Key, "root", cmd)
}

// Code runs cmd and returns its exit code (255 is ssh's own failure).
func (h *Host) Code(ctx context.Context, cmd string) (string, int, error) {
	out, err := h.Run(ctx, cmd)
	var ee *cmdrun.ExitError
	if errors.As(err, &ee) {
		return out + ee.Stderr, ee.Code, nil
	}
	return out, 0, err
}

// BootID is the guest's current boot ID.
func (h *Host) BootID(ctx context.Context) (string, error) {
	try, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := h.Run(try, "cat /proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(out), err
}

// WaitBoot waits until the guest answers SSH with a boot ID other than old
// and returns it.
func (h *Host) WaitBoot(parent context.Context, old string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(parent, limit)
	defer cancel()
	for {
		id, err := h.BootID(ctx)
		if err == nil && id != old && id != "" {
			return id, nil
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return "", parent.Err()
			}
			return "", fmt.Errorf("the VM did not come back from a reboot within %v", limit)
		case <-h.VM.Exited():
			return "", vm.ErrExited
		case <-time.After(time.Second):
		}
	}
}

// Status is the part of `speedia-update status --json` the tests and demos read.
type Status struct {
	Phase           string     `json:"phase"`
	Booted          uint32     `json:"booted"`
	Pending         uint32     `json:"pending"`
	LastGood        uint32     `json:"last_good"`
	NextReboot      *time.Time `json:"next_reboot"`
	LastCheckResult string     `json:"last_check_result"`
	LastError       string     `json:"last_error"`
	BadUpdates      []struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"bad_updates"`
}

func (s Status) String() string {
	return fmt.Sprintf("phase %s, booted %d, pending %d, last good %d, last check %q, last error %q, %d bad updates",
		s.Phase, s.Booted, s.Pending, s.LastGood, s.LastCheckResult, s.LastError, len(s.BadUpdates))
}

// Status asks the daemon.
func (h *Host) Status(ctx context.Context) (Status, error) {
	try, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var s Status
	out, err := h.Run(try, "speedia-update status --json")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("speedia-update status --json: %w: %s", err, out)
	}
	return s, nil
}

// WaitStatus polls the daemon until cond holds; errors on the way (a
// reboot, the daemon starting) are retried until limit.
func (h *Host) WaitStatus(ctx context.Context, what string, limit time.Duration, cond func(Status) bool) (Status, error) {
	deadline := time.Now().Add(limit)
	var last Status
	var lastErr error
	for {
		s, err := h.Status(ctx)
		if err == nil && cond(s) {
			return s, nil
		}
		last, lastErr = s, err
		if time.Now().After(deadline) || ctx.Err() != nil {
			if lastErr != nil {
				return s, fmt.Errorf("no %s within %v: %w", what, limit, lastErr)
			}
			return s, fmt.Errorf("no %s within %v; daemon: %v", what, limit, last)
		}
		time.Sleep(2 * time.Second)
	}
}

// Record is one line of `speedia-update history --json`.
type Record struct {
	Time     time.Time `json:"time"`
	Event    string    `json:"event"`
	Snapshot uint32    `json:"snapshot"`
	Update   string    `json:"update"`
	Detail   string    `json:"detail"`
}

// History is the daemon's whole history.
func (h *Host) History(ctx context.Context) ([]Record, error) {
	out, err := h.Run(ctx, "speedia-update history --limit 0 --json")
	if err != nil {
		return nil, err
	}
	var r []Record
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("speedia-update history --json: %w", err)
	}
	return r, nil
}

// Get fetches http://GUEST:port/path through the forwarded port.
func (h *Host) Get(ctx context.Context, port int, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", h.VM.HostPort(port), path), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET :%d%s: %s", port, path, resp.Status)
	}
	return string(body), err
}

// Diagnose is what a failure shows: the serial console's tail and the
// daemon's journal (when the guest still answers).
func (h *Host) Diagnose(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- serial console, last 40 lines (%s):\n%s\n", h.VM.SerialLog(), h.VM.SerialTail(40))
	try, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	j, err := h.Run(try, "journalctl -u speedia-updated.service -n 60 --no-pager -o short-monotonic")
	if err != nil {
		fmt.Fprintf(&b, "--- speedia-updated's journal: not readable: %v\n", err)
	} else {
		fmt.Fprintf(&b, "--- speedia-updated's journal, last 60 lines:\n%s", j)
	}
	return b.String()
}

// Close stops the VM.
func (h *Host) Close() error { return h.VM.Close() }
