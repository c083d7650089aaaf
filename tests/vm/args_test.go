package vm

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testFW = Firmware{Code: "/fw/CODE.fd", Vars: "/fw/VARS.fd"}
var testFiles = files{vars: "/w/VARS.fd", serialLog: "/w/serial.log", serialSoc: "/w/serial.sock", qmpSoc: "/w/qmp.sock"}

// base is the command line every VM gets, for 2 CPUs, 1 GiB and port 2222.
var base = []string{
	"-nodefaults", "-machine", "q35", "-accel", "tcg", "-cpu", "max",
	"-smp", "2", "-m", "1024", "-display", "none", "-monitor", "none",
	"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
	"-drive", "if=pflash,format=raw,unit=1,file=/w/VARS.fd",
	"-chardev", "socket,id=ser0,path=/w/serial.sock,server=on,wait=off,logfile=/w/serial.log,logappend=on",
	"-serial", "chardev:ser0",
	"-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22",
	"-device", "virtio-net-pci,netdev=n0,romfile=",
}

func TestQemuArgs(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
		want []string // after base
	}{
		{"no disks", Options{}, nil},
		{"one raw disk boots first", Options{Disks: []Disk{{Path: "/i/a.raw"}}}, []string{
			"-drive", "if=none,id=d0,format=raw,file=/i/a.raw",
			"-device", "virtio-blk-pci,drive=d0,bootindex=0",
		}},
		{"disks in order with flags", Options{Disks: []Disk{
			{Path: "/i/a.qcow2", Format: "qcow2", Snapshot: true, Serial: "boot"},
			{Path: "/i/b.raw", ReadOnly: true},
		}}, []string{
			"-drive", "if=none,id=d0,format=qcow2,file=/i/a.qcow2,snapshot=on",
			"-device", "virtio-blk-pci,drive=d0,bootindex=0,serial=boot",
			"-drive", "if=none,id=d1,format=raw,file=/i/b.raw,readonly=on",
			"-device", "virtio-blk-pci,drive=d1,bootindex=1",
		}},
		{"cdrom boots before disks", Options{CDROM: "/i/x.iso", Disks: []Disk{{Path: "/i/t.raw"}}}, []string{
			"-drive", "if=none,id=cd,media=cdrom,readonly=on,format=raw,file=/i/x.iso",
			"-device", "ide-cd,drive=cd,bootindex=0",
			"-drive", "if=none,id=d0,format=raw,file=/i/t.raw",
			"-device", "virtio-blk-pci,drive=d0,bootindex=1",
		}},
		{"commas in paths are doubled", Options{Disks: []Disk{{Path: "/i/a,b.raw"}}}, []string{
			"-drive", "if=none,id=d0,format=raw,file=/i/a,,b.raw",
			"-device", "virtio-blk-pci,drive=d0,bootindex=0",
		}},
		{"no reboot and extra last", Options{NoReboot: true, Extra: []string{"-S"}}, []string{"-no-reboot", "-S"}},
		{"cold reboot exits on reset and reports why on QMP", Options{ColdReboot: true}, []string{
			"-no-reboot",
			"-chardev", "socket,id=qmp0,path=/w/qmp.sock,server=on,wait=off",
			"-mon", "chardev=qmp0,mode=control",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := normalize(tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := qemuArgs(o, testFW, testFiles, 2222, nil)
			want := append(append([]string{}, base...), tt.want...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("args:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestQemuArgsSizes(t *testing.T) {
	o, err := normalize(Options{Memory: 2048, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	o.Forward = []int{8081, 80}
	got := strings.Join(qemuArgs(o, testFW, testFiles, 40000, map[int]int{80: 40002, 8081: 40001}), " ")
	for _, want := range []string{" -smp 1 ", " -m 2048 ",
		"user,id=n0,hostfwd=tcp:127.0.0.1:40000-:22,hostfwd=tcp:127.0.0.1:40001-:8081,hostfwd=tcp:127.0.0.1:40002-:80 "} {
		if !strings.Contains(got, want) {
			t.Errorf("%q not in %s", want, got)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
	}{
		{"disk without path", Options{Disks: []Disk{{Format: "raw"}}}},
		{"unknown format", Options{Disks: []Disk{{Path: "/a", Format: "vmdk"}}}},
		{"serial with comma", Options{Disks: []Disk{{Path: "/a", Serial: "a,b"}}}},
		{"serial too long", Options{Disks: []Disk{{Path: "/a", Serial: strings.Repeat("x", 21)}}}},
		{"negative memory", Options{Memory: -1}},
		{"negative restart hang", Options{RestartHang: -time.Second}},
		{"port out of range", Options{SSHPort: 70000}},
		{"forward of ssh's port", Options{Forward: []int{22}}},
		{"forward of port 0", Options{Forward: []int{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := normalize(tt.opt); !errors.Is(err, ErrOptions) {
				t.Errorf("err = %v, want ErrOptions", err)
			}
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	in := Options{Disks: []Disk{{Path: "/a"}}}
	o, err := normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Disks[0].Format != "" {
		t.Error("normalize changed the caller's disks")
	}
	if o.Memory != 1024 || o.CPUs != 2 || o.OVMFDir != DefaultOVMFDir || o.Disks[0].Format != "raw" || o.RestartHang != 2*time.Minute {
		t.Errorf("defaults not applied: %+v", o)
	}
}

func TestFindFirmware(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindFirmware(dir); !errors.Is(err, ErrFirmware) || !strings.Contains(err.Error(), "ovmf") {
		t.Errorf("empty dir: err = %v, want ErrFirmware naming the package", err)
	}
	for _, n := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := FindFirmware(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fw.Code != filepath.Join(dir, "OVMF_CODE_4M.fd") || fw.Vars != filepath.Join(dir, "OVMF_VARS_4M.fd") {
		t.Errorf("firmware = %+v", fw)
	}
}

func TestSSHArgs(t *testing.T) {
	got := sshArgs(2222, "/k/id", "root", "-x; echo hi")
	want := []string{
		"-F", "/dev/null", "-i", "/k/id", "-p", "2222",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
		"--", "root@127.0.0.1", "-x; echo hi",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ssh args:\n got %q\nwant %q", got, want)
	}
}
