package etcmerge

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, root, rel string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sourceWins bool
		base       map[string]string
		source     map[string]string // the admin's /etc (base + edits)
		target     map[string]string // the other snapshot's /etc
		want       map[string]string // "" means absent
		report     Report
	}{
		{
			name:   "untouched files stay as target has them",
			base:   map[string]string{"a": "1", "pkg.conf": "v1"},
			source: map[string]string{"a": "1", "pkg.conf": "v1"},
			target: map[string]string{"a": "1", "pkg.conf": "v2"},
			want:   map[string]string{"a": "1", "pkg.conf": "v2"},
		},
		{
			name:   "admin edit is applied where target is unchanged",
			base:   map[string]string{"hosts": "old", "pkg.conf": "v1"},
			source: map[string]string{"hosts": "admin", "pkg.conf": "v1"},
			target: map[string]string{"hosts": "old", "pkg.conf": "v2"},
			want:   map[string]string{"hosts": "admin", "pkg.conf": "v2"},
			report: Report{Applied: []string{"hosts"}},
		},
		{
			name:   "new file and deleted file",
			base:   map[string]string{"gone": "x"},
			source: map[string]string{"sub/dir/new": "n"},
			target: map[string]string{"gone": "x"},
			want:   map[string]string{"gone": "", "sub/dir/new": "n"},
			report: Report{Applied: []string{"sub/dir/new"}, Removed: []string{"gone"}},
		},
		{
			name:       "both changed, forward: admin wins, package version kept beside",
			sourceWins: true,
			base:       map[string]string{"app.conf": "v1"},
			source:     map[string]string{"app.conf": "admin"},
			target:     map[string]string{"app.conf": "v2"},
			want:       map[string]string{"app.conf": "admin", "app.conf.sfx": "v2"},
			report:     Report{Conflicts: []string{"app.conf"}},
		},
		{
			name:   "both changed, rollback: target wins, admin version kept beside",
			base:   map[string]string{"app.conf": "v2"},
			source: map[string]string{"app.conf": "admin"},
			target: map[string]string{"app.conf": "v1"},
			want:   map[string]string{"app.conf": "v1", "app.conf.sfx": "admin"},
			report: Report{Conflicts: []string{"app.conf"}},
		},
		{
			name:   "same edit on both sides is no conflict",
			base:   map[string]string{"f": "old"},
			source: map[string]string{"f": "new"},
			target: map[string]string{"f": "new"},
			want:   map[string]string{"f": "new", "f.sfx": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base, source, target := filepath.Join(dir, "base"), filepath.Join(dir, "source"), filepath.Join(dir, "target")
			write(t, base, tc.base)
			write(t, source, tc.source)
			write(t, target, tc.target)
			pol := Policy{SourceWins: tc.sourceWins, Suffix: ".sfx"}
			rep, err := Merge(base, source, target, pol)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep, tc.report) {
				t.Errorf("report = %+v, want %+v", rep, tc.report)
			}
			for rel, want := range tc.want {
				got, ok := read(t, target, rel)
				if want == "" && ok {
					t.Errorf("%s exists (%q), want absent", rel, got)
				}
				if want != "" && got != want {
					t.Errorf("%s = %q, want %q", rel, got, want)
				}
			}
			// A second run changes nothing: a killed merge can simply be redone.
			rep2, err := Merge(base, source, target, pol)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep2, Report{}) {
				t.Errorf("second merge did %+v, want nothing", rep2)
			}
			if left, _ := filepath.Glob(filepath.Join(target, ".speedia-merge-*")); len(left) > 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

func TestMergeKeepsModeAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	base, source, target := filepath.Join(dir, "b"), filepath.Join(dir, "s"), filepath.Join(dir, "t")
	for _, d := range []string{base, source, target} {
		write(t, d, map[string]string{"secret": "x"})
	}
	if err := os.Chmod(filepath.Join(source, "secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/zoneinfo/Europe/Berlin", filepath.Join(source, "localtime")); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(base, source, target, Policy{Suffix: ".x"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(target, "secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(target, "localtime")); err != nil || l != "/usr/share/zoneinfo/Europe/Berlin" {
		t.Fatalf("localtime -> %q, %v", l, err)
	}
}
