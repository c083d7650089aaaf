package patch

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseZypperRecorded(t *testing.T) {
	// Tumbleweed, zypper 1.14.98: edition-old is the installed edition.
	got, err := parseZypperUpdates([]byte(recording(t, "zypper-list-updates.xml")))
	want := []Update{{Name: "libopenh264-8", Old: "2.6.0~noopenh264-1.5", New: "2.6.0-2.suse1699.10", Source: "repo-openh264"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("list-updates: %+v, %v\nwant %+v", got, err, want)
	}
	// SLE 12 SP1's zypper has no edition-old: the old version is unknown.
	got, err = parseZypperUpdates([]byte(recording(t, "zypper-list-updates-sle12.xml")))
	want = []Update{
		{Name: "SUSEConnect", New: "0.2.33-7.1", Source: "SLE12-SP1-x86_64-Update"},
		{Name: "bind-libs", New: "9.9.6P1-35.1", Source: "SLE12-SP1-x86_64-Update"},
		{Name: "bind-utils", New: "9.9.6P1-35.1", Source: "SLE12-SP1-x86_64-Update"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("SLE 12 list-updates: %+v, %v\nwant %+v", got, err, want)
	}
	// Leap 42.1 list-patches: two security patches among recommended ones.
	got, err = parseZypperPatches([]byte(recording(t, "zypper-list-patches.xml")))
	want = []Update{
		{Name: "patch:openSUSE-2016-695", New: "1", Security: true, Source: "openSUSE-2016-695"},
		{Name: "patch:openSUSE-2016-697", New: "1", Security: true, Source: "openSUSE-2016-697"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("list-patches: %+v, %v\nwant %+v", got, err, want)
	}
}

func TestZypperPendingAndUpgrade(t *testing.T) {
	patches := recording(t, "zypper-list-patches.xml")
	s := &scripted{t: t, answers: map[string]answer{
		"zypper --non-interactive refresh":                                                    {},
		"zypper --non-interactive --xmlout list-updates":                                      {stdout: recording(t, "zypper-list-updates.xml"), exit: 100},
		"zypper --non-interactive --xmlout list-patches --category security":                  {stdout: patches, exit: 101},
		"zypper --non-interactive update --auto-agree-with-licenses libopenh264-8":            {},
		"zypper --non-interactive install --auto-agree-with-licenses patch:openSUSE-2016-695": {exit: 102},
	}}
	us, err := ZypperDriver{}.Pending(context.Background(), s.exec)
	if err != nil || len(us) != 3 || us[0].Name != "libopenh264-8" || !us[1].Security {
		t.Fatalf("Pending = %+v, %v", us, err)
	}
	err = ZypperDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{Packages: []string{"libopenh264-8", "patch:openSUSE-2016-695"}, LockTimeout: 90 * time.Second})
	if err != nil {
		t.Fatalf("Upgrade (102 = reboot advised, not a failure): %v", err)
	}
	if env := s.envs[len(s.envs)-1]; !reflect.DeepEqual(env, []string{"LC_ALL=C", "ZYPP_LOCK_TIMEOUT=90"}) {
		t.Errorf("upgrade env %q, want libzypp to wait 90 s", env)
	}

	// Nothing pending (recorded on Tumbleweed): exit 0, empty list.
	s = &scripted{t: t, answers: map[string]answer{
		"zypper --non-interactive refresh":                                   {},
		"zypper --non-interactive --xmlout list-updates":                     {stdout: recording(t, "zypper-list-updates-none.xml")},
		"zypper --non-interactive --xmlout list-patches --category security": {stdout: recording(t, "zypper-list-updates-none.xml")},
	}}
	if us, err := (ZypperDriver{}).Pending(context.Background(), s.exec); err != nil || len(us) != 0 {
		t.Errorf("nothing pending: %+v, %v", us, err)
	}

	s = &scripted{t: t, answers: map[string]answer{"zypper --non-interactive patch --category security --auto-agree-with-licenses": {}}}
	if err := (ZypperDriver{}).Upgrade(context.Background(), s.exec, UpgradeOptions{SecurityOnly: true}); err != nil {
		t.Error(err)
	}
}

func TestZypperErrors(t *testing.T) {
	// Exit 7 with libzypp's message (agama-project/agama#2807).
	locked := "System management is locked by the application with pid 18394 (/usr/bin/agama-web-server).\nClose this application before trying again.\n"
	s := &scripted{t: t, answers: map[string]answer{"zypper --non-interactive update --auto-agree-with-licenses": {stderr: locked, exit: 7}}}
	err := ZypperDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{LockTimeout: 5 * time.Second})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid 18394") {
		t.Errorf("held lock: %v, want ErrLocked naming the holder", err)
	}
	// 104 is not one of the informational codes (sous-chefs/git#137).
	s = &scripted{t: t, answers: map[string]answer{"zypper --non-interactive update --auto-agree-with-licenses git": {
		stdout: "Loading repository data...\nReading installed packages...\n", stderr: "No provider of 'git=2.26.2-27.36.1' found.\n", exit: 104}}}
	err = ZypperDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{Packages: []string{"git"}})
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "No provider of 'git=2.26.2-27.36.1' found.") {
		t.Errorf("exit 104: %v, want ErrFailed with zypper's message", err)
	}
}

func TestZypperDetect(t *testing.T) {
	if !(ZypperDriver{}).Detect(fakeFiles("/usr/bin/zypper")) || (ZypperDriver{}).Detect(fakeFiles("/usr/bin/rpm")) {
		t.Error("zypper detection")
	}
}
