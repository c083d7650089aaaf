package iso

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func names(ms []module) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return s
}

func TestPlanModules(t *testing.T) {
	dir := t.TempDir()
	testModules(t, dir, fakeDep, fakeBuiltin)
	for _, tc := range []struct {
		name          string
		want          []string
		load          []string
		builtin, miss []string
	}{
		{
			name:    "closure in dependency order",
			want:    []string{"isofs", "sr_mod", "usb-storage", "ahci", "nvme"},
			load:    []string{"cdrom", "isofs", "scsi_common", "scsi_mod", "sr_mod", "usbcore", "usb_storage"},
			builtin: []string{"ahci"},
			miss:    []string{"nvme"},
		},
		{
			name: "a dependency asked for first loads first",
			want: []string{"scsi_mod", "usb_storage", "scsi-mod"},
			load: []string{"scsi_common", "scsi_mod", "usbcore", "usb_storage"},
		},
		{
			name: "nothing wanted",
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := planModules(dir, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(plan.Load); !slices.Equal(got, tc.load) {
				t.Errorf("load %v, want %v", got, tc.load)
			}
			if !slices.Equal(plan.Builtin, tc.builtin) || !slices.Equal(plan.Missing, tc.miss) {
				t.Errorf("builtin %v missing %v, want %v %v", plan.Builtin, plan.Missing, tc.builtin, tc.miss)
			}
			// Whatever the order, each module comes after what it needs.
			pos := map[string]int{}
			for i, m := range plan.Load {
				for _, d := range m.Deps {
					if _, ok := pos[d]; !ok {
						t.Errorf("%s before its dependency %s", m.Name, d)
					}
				}
				pos[m.Name] = i
			}
		})
	}
}

func TestPlanModulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dep     map[string][]string
		builtin []string
		noDep   bool
		want    string
	}{
		{
			name: "cycle",
			dep:  map[string][]string{"a.ko": {"b.ko"}, "b.ko": {"a.ko"}, "isofs.ko": {"a.ko"}},
			want: "cycle",
		},
		{
			name: "dependency not listed",
			dep:  map[string][]string{"isofs.ko": {"cdrom.ko"}},
			want: "which modules.dep does not list",
		},
		{
			name: "no isofs",
			dep:  map[string][]string{"sr_mod.ko": nil},
			want: "isofs is neither",
		},
		{
			name:  "no modules.dep",
			noDep: true,
			want:  "run depmod",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tc.noDep {
				testModules(t, dir, tc.dep, tc.builtin)
			}
			_, err := planModules(dir, []string{"isofs", "sr_mod"})
			if !errors.Is(err, ErrModules) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrModules with %q", err, tc.want)
			}
		})
	}
	// isofs built in is enough.
	dir := t.TempDir()
	testModules(t, dir, map[string][]string{"sr_mod.ko": nil}, []string{"kernel/fs/isofs/isofs.ko"})
	if _, err := planModules(dir, []string{"isofs"}); err != nil {
		t.Errorf("built-in isofs: %v", err)
	}
}

func TestReadModule(t *testing.T) {
	dir := t.TempDir()
	testModules(t, dir, fakeDep, nil)
	for p := range fakeDep {
		got, err := readModule(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(got, modContent(p)) {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
	writeFile(t, filepath.Join(dir, "bad.ko.xz"), []byte("not xz"))
	writeFile(t, filepath.Join(dir, "odd.ko.lz4"), []byte("x"))
	for _, p := range []string{"bad.ko.xz", "odd.ko.lz4"} {
		if _, err := readModule(filepath.Join(dir, p)); !errors.Is(err, ErrModules) {
			t.Errorf("%s: err %v, want ErrModules", p, err)
		}
	}
}

func TestModName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/usb/storage/usb-storage.ko": "usb_storage",
		"a/b/cdrom.ko.xz": "cdrom",
		"x.ko.zst":        "x",
		"usb-storage":     "usb_storage",
		"isofs":           "isofs",
	} {
		if got := modName(in); got != want {
			t.Errorf("modName(%q) = %q, want %q", in, got, want)
		}
	}
}
