package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrFirmware means the OVMF files are missing (Debian package ovmf).
var ErrFirmware = errors.New("vm: OVMF firmware not found (install package ovmf)")

// ErrOptions means Options cannot describe a VM.
var ErrOptions = errors.New("vm: bad options")

// DefaultOVMFDir is where Debian's ovmf package puts the firmware.
const DefaultOVMFDir = "/usr/share/OVMF"

// Firmware is one OVMF build: read-only code and the template of the
// writable variable store, which each VM gets a copy of.
type Firmware struct {
	Code string
	Vars string
}

// FindFirmware looks for the 4 MiB OVMF build (no Secure Boot keys) in dir.
func FindFirmware(dir string) (Firmware, error) {
	fw := Firmware{
		Code: filepath.Join(dir, "OVMF_CODE_4M.fd"),
		Vars: filepath.Join(dir, "OVMF_VARS_4M.fd"),
	}
	for _, p := range []string{fw.Code, fw.Vars} {
		if _, err := os.Stat(p); err != nil {
			return Firmware{}, fmt.Errorf("%w: %s", ErrFirmware, p)
		}
	}
	return fw, nil
}

// files are the paths one VM uses, all decided before QEMU starts.
type files struct {
	vars      string // this VM's copy of the OVMF variable store
	serialLog string // everything the guest wrote to its serial port
	serialSoc string // unix socket for typing into the serial port
	qmpSoc    string // QMP socket, to learn why QEMU exited (ColdReboot)
}

// normalize fills defaults and rejects what QEMU would reject later with a
// less readable message.
func normalize(o Options) (Options, error) {
	if o.Memory == 0 {
		o.Memory = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.RestartHang == 0 {
		o.RestartHang = 2 * time.Minute
	}
	if o.OVMFDir == "" {
		o.OVMFDir = DefaultOVMFDir
	}
	if o.Memory < 0 || o.CPUs < 0 || o.RestartHang < 0 || o.SSHPort < 0 || o.SSHPort > 65535 {
		return o, fmt.Errorf("%w: negative or out-of-range size", ErrOptions)
	}
	for _, g := range o.Forward {
		if g <= 0 || g > 65535 || g == 22 {
			return o, fmt.Errorf("%w: cannot forward guest port %d", ErrOptions, g)
		}
	}
	o.Disks = append([]Disk(nil), o.Disks...) // defaults go into a copy, not the caller's slice
	for i, d := range o.Disks {
		if d.Path == "" {
			return o, fmt.Errorf("%w: disk %d has no path", ErrOptions, i)
		}
		switch d.Format {
		case "":
			o.Disks[i].Format = "raw"
		case "raw", "qcow2":
		default:
			return o, fmt.Errorf("%w: disk %s: format %q is not raw or qcow2", ErrOptions, d.Path, d.Format)
		}
		// virtio-blk serials are at most 20 bytes; commas would end the option.
		if len(d.Serial) > 20 || strings.ContainsAny(d.Serial, ",= ") {
			return o, fmt.Errorf("%w: disk %s: serial %q", ErrOptions, d.Path, d.Serial)
		}
	}
	return o, nil
}

// qemuArgs builds the QEMU command line for normalized options.
func qemuArgs(o Options, fw Firmware, f files, port int, fwd map[int]int) []string {
	netdev := fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port)
	for _, g := range o.Forward { // in the caller's order, so the line is stable
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", fwd[g], g)
	}
	a := []string{
		"-nodefaults",
		"-machine", "q35",
		"-accel", "tcg", // /dev/kvm exists on the test machines but does not work
		"-cpu", "max",
		"-smp", strconv.Itoa(o.CPUs),
		"-m", strconv.Itoa(o.Memory),
		"-display", "none",
		"-monitor", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + esc(fw.Code),
		"-drive", "if=pflash,format=raw,unit=1,file=" + esc(f.vars),
		// A socket so tests can type; the log file keeps all output whether or
		// not anyone is connected.
		"-chardev", "socket,id=ser0,path=" + esc(f.serialSoc) + ",server=on,wait=off,logfile=" + esc(f.serialLog) + ",logappend=on",
		"-serial", "chardev:ser0",
		"-netdev", netdev,
		// romfile= drops iPXE; with every disk given a bootindex OVMF also
		// drops its own PXE and HTTP boot options, which would otherwise wait
		// on DHCP for minutes.
		"-device", "virtio-net-pci,netdev=n0,romfile=",
	}
	boot := 0
	if o.CDROM != "" {
		a = append(a,
			"-drive", "if=none,id=cd,media=cdrom,readonly=on,format=raw,file="+esc(o.CDROM),
			"-device", "ide-cd,drive=cd,bootindex=0")
		boot = 1
	}
	for i, d := range o.Disks {
		drive := fmt.Sprintf("if=none,id=d%d,format=%s,file=%s", i, d.Format, esc(d.Path))
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		if d.Snapshot {
			drive += ",snapshot=on"
		}
		dev := fmt.Sprintf("virtio-blk-pci,drive=d%d,bootindex=%d", i, boot+i)
		if d.Serial != "" {
			dev += ",serial=" + d.Serial
		}
		a = append(a, "-drive", drive, "-device", dev)
	}
	if o.NoReboot || o.ColdReboot {
		a = append(a, "-no-reboot")
	}
	if o.ColdReboot {
		a = append(a,
			"-chardev", "socket,id=qmp0,path="+esc(f.qmpSoc)+",server=on,wait=off",
			"-mon", "chardev=qmp0,mode=control")
	}
	return append(a, o.Extra...)
}

// esc quotes a value for QEMU's key=value option syntax, where a comma is
// written twice.
func esc(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}
