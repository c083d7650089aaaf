// Package vm boots a disk image in QEMU (q35, OVMF, TCG) for the e2e tier and
// talks to it over its serial console and over SSH through a forwarded port.
//
// QEMU runs in its own process group and is only ever killed by its PID.
package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrExited means QEMU is no longer running.
var ErrExited = errors.New("vm: qemu exited")

// poll is how often the harness looks at QEMU's files and sockets; it only
// bounds latency, never correctness.
const poll = 100 * time.Millisecond

// Options describe one VM.
type Options struct {
	Disks    []Disk // virtio-blk, booted in this order (after the CD-ROM)
	CDROM    string // ISO attached as an AHCI CD-ROM and booted first
	Dir      string // work dir; default a temporary one that Close removes
	Memory   int    // MiB; default 1024
	CPUs     int    // default 2 (the test machines have 2 cores)
	SSHPort  int    // host port forwarded to the guest's 22; 0 picks a free one
	Forward  []int  // more guest TCP ports, each forwarded from a free host port (HostPort)
	NoReboot bool   // a guest reboot makes QEMU exit
	// ColdReboot turns each guest reboot into a power cycle: QEMU exits and
	// a new QEMU starts on the same disks, variable store, ports and serial
	// log. QEMU 7.2's warm reset under TCG sometimes never reaches the
	// firmware again (no output, a spinning CPU), which long runs with many
	// reboots cannot afford; a fresh process always boots.
	ColdReboot bool
	// RestartHang is how long a guest may stay silent after its kernel said
	// it restarts before ColdReboot power-cycles it anyway (default 2 min).
	// With -no-reboot QEMU exits within milliseconds of that line, so only a
	// hang waits this long.
	RestartHang time.Duration
	OVMFDir     string   // default /usr/share/OVMF
	Extra       []string // appended to the QEMU command line
	Log         io.Writer
}

// Disk is one virtio-blk disk.
type Disk struct {
	Path     string
	Format   string // raw (default) or qcow2
	ReadOnly bool
	Snapshot bool   // writes go to a temporary overlay, the file is untouched
	Serial   string // shows up as /dev/disk/by-id/virtio-SERIAL
}

// VM is a running guest: one QEMU process, or a chain of them with
// ColdReboot.
type VM struct {
	opt     Options
	fw      Firmware
	files   files
	port    int
	fwd     map[int]int   // guest port -> host port
	tempDir bool          // Dir was made by Start, so Close removes it
	done    chan struct{} // closed when the guest has ended for good
	exitErr error         // valid after done

	mu     sync.Mutex // guards the fields below and serializes serial reads and writes
	proc   *proc      // the QEMU process running now
	scan   lineScanner
	conn   net.Conn
	closed bool
}

// proc is one QEMU process.
type proc struct {
	cmd     *exec.Cmd
	stderr  *tailBuffer
	done    chan struct{} // closed when it has exited and been reaped
	err     error         // valid after done
	qmpDone chan struct{} // closed when its QMP connection has ended; nil without QMP
	reason  string        // the last SHUTDOWN event's reason, valid after qmpDone
	stuck   atomic.Bool   // stopped by watchRestart: treated as a guest reset
}

// Start boots QEMU and returns once it is running with its port forward in
// place. ctx bounds only the start; Close ends the VM.
func Start(ctx context.Context, o Options) (*VM, error) {
	o, err := normalize(o)
	if err != nil {
		return nil, err
	}
	fw, err := FindFirmware(o.OVMFDir)
	if err != nil {
		return nil, err
	}
	v := &VM{opt: o, fw: fw, done: make(chan struct{})}
	if o.Dir == "" {
		if v.opt.Dir, err = os.MkdirTemp("", "speedia-vm-"); err != nil {
			return nil, fmt.Errorf("vm: work dir: %w", err)
		}
		v.tempDir = true
	}
	v.files = files{
		vars:      filepath.Join(v.opt.Dir, "OVMF_VARS.fd"),
		serialLog: filepath.Join(v.opt.Dir, "serial.log"),
		serialSoc: filepath.Join(v.opt.Dir, "serial.sock"),
		qmpSoc:    filepath.Join(v.opt.Dir, "qmp.sock"),
	}
	// sun_path holds 108 bytes including the terminating NUL.
	if len(v.files.serialSoc) > 107 {
		v.cleanup()
		return nil, fmt.Errorf("%w: dir %s is too long for a unix socket path", ErrOptions, v.opt.Dir)
	}
	if err := copyFile(fw.Vars, v.files.vars); err != nil {
		v.cleanup()
		return nil, fmt.Errorf("vm: copy OVMF vars: %w", err)
	}
	// QEMU appends to the log, so that it spans power cycles.
	os.Remove(v.files.serialLog)
	// A picked port can be taken by someone else before QEMU binds it; QEMU
	// then fails at once and another port is tried.
	for attempt := 1; ; attempt++ {
		err = v.pickPorts()
		var p *proc
		if err == nil {
			p, err = v.launch(ctx)
		}
		if err == nil {
			go v.supervise(p)
			return v, nil
		}
		if o.SSHPort != 0 || attempt == 3 || !strings.Contains(err.Error(), "forwarding") {
			v.cleanup()
			return nil, err
		}
	}
}

func (v *VM) pickPorts() error {
	v.port = v.opt.SSHPort
	if v.port == 0 {
		p, err := freePort()
		if err != nil {
			return fmt.Errorf("vm: pick ssh port: %w", err)
		}
		v.port = p
	}
	v.fwd = map[int]int{}
	for _, g := range v.opt.Forward {
		p, err := freePort()
		if err != nil {
			return fmt.Errorf("vm: pick a port for guest port %d: %w", g, err)
		}
		v.fwd[g] = p
	}
	return nil
}

// launch starts one QEMU process on the VM's files and ports and returns
// once it is ready.
func (v *VM) launch(ctx context.Context) (*proc, error) {
	os.Remove(v.files.serialSoc)
	os.Remove(v.files.qmpSoc)
	p := &proc{stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	cmd := exec.Command("qemu-system-x86_64", qemuArgs(v.opt, v.fw, v.files, v.port, v.fwd)...)
	var out io.Writer = p.stderr
	if v.opt.Log != nil {
		out = io.MultiWriter(p.stderr, v.opt.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a terminal's ^C is not delivered to QEMU directly;
	// Pdeathsig still takes it down when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Checked and started under the lock, so Close either sees this process
	// or keeps it from starting.
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil, fmt.Errorf("%w: closed", ErrExited)
	}
	if err := cmd.Start(); err != nil {
		v.mu.Unlock()
		return nil, fmt.Errorf("vm: start qemu: %w", err)
	}
	p.cmd = cmd
	v.proc = p
	v.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	v.logf("vm: qemu pid %d, ssh port %d, serial log %s", cmd.Process.Pid, v.port, v.files.serialLog)
	if err := v.waitReady(ctx, p); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// supervise waits for each QEMU process to exit. With ColdReboot, an exit
// for a guest reset starts the next one; any other exit ends the VM.
func (v *VM) supervise(p *proc) {
	for {
		<-p.done
		reason := ""
		if p.qmpDone != nil {
			select {
			case <-p.qmpDone: // QEMU closes the socket as it exits
				reason = p.reason
			case <-time.After(5 * time.Second):
			}
		}
		v.mu.Lock()
		closed := v.closed
		v.mu.Unlock()
		if closed || (reason != "guest-reset" && !p.stuck.Load()) {
			v.exitErr = p.err
			close(v.done)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		next, err := v.launch(ctx)
		cancel()
		if err != nil {
			v.exitErr = fmt.Errorf("vm: power cycle after a guest reset: %w", err)
			close(v.done)
			return
		}
		why := "guest reset"
		if p.stuck.Load() {
			why = "hung restart"
		}
		v.logf("vm: %s: qemu pid %d exited, pid %d boots the guest again (power cycle)", why, p.cmd.Process.Pid, next.cmd.Process.Pid)
		p = next
	}
}

// waitReady returns once QEMU listens on the forwarded port, which it binds
// after creating its sockets, and the sockets are connected.
func (v *VM) waitReady(ctx context.Context, p *proc) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		ok, err := listensOn(p.cmd.Process.Pid, v.port)
		if err != nil {
			return fmt.Errorf("vm: qemu ready: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w at start: %v: %s", ErrExited, p.err, strings.TrimSpace(p.stderr.String()))
		case <-ctx.Done():
			return fmt.Errorf("vm: qemu ready: %w", ctx.Err())
		case <-t.C:
		}
	}
	conn, err := net.Dial("unix", v.files.serialSoc)
	if err != nil {
		return fmt.Errorf("vm: serial socket: %w", err)
	}
	v.mu.Lock()
	if v.conn != nil {
		v.conn.Close() // the previous process's
	}
	v.conn = conn
	v.mu.Unlock()
	// Output also goes to this connection; drain it (the log file has it all)
	// or QEMU would stall the guest's serial port once the socket is full.
	go io.Copy(io.Discard, conn)
	if !v.opt.ColdReboot {
		return nil
	}
	qc, err := net.Dial("unix", v.files.qmpSoc)
	if err != nil {
		return fmt.Errorf("vm: qmp socket: %w", err)
	}
	q, err := qmpHandshake(qc, 10*time.Second)
	if err != nil {
		qc.Close()
		return err
	}
	p.qmpDone = make(chan struct{})
	go func() {
		p.reason = q.shutdownReason()
		qc.Close()
		close(p.qmpDone)
	}()
	go v.watchRestart(p)
	return nil
}

// watchRestart power-cycles a guest whose kernel said it restarts but which
// then stays silent for RestartHang while QEMU keeps running: the reset
// never happened, and nothing in the guest is left to retry it.
func (v *VM) watchRestart(p *proc) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	size, since := int64(-1), time.Now()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		st, err := os.Stat(v.files.serialLog)
		if err != nil {
			continue
		}
		if st.Size() != size {
			size, since = st.Size(), time.Now()
			continue
		}
		if time.Since(since) < v.opt.RestartHang || !saysRestart(tailLines(readTail(v.files.serialLog, 1024), 1)) {
			continue
		}
		v.logf("vm: the guest said it restarts but has been silent for %v; power-cycling qemu pid %d", v.opt.RestartHang, p.cmd.Process.Pid)
		p.stuck.Store(true)
		p.stop()
		return
	}
}

// saysRestart reports whether a serial line is the kernel's last word
// before a reset.
func saysRestart(line string) bool {
	return strings.Contains(line, "reboot: machine restart") || strings.Contains(line, "reboot: Restarting system")
}

// SSHPort is the host port forwarded to the guest's port 22.
func (v *VM) SSHPort() int { return v.port }

// HostPort is the host port (on 127.0.0.1) forwarded to the guest's TCP
// port guest, one of Options.Forward; 0 if it is not forwarded.
func (v *VM) HostPort(guest int) int { return v.fwd[guest] }

// PID is the process ID of the QEMU running now.
func (v *VM) PID() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.proc.cmd.Process.Pid
}

// SerialLog is the path of the serial console log.
func (v *VM) SerialLog() string { return v.files.serialLog }

// Exited is closed when QEMU has exited for good (not for a power cycle).
func (v *VM) Exited() <-chan struct{} { return v.done }

// WaitSerial waits for a serial console line matching re and returns it,
// without escape sequences. Each call starts after the previous match; one
// WaitSerial at a time.
func (v *VM) WaitSerial(ctx context.Context, re *regexp.Regexp) (string, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	pos := 0
	for {
		exited := v.hasExited() // before reading, so the last output is seen
		v.mu.Lock()
		err := v.scan.feed(v.files.serialLog)
		l, ok := v.scan.match(re, &pos)
		v.mu.Unlock()
		switch {
		case err != nil:
			return "", fmt.Errorf("vm: serial log: %w", err)
		case ok:
			return l, nil
		case exited:
			return "", fmt.Errorf("%w waiting for %q (%v); serial tail:\n%s", ErrExited, re, v.exitErr, v.SerialTail(10))
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("vm: waiting for %q on serial: %w; serial tail:\n%s", re, ctx.Err(), v.SerialTail(10))
		case <-v.done:
		case <-t.C:
		}
	}
}

// SerialTail returns the last n non-empty lines of the serial log.
func (v *VM) SerialTail(n int) string {
	return tailLines(readTail(v.files.serialLog, 64<<10), n)
}

// SerialWrite types s on the serial console (use "\r" for Enter).
func (v *VM) SerialWrite(s string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn == nil || v.hasExited() {
		return ErrExited
	}
	// The guest may not be reading; do not hang the test on it.
	v.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(v.conn, s); err != nil {
		return fmt.Errorf("vm: serial write: %w", err)
	}
	return nil
}

// Wait waits until QEMU exits and returns its exit error (nil for status 0,
// which is what a guest power-off, or a reboot with NoReboot, gives).
func (v *VM) Wait(ctx context.Context) error {
	select {
	case <-v.done:
		return v.exitErr
	case <-ctx.Done():
		return fmt.Errorf("vm: wait for qemu: %w", ctx.Err())
	}
}

// Close stops QEMU (SIGTERM, then SIGKILL after 5 s), waits for it and
// removes the files Start made. serial.log stays when Options.Dir was given.
func (v *VM) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	p := v.proc
	v.mu.Unlock()
	p.stop()
	<-v.done // supervise sees closed and ends without starting another
	v.cleanup()
	return nil
}

// stop ends the process by PID and reaps it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM) // QEMU exits cleanly, flushing disks
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (v *VM) cleanup() {
	v.mu.Lock()
	if v.conn != nil {
		v.conn.Close()
	}
	v.mu.Unlock()
	if v.tempDir {
		os.RemoveAll(v.opt.Dir)
		return
	}
	os.Remove(v.files.vars)
	os.Remove(v.files.serialSoc)
	os.Remove(v.files.qmpSoc)
}

func (v *VM) hasExited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

func (v *VM) logf(format string, args ...any) {
	if v.opt.Log != nil {
		fmt.Fprintf(v.opt.Log, format+"\n", args...)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// listensOn says whether process pid holds a TCP socket listening on
// 127.0.0.1:port. Checking ownership, not just connecting, tells QEMU's
// forward apart from anyone else's listener on a reused port.
func listensOn(pid, port int) (bool, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false, nil // exited; the caller sees it on v.done
	}
	defer f.Close()
	inodes := map[string]bool{}
	local := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) >= 10 && fs[1] == local && fs[3] == "0A" {
			inodes["socket:["+fs[9]+"]"] = true
		}
	}
	if err := sc.Err(); err != nil || len(inodes) == 0 {
		return false, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, nil
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[l] {
			return true, nil
		}
	}
	return false, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
