package patch

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRPMListRecorded(t *testing.T) {
	// Fedora 34 `dnf check-update`, mirror lines and banner included.
	got := parseRPMList([]byte(recording(t, "dnf-check-update.txt")))
	want := []Update{
		{Name: "coreutils.x86_64", New: "8.32-27.fc34", Source: "updates"},
		{Name: "coreutils-common.x86_64", New: "8.32-27.fc34", Source: "updates"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// The banner alone is what "nothing pending" prints without -q.
	if got := parseRPMList([]byte("Last metadata expiration check: 1:36:09 ago on Sun Jun 13 23:12:48 2021.\n")); len(got) != 0 {
		t.Errorf("banner parsed as %+v", got)
	}
}

func TestParseUpdateinfoRecorded(t *testing.T) {
	want := map[string]string{"CQRlib.x86_64": "FEDORA-2018-318f184113"}
	for _, f := range []string{"dnf4-updateinfo-security.txt", "dnf5-updateinfo-security.txt"} {
		if got := parseUpdateinfo([]byte(recording(t, f))); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", f, got, want)
		}
	}
}

func TestDnfPendingAndUpgrade(t *testing.T) {
	s := &scripted{t: t, answers: map[string]answer{
		"dnf -q --setopt=exit_on_lock=1 check-update":                                              {stdout: recording(t, "dnf-check-update.txt"), exit: 100},
		"dnf -q --setopt=exit_on_lock=1 updateinfo list --security":                                {stdout: recording(t, "dnf5-updateinfo-security.txt")},
		"dnf -q --setopt=exit_on_lock=1 list --installed coreutils.x86_64 coreutils-common.x86_64": {stdout: ""},
		"dnf -y --setopt=exit_on_lock=1 upgrade --security coreutils.x86_64":                       {},
	}}
	us, err := DnfDriver{}.Pending(context.Background(), s.exec)
	want := []Update{
		{Name: "coreutils.x86_64", New: "8.32-27.fc34", Source: "updates"},
		{Name: "coreutils-common.x86_64", New: "8.32-27.fc34", Source: "updates"},
	}
	if err != nil || !reflect.DeepEqual(us, want) {
		t.Fatalf("Pending = %+v, %v\nwant %+v", us, err, want)
	}
	for _, env := range s.envs {
		if !reflect.DeepEqual(env, []string{"LC_ALL=C"}) {
			t.Errorf("env %q, want the C locale", env)
		}
	}
	err = DnfDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{Packages: []string{"coreutils.x86_64"}, SecurityOnly: true})
	if err != nil {
		t.Fatal(err)
	}

	// check-update exits 0 with nothing to print when nothing is pending
	// (ci-dnf-stack check-update.feature); nothing else runs then.
	s = &scripted{t: t, answers: map[string]answer{"yum -q --setopt=exit_on_lock=1 check-update": {}}}
	if us, err := (YumDriver{}).Pending(context.Background(), s.exec); err != nil || len(us) != 0 || len(s.ran) != 1 {
		t.Errorf("nothing pending: %+v, %v, ran %q", us, err, s.ran)
	}
}

func TestDnfErrors(t *testing.T) {
	lockRetryEvery = time.Millisecond
	defer func() { lockRetryEvery = 2 * time.Second }()
	// dnf5 while another transaction runs (rpm-software-management/dnf5#2435).
	locked := "Running transaction\nTransaction failed: Failed to obtain rpm transaction lock. Another transaction is in progress.\n"
	s := &scripted{t: t, answers: map[string]answer{"dnf -y --setopt=exit_on_lock=1 upgrade": {stderr: locked, exit: 1}}}
	err := DnfDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{LockTimeout: 20 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "Another transaction is in progress") {
		t.Errorf("held lock: %v, want ErrLocked", err)
	}
	if len(s.ran) < 2 {
		t.Errorf("tried %d times, want retries until LockTimeout", len(s.ran))
	}
	// A failed rpm transaction (rpm-software-management/dnf5#376).
	failed := "Running transaction\nTransaction failed: Rpm transaction failed.\n"
	s = &scripted{t: t, answers: map[string]answer{"dnf -y --setopt=exit_on_lock=1 upgrade": {stderr: failed, exit: 1}}}
	err = DnfDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{LockTimeout: time.Second})
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "Transaction failed: Rpm transaction failed.") || len(s.ran) != 1 {
		t.Errorf("failed transaction: %v (ran %d), want one ErrFailed with dnf's message", err, len(s.ran))
	}
}

func TestDnfDetect(t *testing.T) {
	el9 := fakeFiles("/usr/bin/dnf", "/usr/bin/yum", "/var/lib/rpm/rpmdb.sqlite")
	el7 := fakeFiles("/usr/bin/yum", "/var/lib/rpm/Packages")
	if !(DnfDriver{}).Detect(el9) || (YumDriver{}).Detect(el9) {
		t.Error("EL9 must be dnf only")
	}
	if (DnfDriver{}).Detect(el7) || !(YumDriver{}).Detect(el7) {
		t.Error("EL7 must be yum only")
	}
	if (DnfDriver{}).Detect(fakeFiles("/usr/bin/dnf")) {
		t.Error("dnf without an rpm database detected")
	}
}
