package podman

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// treeSum fingerprints a directory tree: every entry's path, type, mode,
// owner, content and link target. Two trees with the same sum are equal
// byte for byte.
func treeSum(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %d:%d", rel, fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", h.Sum(nil))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%x (%d entries)", sum[:8], len(lines))
}

func fill(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "db/sub"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "db/ibdata"), []byte(strings.Repeat("row;", 10000)), 0o640))
	must(os.WriteFile(filepath.Join(dir, "db/sub/empty"), nil, 0o600))
	must(os.WriteFile(filepath.Join(dir, "keep"), []byte("keep me"), 0o644))
	must(os.Symlink("db/ibdata", filepath.Join(dir, "link")))
	must(os.Chmod(dir, 0o711))
}

func TestDataSnapshotRestoresExactly(t *testing.T) {
	ctx := context.Background()
	vol := t.TempDir()
	file := filepath.Join(t.TempDir(), "site.conf")
	fill(t, vol)
	if err := os.WriteFile(file, []byte("listen 80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, beforeFile := treeSum(t, vol), treeSum(t, file)

	snap, err := snapshotData(ctx, filepath.Join(t.TempDir(), "snap"), []Data{
		{Kind: "volume", Name: "data", Path: vol},
		{Kind: "bind", Name: "/etc/site.conf", Path: file},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("methods: %s, %s", snap.Items[0].Method, snap.Items[1].Method)

	// What a broken upgrade might do: add, delete, change, chmod.
	os.WriteFile(filepath.Join(vol, "BROKEN"), []byte("x"), 0o644)
	os.Remove(filepath.Join(vol, "keep"))
	os.WriteFile(filepath.Join(vol, "db/ibdata"), []byte("corrupt"), 0o640)
	os.Chmod(filepath.Join(vol, "db"), 0o777)
	os.WriteFile(file, []byte("listen 8080\n"), 0o644)
	if treeSum(t, vol) == before {
		t.Fatal("the changes did not change the sum; the test cannot tell")
	}

	if err := snap.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if got := treeSum(t, vol); got != before {
		t.Errorf("volume after restore = %s, want %s", got, before)
	}
	if got := treeSum(t, file); got != beforeFile {
		t.Errorf("file after restore = %s, want %s", got, beforeFile)
	}
	if err := snap.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap.Dir); !os.IsNotExist(err) {
		t.Errorf("snapshot dir still there: %v", err)
	}
}

func TestDataSnapshotFailureLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	_, err := snapshotData(context.Background(), dir, []Data{
		{Kind: "volume", Name: "ok", Path: t.TempDir()},
		{Kind: "volume", Name: "gone", Path: "/nonexistent/speedia"},
	})
	if err == nil || !strings.Contains(err.Error(), "volume gone (/nonexistent/speedia)") {
		t.Fatalf("err = %v; want one naming the missing volume", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a failed snapshot left %s behind", dir)
	}
}
