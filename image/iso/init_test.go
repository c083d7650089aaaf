package iso

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The installer's shell functions run here under the BusyBox the tests
// find on this machine (Debian's busybox-static, as in the image), with
// every applet from BusyBox, and /sys, /dev and /proc replaced by
// directories: disks are sparse files.

type shell struct {
	dir, sys, dev, proc, mnt, bin string
}

func newShell(t *testing.T) *shell {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox to run the installer's shell with")
	}
	d := t.TempDir()
	s := &shell{dir: d, sys: d + "/sys", dev: d + "/dev", proc: d + "/proc", mnt: d + "/mnt", bin: d + "/bin"}
	for _, p := range []string{s.sys + "/block", s.dev, s.proc + "/sys/vm", s.mnt + "/speedia", s.bin} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(bb, "--install", "-s", s.bin).CombinedOutput(); err != nil {
		t.Fatalf("busybox --install: %v %s", err, out)
	}
	writeFile(t, s.proc+"/sys/vm/drop_caches", nil)
	writeFile(t, d+"/init.sh", []byte(initScript))
	s.cmdline(t, "")
	return s
}

func (s *shell) cmdline(t *testing.T, c string) {
	writeFile(t, s.proc+"/cmdline", []byte(c+"\n"))
}

type disk struct {
	name      string
	mib       int64
	removable bool
	ro        bool
	data      bool // something in the first MiB
}

func (s *shell) addDisk(t *testing.T, d disk) string {
	t.Helper()
	b := s.sys + "/block/" + d.name
	flag := func(v bool) []byte {
		if v {
			return []byte("1\n")
		}
		return []byte("0\n")
	}
	writeFile(t, b+"/size", []byte(fmt.Sprintf("%d\n", d.mib*2048)))
	writeFile(t, b+"/removable", flag(d.removable))
	writeFile(t, b+"/ro", flag(d.ro))
	p := s.dev + "/" + d.name
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(d.mib * MiB); err != nil {
		t.Fatal(err)
	}
	if d.data {
		f.WriteAt([]byte("old data"), 4096)
	}
	return p
}

// addMedium adds a CD drive holding an ISO 9660 volume labelled label.
func (s *shell) addMedium(t *testing.T, name, label string) string {
	t.Helper()
	p := s.addDisk(t, disk{name: name, mib: 1, removable: true})
	pvd := make([]byte, sector)
	pvd[0] = 1
	copy(pvd[1:], "CD001\x01")
	copy(pvd[40:72], label+strings.Repeat(" ", 32-len(label)))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(pvd, pvdOff)
	return p
}

// run runs script after sourcing the installer; it returns stdout and
// stderr.
func (s *shell) run(t *testing.T, script string) (string, string, error) {
	t.Helper()
	c := exec.Command(s.bin+"/sh", "-c", `. "$0" && `+script, s.dir+"/init.sh")
	c.Env = []string{"SPEEDIA_INSTALL_LIB=1", "PATH=" + s.bin, "PROC=" + s.proc, "SYS=" + s.sys,
		"DEV=" + s.dev, "MNT=" + s.mnt, "MODULES=" + s.dir + "/modules", "WAIT=0"}
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	return out.String(), errOut.String(), err
}

func TestChooseDisk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		disks   []disk
		cmdline string
		want    string // chosen disk, "" = none
		say     []string
	}{
		{
			name:  "first empty disk",
			disks: []disk{{name: "vda", mib: 128}, {name: "vdb", mib: 128}},
			want:  "vda",
			say:   []string{"not DEV/sr0: it is the install medium"},
		},
		{
			name:  "skips a disk with data",
			disks: []disk{{name: "sda", mib: 128, data: true}, {name: "sdb", mib: 128}},
			want:  "sdb",
			say:   []string{"not DEV/sda: it is not empty: its first MiB holds data (speedia.install.force=1 overwrites it)"},
		},
		{
			name:  "skips removable, read-only and small disks",
			disks: []disk{{name: "sda", mib: 128, removable: true}, {name: "sdb", mib: 128, ro: true}, {name: "sdc", mib: 63}, {name: "vda", mib: 64}},
			want:  "vda",
			say: []string{"not DEV/sda: it is removable (name it with speedia.install.disk=DEV/sda to use it)",
				"not DEV/sdb: it is read-only", "not DEV/sdc: it is too small (63 MiB, the image needs 64 MiB)"},
		},
		{
			name:  "nothing suitable",
			disks: []disk{{name: "vda", mib: 128, data: true}},
			say:   []string{"no disk can take the image"},
		},
		{
			name:    "force takes a disk with data",
			disks:   []disk{{name: "vda", mib: 128, data: true}},
			cmdline: "quiet speedia.install.force=1",
			want:    "vda",
			say:     []string{"DEV/vda is not empty; overwriting it (speedia.install.force=1)"},
		},
		{
			name:    "named disk may be removable",
			disks:   []disk{{name: "vda", mib: 128}, {name: "sdb", mib: 128, removable: true}},
			cmdline: "speedia.install.disk=DEV/sdb",
			want:    "sdb",
		},
		{
			name:    "named disk must be empty",
			disks:   []disk{{name: "vda", mib: 128}, {name: "vdb", mib: 128, data: true}},
			cmdline: "speedia.install.disk=DEV/vdb",
			say:     []string{"speedia.install.disk=DEV/vdb: it is not empty"},
		},
		{
			name:    "named disk must exist",
			disks:   []disk{{name: "vda", mib: 128}},
			cmdline: "speedia.install.disk=DEV/sdz",
			say:     []string{"speedia.install.disk=DEV/sdz: no such whole disk (use DEV/NAME; have: sr0 vda )"},
		},
		{
			name:    "named disk is not the medium",
			disks:   []disk{{name: "vda", mib: 128}},
			cmdline: "speedia.install.disk=DEV/sr0",
			say:     []string{"speedia.install.disk=DEV/sr0: it is the install medium"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShell(t)
			medium := s.addMedium(t, "sr0", "SPEEDIA_INSTALL")
			for _, d := range tc.disks {
				s.addDisk(t, d)
			}
			s.cmdline(t, strings.ReplaceAll(tc.cmdline, "DEV", s.dev))
			out, errOut, err := s.run(t, fmt.Sprintf("choose_disk %s 64", medium))
			errOut = strings.ReplaceAll(errOut, s.dev, "DEV")
			if tc.want == "" {
				if err == nil {
					t.Errorf("chose %q, want none", out)
				}
			} else if err != nil || out != s.dev+"/"+tc.want+"\n" {
				t.Errorf("chose %q (%v), want %s\n%s", out, err, tc.want, errOut)
			}
			for _, w := range tc.say {
				if !strings.Contains(errOut, "speedia-install: "+w) {
					t.Errorf("no %q in:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestFindMedium(t *testing.T) {
	s := newShell(t)
	s.addDisk(t, disk{name: "vda", mib: 2})
	s.addMedium(t, "sr0", "OTHER")
	want := s.addMedium(t, "sr1", "SPEEDIA_INSTALL")
	out, errOut, err := s.run(t, "find_medium SPEEDIA_INSTALL")
	if err != nil || out != want+"\n" {
		t.Errorf("found %q, %v, want %s\n%s", out, err, want, errOut)
	}
	if out, _, err := s.run(t, "find_medium SPEEDIA"); err == nil {
		t.Errorf("a label's prefix found %q", out)
	}
}

// installFixture is a disk image, its parts and map on the "medium" and
// an empty target disk of diskMiB.
func installFixture(t *testing.T, s *shell, diskMiB int64) (raw []byte, target string) {
	t.Helper()
	p, raw := sparseImage(t, 8, [][2]int64{{0, 100}, {2 * MiB, MiB + 7}, {7 * MiB, 10}})
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &imageMap{SizeMiB: 8, Lines: layout([]extent{{0, 1}, {2, 2}, {7, 1}})}
	part, err := os.Create(s.mnt + "/speedia/" + partName(0))
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if err := copyData(context.Background(), part, f, m); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.mnt+"/speedia/image.map", []byte(m.String()))
	return raw, s.addDisk(t, disk{name: "vda", mib: diskMiB})
}

func TestWriteAndVerify(t *testing.T) {
	s := newShell(t)
	raw, target := installFixture(t, s, 8)
	_, errOut, err := s.run(t, fmt.Sprintf("write_image %s %s/speedia && verify_image %s %s/speedia", target, s.mnt, target, s.mnt))
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	got, _ := os.ReadFile(target)
	if !bytes.Equal(got, raw) {
		t.Error("the disk differs from the image")
	}
	// MiB 0 goes last.
	if i, j := strings.Index(errOut, "at MiB 7"), strings.Index(errOut, "at MiB 0"); i < 0 || j < i {
		t.Errorf("MiB 0 not written last:\n%s", errOut)
	}
	if b, _ := os.ReadFile(s.proc + "/sys/vm/drop_caches"); string(b) != "3\n" {
		t.Errorf("page cache not dropped before verifying: %q", b)
	}

	// A changed byte on the disk fails the check.
	d, _ := os.OpenFile(target, os.O_RDWR, 0)
	d.WriteAt([]byte{0}, 2*MiB+5)
	d.Close()
	_, errOut, err = s.run(t, fmt.Sprintf("verify_image %s %s/speedia", target, s.mnt))
	if err == nil || !strings.Contains(errOut, "MiB 2 to 4 of "+target+" read back with sha256") {
		t.Errorf("verify after damage: %v\n%s", err, errOut)
	}
}

func TestCutShortLeavesDiskEmpty(t *testing.T) {
	s := newShell(t)
	_, target := installFixture(t, s, 8)
	// The medium's part ends early: the last range cannot be read.
	if err := os.Truncate(s.mnt+"/speedia/"+partName(0), 3*MiB+MiB/2); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := s.run(t, fmt.Sprintf("write_image %s %s/speedia", target, s.mnt))
	if err == nil {
		t.Fatalf("short part written without error\n%s", errOut)
	}
	if !strings.Contains(errOut, "short copy") {
		t.Errorf("no short copy reported:\n%s", errOut)
	}
	_, _, err = s.run(t, "is_empty "+target)
	if err != nil {
		t.Error("the first MiB was written although the install failed")
	}
}

func TestWipeEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		diskMiB int64
		wiped   bool
	}{
		{"disk bigger than the image", 16, true},
		{"disk one MiB bigger", 9, true},
		{"disk of the image's size", 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShell(t)
			target := s.addDisk(t, disk{name: "vda", mib: tc.diskMiB})
			junk := bytes.Repeat([]byte{0xee}, MiB)
			d, _ := os.OpenFile(target, os.O_RDWR, 0)
			d.WriteAt(junk, (tc.diskMiB-1)*MiB)
			d.Close()
			if _, errOut, err := s.run(t, "wipe_end "+target+" 8"); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			got, _ := os.ReadFile(target)
			last := got[(tc.diskMiB-1)*MiB:]
			if tc.wiped != bytes.Equal(last, make([]byte, MiB)) || !tc.wiped && !bytes.Equal(last, junk) {
				t.Errorf("last MiB wiped: %v, want %v", !bytes.Equal(last, junk), tc.wiped)
			}
		})
	}
}

func TestLoadModules(t *testing.T) {
	s := newShell(t)
	writeFile(t, s.dir+"/modules/order", []byte("scsi_mod.ko\nhv_vmbus.ko\nhv_storvsc.ko hv_vmbus scsi_mod\nbroken.ko\nsd_mod.ko scsi_mod\nneedsbroken.ko broken\n"))
	out, errOut, err := s.run(t, `insmod() {
	case $1 in
	*/hv_vmbus.ko) echo "insmod: can't insert '$1': No such device"; return 1 ;;
	*/broken.ko) echo "insmod: can't insert '$1': Invalid module format"; return 1 ;;
	esac
	echo "${1##*/}" >>"$PROC/inserted"
}
load_modules && cat "$PROC/inserted"`)
	if err != nil {
		t.Fatal(err, errOut)
	}
	if want := "scsi_mod.ko\nsd_mod.ko\n"; out != want {
		t.Errorf("inserted %q, want %q", out, want)
	}
	want := "speedia-install: insmod broken.ko: insmod: can't insert '" + s.dir + "/modules/broken.ko': Invalid module format\n" +
		"speedia-install: modules not loaded: hv_vmbus hv_storvsc broken needsbroken (no such hardware: hv_vmbus)\n"
	if errOut != want {
		t.Errorf("said:\n%s\nwant:\n%s", errOut, want)
	}
}

func TestArg(t *testing.T) {
	s := newShell(t)
	s.cmdline(t, "BOOT_IMAGE=/vmlinuz speedia.install.label=X_1 console=ttyS0,115200 speedia.install.disk=/dev/vdb")
	for _, tc := range []struct{ name, want string }{
		{"speedia.install.label", "X_1\n"},
		{"console", "ttyS0,115200\n"},
		{"speedia.install.disk", "/dev/vdb\n"},
		{"speedia.install", ""},
	} {
		out, _, err := s.run(t, "arg "+tc.name)
		if out != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("arg %s: %q, %v; want %q", tc.name, out, err, tc.want)
		}
	}
}

// The script as a whole parses under BusyBox's sh.
func TestInitParses(t *testing.T) {
	s := newShell(t)
	if out, err := exec.Command(s.bin+"/sh", "-n", filepath.Join(s.dir, "init.sh")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
}
