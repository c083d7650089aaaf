package patch

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseApkChangesRecorded(t *testing.T) {
	// traccar/traccar#2454: a real `apk upgrade --update` on Alpine 3.4.
	got := parseApkChanges([]byte(recording(t, "apk-upgrade.txt")))
	want := []Update{
		{Name: "libcrypto1.0", Old: "1.0.2i-r0", New: "1.0.2j-r0"},
		{Name: "libssl1.0", Old: "1.0.2i-r0", New: "1.0.2j-r0"},
		{Name: "libx11", Old: "1.6.3-r2", New: "1.6.4-r0"},
		{Name: "libxi", Old: "1.7.6-r0", New: "1.7.7-r0"},
		{Name: "libxrender", Old: "0.9.9-r1", New: "0.9.10-r0"},
		{Name: "libxtst", Old: "1.2.2-r0", New: "1.2.3-r0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// apk-tools' own solver test: new dependencies are "Installing".
	got = parseApkChanges([]byte(recording(t, "apk-solver-basic1.txt")))
	if want := []Update{{Name: "b", New: "2"}, {Name: "a", New: "2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("installs: got %+v, want %+v", got, want)
	}
}

func TestApkPendingAndUpgrade(t *testing.T) {
	s := &scripted{t: t, answers: map[string]answer{
		"apk update -q":                          {},
		"apk upgrade --simulate":                 {stdout: recording(t, "apk-upgrade.txt")},
		"apk --wait 30 upgrade libssl1.0 libx11": {},
	}}
	us, err := ApkDriver{}.Pending(context.Background(), s.exec)
	if err != nil || len(us) != 6 || us[0] != (Update{Name: "libcrypto1.0", Old: "1.0.2i-r0", New: "1.0.2j-r0"}) {
		t.Fatalf("Pending = %+v, %v", us, err)
	}
	if err := (ApkDriver{}).Upgrade(context.Background(), s.exec, UpgradeOptions{Packages: []string{"libssl1.0", "libx11"}, LockTimeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"apk update -q", "apk upgrade --simulate", "apk --wait 30 upgrade libssl1.0 libx11"}; !reflect.DeepEqual(s.ran, want) {
		t.Errorf("ran %q, want %q", s.ran, want)
	}

	// Nothing pending: apk only prints its summary (lsupg-haskell's
	// recorded "none" case).
	s = &scripted{t: t, answers: map[string]answer{
		"apk update -q":          {},
		"apk upgrade --simulate": {stdout: "OK: 6 MiB in 14 packages\n"},
	}}
	if us, err := (ApkDriver{}).Pending(context.Background(), s.exec); err != nil || len(us) != 0 {
		t.Errorf("nothing pending: %+v, %v", us, err)
	}
}

func TestApkErrors(t *testing.T) {
	// The lock message of apk-tools src/database.c and src/apk.c for a lock
	// held by another apk (EAGAIN), exit 99 as apk caps its errors.
	locked := "ERROR: Unable to lock database: Resource temporarily unavailable\n" +
		"ERROR: Failed to open apk database: Resource temporarily unavailable\n"
	s := &scripted{t: t, answers: map[string]answer{"apk upgrade": {stderr: locked, exit: 99}}}
	err := ApkDriver{}.Upgrade(context.Background(), s.exec, UpgradeOptions{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "Unable to lock database") {
		t.Errorf("held lock: %v, want ErrLocked", err)
	}
	// Not root (recorded in fluent/fluentd-docker-image#21): the same
	// words, but a failure, not someone else's lock.
	denied := "ERROR: Unable to lock database: Permission denied\nERROR: Failed to open apk database: Permission denied\n"
	s = &scripted{t: t, answers: map[string]answer{"apk update -q": {stderr: denied, exit: 99}}}
	_, err = ApkDriver{}.Pending(context.Background(), s.exec)
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "ERROR: Unable to lock database: Permission denied") {
		t.Errorf("permission denied: %v, want ErrFailed with apk's message", err)
	}
}

func TestApkDetect(t *testing.T) {
	if !(ApkDriver{}).Detect(fakeFiles("/lib/apk/db/installed", "/sbin/apk")) {
		t.Error("alpine not detected")
	}
	if (ApkDriver{}).Detect(fakeFiles("/sbin/apk")) {
		t.Error("apk without a database detected")
	}
}
