//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/tests/vm"
	"github.com/speedia/host/tests/vmhost"
)

// The e2e tier: build the Debian host image with the real speedia-image
// (KIWI's root tree, our disk assembly), boot it in QEMU (TCG, OVMF) with a
// config drive, and check it over SSH; then install it from the
// self-install ISO onto an empty disk and boot the result.

const e2eSpec = `name = "speedia-e2e"
version = "1.0.0"
base = "debian"
date = 2026-11-22
hostname = "speedia-e2e"
disk_size = "3GiB"
formats = ["qcow2", "raw", "iso"]

[update.reboot]
strategy = "manual"
`

func e2eDriveSpec(key string) string {
	return `name = "speedia-e2e"
version = "1.0.0"
base = "debian"
date = 2026-11-22
hostname = "e2e-from-drive"

[[users]]
name = "root"
ssh_keys = ["` + key + `"]

[update.reboot]
strategy = "immediate"
`
}

func TestE2EImage(t *testing.T) {
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	bin, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bin, "speedia-image")); err != nil {
		t.Fatal("build the binaries first: make build")
	}
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := filepath.Join(dir, "out")
	start := time.Now()
	// The example spec, as the VM update cycle (tests/vmhost) builds it, so
	// both reuse one prepared root tree.
	text, err := vmhost.Spec(filepath.Dir(bin), "qcow2", "raw", "iso")
	if err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Join(bin, "speedia-image"), "build", write("host.toml", text), "--out", out)
	t.Logf("build: %s", time.Since(start).Round(time.Second))
	run(t, filepath.Join(bin, "speedia-image"), "inspect", filepath.Join(out, "debian-web-1.0.0.qcow2"))

	priv, pub, err := vm.NewKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(dir, "seed.img")
	run(t, filepath.Join(bin, "speedia-image"), "config-drive", write("drive.toml", e2eDriveSpec(pub)), "--out", seed)

	t.Run("boot", func(t *testing.T) {
		v := boot(t, dir, "boot", vm.Options{Disks: []vm.Disk{
			{Path: filepath.Join(out, "debian-web-1.0.0.qcow2"), Format: "qcow2", Snapshot: true},
			{Path: seed, Format: "raw", ReadOnly: true},
		}})
		ssh := sshFunc(t, v, priv)
		checkHost(t, ssh)
	})

	t.Run("self-install ISO", func(t *testing.T) {
		target := filepath.Join(dir, "target.raw")
		run(t, "qemu-img", "create", "-f", "raw", target, "3G")
		start := time.Now()
		os.MkdirAll(filepath.Join(dir, "install"), 0o755)
		v, err := vm.Start(context.Background(), vm.Options{Dir: filepath.Join(dir, "install"), CDROM: filepath.Join(out, "debian-web-1.0.0.iso"),
			Disks: []vm.Disk{{Path: target, Format: "raw"}}, NoReboot: true, Log: testLog{t}})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if _, err := v.WaitSerial(ctx, regexp.MustCompile(`speedia-install: (done|FAILED)`)); err != nil {
			t.Fatalf("installer: %v\n%s", err, v.SerialTail(40))
		}
		if strings.Contains(v.SerialTail(20), "FAILED") {
			t.Fatalf("installer failed:\n%s", v.SerialTail(40))
		}
		if err := v.Wait(ctx); err != nil {
			t.Fatalf("installer did not power off: %v\n%s", err, v.SerialTail(20))
		}
		t.Logf("install from ISO: %s", time.Since(start).Round(time.Second))
		v2 := boot(t, dir, "installed", vm.Options{Disks: []vm.Disk{
			{Path: target, Format: "raw"},
			{Path: seed, Format: "raw", ReadOnly: true},
		}})
		ssh := sshFunc(t, v2, priv)
		if got := ssh("cat /usr/lib/speedia/image.json"); !strings.Contains(got, `"version": "1.0.0"`) {
			t.Errorf("installed disk: image.json = %s", got)
		}
		ssh("speedia-update status")
	})
}

// checkHost checks what the issue promises of a booted image.
func checkHost(t *testing.T, ssh func(string) string) {
	t.Helper()
	// The key from the config drive works (we are in), and the drive set the hostname.
	if got := strings.TrimSpace(ssh("hostname")); got != "e2e-from-drive" {
		t.Errorf("hostname = %q, want the drive's e2e-from-drive", got)
	}
	if got := ssh("cat /etc/speedia/update.toml"); !strings.Contains(got, "immediate") {
		t.Errorf("update policy from the drive not in place:\n%s", got)
	}
	// The root is snapshot 1, a read-only btrfs subvolume.
	src := ssh("findmnt -no FSTYPE,SOURCE /")
	if !strings.Contains(src, "btrfs") || !strings.Contains(src, "@/.snapshots/1/snapshot") {
		t.Errorf("root mount = %q, want btrfs snapshot 1", src)
	}
	if got := ssh("btrfs property get -ts / ro"); !strings.Contains(got, "ro=true") {
		t.Errorf("root subvolume: %q, want ro=true", got)
	}
	if _, err := sshErr(ssh, "touch /usr/speedia-probe"); err == nil {
		t.Error("writing to /usr succeeded on a read-only snapshot")
	}
	ssh("touch /etc/speedia-probe && rm /etc/speedia-probe")
	ssh("touch /tmp/speedia-probe && rm /tmp/speedia-probe") // a tmpfs over the read-only root
	// systemd-boot booted our counted entry: the loader says which, with its counter.
	entry := ssh(`od -An -c /sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f | tr -d ' \n\\0'`)
	if !strings.Contains(entry, "speedia-1+3") {
		t.Errorf("LoaderEntrySelected = %q, want speedia-1+3 (boot counting)", entry)
	}
	ssh("ls /sys/firmware/efi/efivars/LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")
	// The daemon answers.
	status := ssh("speedia-update status")
	if !strings.Contains(status, "snapshot") && !strings.Contains(status, "Snapshot") {
		t.Errorf("speedia-update status:\n%s", status)
	}
	ssh("systemctl is-active speedia-updated.service speedia-firstboot.service ssh.service")
}

func boot(t *testing.T, dir, name string, o vm.Options) *vm.VM {
	t.Helper()
	o.Dir = filepath.Join(dir, name)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	o.Log = testLog{t}
	v, err := vm.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func sshFunc(t *testing.T, v *vm.VM, key string) func(string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	if err := v.WaitSSH(ctx, key, "root"); err != nil {
		t.Fatalf("no SSH with the drive's key: %v\nserial:\n%s", err, v.SerialTail(60))
	}
	t.Logf("SSH up after %s", time.Since(start).Round(time.Second))
	return func(cmd string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := v.SSH(ctx, key, "root", cmd)
		if err != nil && !strings.HasPrefix(cmd, "touch /usr") {
			t.Errorf("%s: %v\n%s", cmd, err, out)
		}
		return out
	}
}

func sshErr(ssh func(string) string, cmd string) (string, error) {
	out := ssh(cmd + " 2>&1; echo rc=$?")
	if strings.Contains(out, "rc=0") {
		return out, nil
	}
	return out, fmt.Errorf("%s failed: %s", cmd, out)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	return string(out)
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// A build that fails in KIWI names the phase and KIWI's first error, keeps
// the log, and leaves no loop device or mount behind.
func TestE2EBuildFailureIsClean(t *testing.T) {
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	bin, _ := filepath.Abs("../../bin")
	dir := t.TempDir()
	spec := filepath.Join(dir, "bad.toml")
	os.WriteFile(spec, []byte(strings.Replace(e2eSpec, `hostname = "speedia-e2e"`, `hostname = "speedia-e2e"
packages = ["speedia-no-such-package"]`, 1)), 0o644)
	out := filepath.Join(dir, "out")
	got, err := exec.Command(filepath.Join(bin, "speedia-image"), "build", spec, "--out", out, "--cache", filepath.Join(dir, "cache")).CombinedOutput()
	if err == nil {
		t.Fatalf("a build with a missing package succeeded:\n%s", got)
	}
	msg := string(got)
	t.Log(msg)
	last := msg[strings.LastIndex(strings.TrimRight(msg, "\n"), "\n")+1:]
	if !strings.Contains(last, "speedia-image: kiwi: ") || !strings.Contains(last, "speedia-no-such-package") || !strings.Contains(last, ".build.log") {
		t.Errorf("the error does not name the phase, the package and the log: %q", last)
	}
	if _, err := os.Stat(filepath.Join(out, "speedia-e2e-1.0.0.build.log")); err != nil {
		t.Errorf("no build log kept: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "*.raw")); len(left) > 0 {
		t.Errorf("half-made outputs left: %v", left)
	}
	loops, _ := exec.Command("losetup", "-a").CombinedOutput()
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, s := range []string{string(loops), string(mounts)} {
		if strings.Contains(s, dir) {
			t.Errorf("left behind:\n%s", s)
		}
	}
}
