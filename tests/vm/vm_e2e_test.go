//go:build e2e

package vm_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/speedia/host/image/fat"
	"github.com/speedia/host/tests/vm"
	"github.com/speedia/host/updater/run"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// bootShell boots OVMF with one blank qcow2 disk (so the disk arguments are
// exercised and OVMF skips network boot) and waits for the UEFI shell.
func bootShell(t *testing.T, ctx context.Context, o vm.Options) *vm.VM {
	t.Helper()
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	blank := filepath.Join(o.Dir, "blank.qcow2")
	if _, err := (run.Exec{}).Run(ctx, run.Cmd{Name: "qemu-img", Args: []string{"create", "-q", "-f", "qcow2", blank, "64M"}}); err != nil {
		t.Fatal(err)
	}
	o.Disks = []vm.Disk{{Path: blank, Format: "qcow2", Snapshot: true, Serial: "blank"}}
	o.Log = logWriter{t}
	start := time.Now()
	v, err := vm.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, re := range []string{`^BdsDxe: `, `UEFI Interactive Shell`, `^Shell>$`} {
		l, err := v.WaitSerial(wait, regexp.MustCompile(re))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%5.1fs after start: %q", time.Since(start).Seconds(), l)
	}
	return v
}

func TestOVMFShellAndClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	v := bootShell(t, ctx, vm.Options{Dir: dir})

	// The forward is QEMU's: a connection is accepted (slirp then finds
	// nothing listening in the guest, which is fine here).
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(v.SSHPort()), 5*time.Second)
	if err != nil {
		t.Errorf("ssh forward: %v", err)
	} else {
		c.Close()
	}
	// No sshd in firmware: ssh fails on its own (255) and says why.
	key, _, err := vm.NewKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = v.SSH(ctx, key, "root", "true")
	var ee *run.ExitError
	if !errors.As(err, &ee) || ee.Code != 255 || ee.Stderr == "" {
		t.Errorf("ssh to firmware = %v, want exit 255 with stderr", err)
	}
	t.Logf("ssh without sshd failed after %.1fs: %v", time.Since(t0).Seconds(), err)

	pid := v.PID()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("qemu pid %d after Close: kill 0 = %v, want ESRCH", pid, err)
	}
	for _, n := range []string{"OVMF_VARS.fd", "serial.sock"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", n, err)
		}
	}
	if _, err := os.Stat(v.SerialLog()); err != nil {
		t.Errorf("serial log removed from the caller's dir: %v", err)
	}
	if _, err := v.WaitSerial(ctx, regexp.MustCompile("never")); !errors.Is(err, vm.ErrExited) {
		t.Errorf("WaitSerial after Close = %v, want ErrExited", err)
	}
}

// Typing "reset" into the shell reboots the guest; with NoReboot QEMU exits.
func TestSerialInputNoReboot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v := bootShell(t, ctx, vm.Options{Dir: t.TempDir(), NoReboot: true})
	if err := v.SerialWrite("reset\r"); err != nil {
		t.Fatal(err)
	}
	wait, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	if err := v.Wait(wait); err != nil {
		t.Fatalf("wait: %v; serial:\n%s", err, v.SerialTail(5))
	}
	if err := v.SerialWrite("x"); !errors.Is(err, vm.ErrExited) {
		t.Errorf("SerialWrite after exit = %v, want ErrExited", err)
	}
}

// With ColdReboot a guest reset is a power cycle: a new QEMU boots the
// firmware again on the same serial log; a power-off ends the VM.
func TestColdReboot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v := bootShell(t, ctx, vm.Options{Dir: t.TempDir(), ColdReboot: true})
	first := v.PID()
	if err := v.SerialWrite("reset\r"); err != nil {
		t.Fatal(err)
	}
	wait, cancel2 := context.WithTimeout(ctx, 90*time.Second)
	defer cancel2()
	for _, re := range []string{`^BdsDxe: `, `^Shell>$`} {
		if _, err := v.WaitSerial(wait, regexp.MustCompile(re)); err != nil {
			t.Fatalf("after reset: %v", err)
		}
	}
	select {
	case <-v.Exited():
		t.Fatal("the VM ended on a guest reset")
	default:
	}
	if second := v.PID(); second == first {
		t.Errorf("qemu pid %d after the reset, want a new process", second)
	} else if err := syscall.Kill(first, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("first qemu pid %d after the reset: kill 0 = %v, want ESRCH", first, err)
	}
	if err := v.SerialWrite("reset -s\r"); err != nil {
		t.Fatal(err)
	}
	wait3, cancel3 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel3()
	if err := v.Wait(wait3); err != nil {
		t.Fatalf("a power-off did not end the VM: %v; serial:\n%s", err, v.SerialTail(5))
	}
}

// A guest whose kernel says it restarts and then hangs without resetting is
// power-cycled after RestartHang. The stand-in is a UEFI shell script on a
// FAT disk that prints the kernel's last line and loops.
func TestColdRebootHang(t *testing.T) {
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	img := filepath.Join(dir, "script.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	script := "@echo -off\r\necho \"reboot: machine restart\"\r\n:hang\r\ngoto hang\r\n"
	err = f.Truncate(fat.MinSize) // the disk is as big as the filesystem
	if err == nil {
		err = fat.Write(f, 0, fat.MinSize, "HANG", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), []fat.File{{Path: "startup.nsh", Data: []byte(script)}})
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	v, err := vm.Start(ctx, vm.Options{Dir: dir, Disks: []vm.Disk{{Path: img, Snapshot: true}},
		ColdReboot: true, RestartHang: 15 * time.Second, Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	wait, cancel2 := context.WithTimeout(ctx, 90*time.Second)
	defer cancel2()
	if _, err := v.WaitSerial(wait, regexp.MustCompile(`^reboot: machine restart$`)); err != nil {
		t.Fatal(err)
	}
	first := v.PID()
	t0 := time.Now()
	if _, err := v.WaitSerial(wait, regexp.MustCompile(`^BdsDxe: `)); err != nil {
		t.Fatalf("no power cycle after the hang: %v", err)
	}
	t.Logf("firmware again %.0fs after the restart line", time.Since(t0).Seconds())
	if second := v.PID(); second == first {
		t.Errorf("qemu pid %d after the hang, want a new process", second)
	}
	select {
	case <-v.Exited():
		t.Fatal("the VM ended instead of being power-cycled")
	default:
	}
}

// A taken port fails Start with QEMU's reason and leaves nothing behind.
func TestStartPortTaken(t *testing.T) {
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	v, err := vm.Start(ctx, vm.Options{Dir: dir, SSHPort: l.Addr().(*net.TCPAddr).Port, Log: logWriter{t}})
	if err == nil {
		v.Close()
		t.Fatal("Start succeeded on a taken port")
	}
	if !errors.Is(err, vm.ErrExited) {
		t.Errorf("err = %v, want ErrExited", err)
	}
	t.Log(err)
	// serial.log stays in a caller's Dir, as after any run.
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		if e.Name() != "serial.log" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
