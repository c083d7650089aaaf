package patch

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAptSimulationRecorded(t *testing.T) {
	out, err := os.ReadFile("testdata/apt-get-s-dist-upgrade.txt")
	if err != nil {
		t.Fatal(err)
	}
	us := parseAptSimulation(out)
	if len(us) != 127 {
		t.Fatalf("%d updates, want the recording's 127", len(us))
	}
	by := map[string]Update{}
	security := 0
	for _, u := range us {
		by[u.Name] = u
		if u.Security {
			security++
		}
	}
	for _, want := range []Update{
		{Name: "base-files", Old: "12.4+deb12u11", New: "12.4+deb12u15", Source: "oldstable"},
		{Name: "zlib1g", Old: "1:1.2.13.dfsg-1", New: "1:1.2.13.dfsg-1+deb12u1", Security: true, Source: "oldstable-security"},
		{Name: "perl-base", Old: "5.36.0-7+deb12u2", New: "5.36.0-7+deb12u4", Security: true, Source: "oldstable-security"}, // ends in " []"
		{Name: "libssl3", Old: "3.0.19-1~deb12u2", New: "3.0.22-1~deb12u2", Security: true, Source: "oldstable-security"},
	} {
		if got := by[want.Name]; got != want {
			t.Errorf("%s: got %+v, want %+v", want.Name, got, want)
		}
	}
	if security == 0 || security == len(us) {
		t.Errorf("%d of %d are security updates; the recording has both kinds", security, len(us))
	}
}

func TestParseAptSimulationShapes(t *testing.T) {
	out := []byte(`Inst libfoo1 (2.0-1 Debian:13.2/stable [amd64])
Inst openssl [3.5.1-1] (3.5.4-1~deb13u1 Debian:13.2/stable, Debian-Security:13/stable-security [amd64])
Inst libc6 [2.35-0ubuntu3.8] (2.35-0ubuntu3.9 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])
Conf libfoo1 (2.0-1 Debian:13.2/stable [amd64])
Remv old [1]
0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
`)
	want := []Update{
		{Name: "libfoo1", New: "2.0-1", Source: "stable"},
		{Name: "openssl", Old: "3.5.1-1", New: "3.5.4-1~deb13u1", Security: true, Source: "stable-security"},
		{Name: "libc6", Old: "2.35-0ubuntu3.8", New: "2.35-0ubuntu3.9", Security: true, Source: "jammy-security"},
	}
	if got := parseAptSimulation(out); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := parseAptSimulation([]byte("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")); len(got) != 0 {
		t.Errorf("nothing pending parsed as %+v", got)
	}
}

// replay is an Exec that answers each command line from a table and
// records what ran.
type replay struct {
	t     *testing.T
	ran   []string
	steps map[string]reply
}

type reply struct {
	stdout, stderr string
	exit           int
}

func (r *replay) exec(_ context.Context, argv, env []string) ([]byte, []byte, int, error) {
	line := strings.Join(argv, " ")
	r.ran = append(r.ran, line)
	if !strings.Contains(strings.Join(env, " "), "DEBIAN_FRONTEND=noninteractive") {
		r.t.Errorf("%s: runs without DEBIAN_FRONTEND=noninteractive", line)
	}
	for prefix, rep := range r.steps {
		if strings.HasPrefix(line, prefix) {
			return []byte(rep.stdout), []byte(rep.stderr), rep.exit, nil
		}
	}
	r.t.Errorf("unexpected command %q", line)
	return nil, nil, 127, nil
}

func TestAptPendingAndUpgrade(t *testing.T) {
	sim, _ := os.ReadFile("testdata/apt-get-s-dist-upgrade.txt")
	r := &replay{t: t, steps: map[string]reply{
		"apt-get -o DPkg::Lock::Timeout=0 -q update":                                 {},
		"apt-get -s -q -o Debug::NoLocking=1 dist-upgrade":                           {stdout: string(sim)},
		"apt-get -o DPkg::Lock::Timeout=30 -y -q -o Dpkg::Options::=--force-confold": {},
	}}
	us, err := AptDriver{}.Pending(context.Background(), r.exec)
	if err != nil || len(us) != 127 {
		t.Fatalf("Pending: %d updates, %v", len(us), err)
	}
	err = AptDriver{}.Upgrade(context.Background(), r.exec, UpgradeOptions{Packages: []string{"zlib1g", "openssl"}, LockTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := "apt-get -o DPkg::Lock::Timeout=30 -y -q -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef -o Dpkg::Use-Pty=0 install --only-upgrade zlib1g openssl"
	if last := r.ran[len(r.ran)-1]; last != want {
		t.Errorf("upgrade ran %q, want %q", last, want)
	}
}

func TestAptErrors(t *testing.T) {
	// What apt 2.6 (bookworm) prints when DPkg::Lock::Timeout passes.
	locked := "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (perl)\n" +
		"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"
	r := &replay{t: t, steps: map[string]reply{"apt-get -o DPkg::Lock::Timeout=3 ": {stderr: "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (perl)...\n" + locked, exit: 100}}}
	err := AptDriver{}.Upgrade(context.Background(), r.exec, UpgradeOptions{LockTimeout: 3 * time.Second})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "process 4242") {
		t.Errorf("held lock: %v, want ErrLocked naming the holder", err)
	}
	broken := "Setting up speedia-testweb (3.0) ...\ndpkg: error processing package speedia-testweb (--configure):\n" +
		" installed speedia-testweb package post-installation script subprocess returned error exit status 1\n" +
		"E: Sub-process /usr/bin/dpkg returned an error code (1)\n"
	r = &replay{t: t, steps: map[string]reply{"apt-get -o DPkg::Lock::Timeout=0 -y": {stderr: broken, exit: 100}}}
	err = AptDriver{}.Upgrade(context.Background(), r.exec, UpgradeOptions{})
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "E: Sub-process /usr/bin/dpkg returned an error code (1)") {
		t.Errorf("failed postinst: %v, want ErrFailed with apt's message", err)
	}
}

func TestFindAndOSRelease(t *testing.T) {
	debian := map[string]string{
		"/usr/lib/os-release":  "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\nID=debian\n",
		"/var/lib/dpkg/status": "Package: base-files\n",
		"/usr/bin/apt-get":     "",
	}
	files := func(m map[string]string) Files {
		return func(p string) ([]byte, error) {
			if s, ok := m[p]; ok {
				return []byte(s), nil
			}
			return nil, os.ErrNotExist
		}
	}
	o, ok := ReadOS(files(debian))
	if want := (OS{ID: "debian", VersionID: "13", Codename: "trixie", Pretty: "Debian GNU/Linux 13 (trixie)"}); !ok || !reflect.DeepEqual(o, want) {
		t.Errorf("ReadOS = %+v %v, want %+v", o, ok, want)
	}
	if d := Find(files(debian)); d == nil || d.Manager() != Apt {
		t.Errorf("Find(debian) = %v", d)
	}
	for want, fs := range map[Manager]map[string]string{
		Apk:    {"/lib/apk/db/installed": "", "/sbin/apk": ""},
		Dnf:    {"/usr/bin/dnf": "", "/usr/bin/yum": "", "/usr/lib/sysimage/rpm/rpmdb.sqlite": ""},
		Yum:    {"/usr/bin/yum": "", "/var/lib/rpm/Packages": ""},
		Zypper: {"/usr/bin/zypper": "", "/usr/lib/sysimage/rpm/rpmdb.sqlite": ""},
	} {
		if d := Find(files(fs)); d == nil || d.Manager() != want {
			t.Errorf("Find(%s files) = %v", want, d)
		}
		if ByName(want) == nil {
			t.Errorf("ByName(%s) = nil", want)
		}
	}
	busybox := map[string]string{"/bin/sh": ""}
	if _, ok := ReadOS(files(busybox)); ok {
		t.Error("busybox has an os-release")
	}
	if d := Find(files(busybox)); d != nil {
		t.Errorf("Find(busybox) = %v, want not patchable", d.Manager())
	}
	if o := ParseOSRelease([]byte("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n# c\nVERSION_ID='9.4'\n")); o.ID != "rocky" || len(o.IDLike) != 3 || o.VersionID != "9.4" {
		t.Errorf("ParseOSRelease: %+v", o)
	}
}
