package tu

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func utc(s string) time.Time {
	d, _ := time.ParseInLocation(snapperDate, s, time.UTC)
	return d
}

func TestParseSnapperList(t *testing.T) {
	tests := []struct {
		file string
		want []snapshot.Snapshot
	}{
		{"snapper-list-blog.json", []snapshot.Snapshot{
			{Number: 1, Date: utc("2019-10-15 12:45:25"), Description: "first root filesystem", State: snapshot.StateReady, Booted: true, Default: true},
			{Number: 2, Date: utc("2019-10-15 12:51:06"), Description: "after installation", State: snapshot.StateForeign},
		}},
		{"snapper-microos-before.json", []snapshot.Snapshot{
			{Number: 1, Date: utc("2024-12-08 17:25:59"), Description: "first root filesystem", State: snapshot.StateReady},
			{Number: 2, Date: utc("2024-12-12 12:18:12"), Description: "Snapshot Update of #1", State: snapshot.StateReady, Parent: 1},
			{Number: 3, Date: utc("2024-12-13 00:06:22"), Description: "Snapshot Update of #2", State: snapshot.StateReady, Parent: 2, Good: true},
			{Number: 4, Date: utc("2024-12-16 01:10:03"), Description: "Snapshot Update of #3", State: snapshot.StateReady, Parent: 3, Booted: true, Default: true},
			{Number: 5, Date: utc("2024-12-16 20:00:00"), Description: "manual backup", State: snapshot.StateForeign},
			{Number: 6, Date: utc("2024-12-17 02:01:01"), Description: "Snapshot Update of #4", State: snapshot.StateStaging, Parent: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseSnapperList([]byte(readTestdata(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseSnapperListErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not json":    "Unknown option '--jsonout'",
		"two configs": `{"root": [], "home": []}`,
		"bad date":    `{"root": [{"number": 3, "date": "Thu Dec 19 00:16:44 2024"}]}`,
	} {
		if _, err := parseSnapperList([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSnapshotState(t *testing.T) {
	tests := []struct {
		name string
		e    snapperEntry
		want snapshot.State
	}{
		{"tukit", snapperEntry{Type: "single", Description: "Snapshot Update of #12"}, snapshot.StateReady},
		{"tukit, described by Stage", snapperEntry{Type: "single", Description: "Snapshot Update of #12: nightly"}, snapshot.StateReady},
		{"lookalike", snapperEntry{Type: "single", Description: "Snapshot Update of #12 by hand"}, snapshot.StateForeign},
		{"installed system", snapperEntry{Type: "single", Description: firstRoot}, snapshot.StateReady},
		{"booted manual", snapperEntry{Type: "single", Description: "mine", Active: true}, snapshot.StateReady},
		{"in progress", snapperEntry{Type: "single", Description: "Snapshot Update of #12", Userdata: map[string]string{inProgressKey: "yes"}}, snapshot.StateStaging},
		{"zypper pre", snapperEntry{Type: "pre", Description: "zypp(zypper)"}, snapshot.StateForeign},
		{"zypper post", snapperEntry{Type: "post"}, snapshot.StateForeign},
		{"timeline", snapperEntry{Type: "single", Description: "timeline"}, snapshot.StateForeign},
	}
	for _, tt := range tests {
		if got := tt.e.state(); got != tt.want {
			t.Errorf("%s: state %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseInstallSummary(t *testing.T) {
	tests := []struct {
		file string
		want []pkgver.Change
	}{
		{"zypper-install.xml", []pkgver.Change{
			{Name: "git-core", New: "2.35.3-150300.10.45.2", Kind: "install"},
			{Name: "perl-Error", New: "0.17025-1.20", Kind: "install"},
			{Name: "tree", New: "1.7.0-150000.3.2.1", Kind: "install"},
		}},
		{"zypper-dup.xml", []pkgver.Change{
			{Name: "aaa_base", Old: "13.2+git20140911.61c1681-9.1", Kind: "remove"},
			{Name: "aaa_base-extras", Old: "13.2+git20140911.61c1681-9.1", Kind: "remove"},
			{Name: "libgudev-1_0-0", Old: "210-83.2", New: "210-116.6.6", Kind: "upgrade"},
			{Name: "libudev1", Old: "210-83.2", New: "210-116.6.6", Kind: "upgrade"},
		}},
		{"zypper-nothing.xml", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseInstallSummary([]byte(readTestdata(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseInstallSummaryMerges(t *testing.T) {
	// A multiversion kernel is listed as install + remove; a pure arch change
	// only under to-change-arch; patches are not packages.
	in := `<stream><install-summary>
<to-install><solvable type="package" name="kernel-default" edition="6.12.6-1.1" arch="x86_64"/>
<solvable type="patch" name="openSUSE-2024-1" edition="1" arch="noarch"/></to-install>
<to-remove><solvable type="package" name="kernel-default" edition="6.12.4-1.1" arch="x86_64"/></to-remove>
<to-upgrade><solvable type="package" name="glibc" edition="2.40-4.1" arch="x86_64" edition-old="2.40-3.1" arch-old="i686"/></to-upgrade>
<to-change-arch><solvable type="package" name="glibc" edition="2.40-4.1" arch="x86_64" edition-old="2.40-3.1" arch-old="i686"/>
<solvable type="package" name="vim" edition="9.1-1.1" arch="x86_64" edition-old="9.1-1.1" arch-old="i586"/></to-change-arch>
</install-summary></stream>`
	got, err := parseInstallSummary([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []pkgver.Change{
		{Name: "glibc", Old: "2.40-3.1", New: "2.40-4.1", Kind: "upgrade"},
		{Name: "kernel-default", Old: "6.12.4-1.1", New: "6.12.6-1.1", Kind: "upgrade"},
		{Name: "vim", Old: "9.1-1.1", New: "9.1-1.1", Kind: "reinstall"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestZypperErrors(t *testing.T) {
	in := `<?xml version='1.0'?><stream><message type="info">Loading</message>` +
		`<message type="error">Repository &apos;oss&apos; is invalid.</message></stream>`
	if got, want := zypperErrors([]byte(in)), "Repository 'oss' is invalid."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseRPM(t *testing.T) {
	got, err := parseRPM([]byte(readTestdata(t, "rpm-qa-7.txt")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"aaa_base":       "84.87+git20241202.4eab1d1-1.1",
		"cups-libs":      "1:2.4.11-2.1",
		"glibc":          "2.40-4.1",
		"kernel-default": "6.12.6-1.1", // the newer of two installed
		"libudev1":       "256.8-1.1",
		"podman":         "5.3.1-1.1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if _, err := parseRPM([]byte("no tab here\n")); err == nil {
		t.Error("bad line: no error")
	}
}

func TestKernelChanged(t *testing.T) {
	kernel := []pkgver.Change{{Name: "kernel-default", Old: "6.12.4-1.1", New: "6.12.6-1.1", Kind: "upgrade"}}
	glibc := []pkgver.Change{{Name: "glibc", Old: "2.40-3.1", New: "2.40-4.1", Kind: "upgrade"}}
	tests := []struct {
		level   string
		changes []pkgver.Change
		want    bool
	}{
		{"soft-reboot", glibc, false},
		{"none", nil, false},
		{"soft-reboot", kernel, true},
		{"kexec", glibc, true},
		{"reboot", glibc, true},
		{"", glibc, true}, // no file: assume the worst
		{"something-new", glibc, true},
	}
	for _, tt := range tests {
		if got := kernelChanged(tt.level, tt.changes, DefaultKernelPackages); got != tt.want {
			t.Errorf("kernelChanged(%q, %v) = %v, want %v", tt.level, tt.changes, got, tt.want)
		}
	}
}

func TestRebootLevelFiles(t *testing.T) {
	for _, level := range []string{"soft-reboot", "kexec", "reboot"} {
		e := &Engine{RebootNeededFile: filepath.Join("testdata", "reboot-needed."+level)}
		got, err := e.rebootLevel()
		if err != nil || got != level {
			t.Errorf("%s: got %q, %v", level, got, err)
		}
	}
	e := &Engine{RebootNeededFile: filepath.Join(t.TempDir(), "missing")}
	if got, err := e.rebootLevel(); got != "" || err != nil {
		t.Errorf("missing file: got %q, %v", got, err)
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		result       string
		code, status int32
		want         int
		wantErr      string
	}{
		{"success", 1, 0, 0, ""},
		{"exit-code", 1, 1, 1, ""},
		{"exit-code", 1, 203, 203, ""}, // systemd's EXIT_EXEC: binary missing
		{"signal", 2, 15, -1, "signal"},
		{"timeout", 0, 0, -1, "timeout"},
	}
	for _, tt := range tests {
		got, err := exitStatus(tt.result, tt.code, tt.status)
		if got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.result, got, tt.want)
		}
		if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: err %v, want %q", tt.result, err, tt.wantErr)
		}
	}
}
