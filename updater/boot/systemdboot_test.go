package boot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testUUID = "6d3376e4-fc93-4509-95ec-a21d68011da2"

// newESP returns a loader on an empty ESP in a temp dir, and the root of
// a fake running system to put snapshots in.
func newESP(t *testing.T) (*SystemdBoot, string) {
	t.Helper()
	root := t.TempDir()
	esp := filepath.Join(root, "efi")
	if err := os.Mkdir(esp, 0o755); err != nil {
		t.Fatal(err)
	}
	return &SystemdBoot{ESP: esp}, root
}

// snap makes snapshot n's /boot in root and returns its entry.
func snap(t *testing.T, root string, n int, kernel, initrd string) Entry {
	t.Helper()
	dir := filepath.Join(root, ".snapshots", fmt.Sprint(n), "snapshot", "boot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := Entry{
		Snapshot: n,
		Kernel:   filepath.Join(dir, "vmlinuz-6.1.0-13-amd64"),
		RootUUID: testUUID,
		Subvol:   fmt.Sprintf("@/.snapshots/%d/snapshot", n),
	}
	writeFile(t, e.Kernel, kernel)
	if initrd != "" {
		e.Initrd = filepath.Join(dir, "initrd.img-6.1.0-13-amd64")
		writeFile(t, e.Initrd, initrd)
	}
	return e
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

// entries lists loader/entries.
func entries(t *testing.T, b *SystemdBoot) []string {
	t.Helper()
	des, err := os.ReadDir(b.entriesDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// espFiles lists every file on the ESP, relative to it.
func espFiles(t *testing.T, b *SystemdBoot) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(b.ESP, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(b.ESP, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func noTemps(t *testing.T, b *SystemdBoot) {
	t.Helper()
	for _, f := range espFiles(t, b) {
		if strings.Contains(f, tmpMark) {
			t.Errorf("temp file left: %s", f)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSetNextWritesEntry(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	e := snap(t, root, 5, "kernel-a", "initrd-a")
	e.Options = []string{"quiet", "console=ttyS0,115200"}
	must(t, b.SetNext(ctx, e))

	if got, want := entries(t, b), []string{"speedia-5+3.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
	want := "# Written by the speedia updater; edits are lost.\n" +
		"title Speedia host (snapshot 5)\n" +
		"sort-key speedia\n" +
		"version 5\n" +
		"linux /speedia/" + hash16("kernel-a") + "/linux\n" +
		"initrd /speedia/" + hash16("initrd-a") + "/initrd\n" +
		"options root=UUID=" + testUUID + " rootflags=subvol=@/.snapshots/5/snapshot ro quiet console=ttyS0,115200\n"
	if got := readFile(t, filepath.Join(b.entriesDir(), "speedia-5+3.conf")); got != want {
		t.Errorf("entry:\n%s\nwant:\n%s", got, want)
	}
	if got := readFile(t, filepath.Join(b.ESP, "speedia", hash16("kernel-a"), "linux")); got != "kernel-a" {
		t.Errorf("kernel on ESP = %q", got)
	}
	if got := readFile(t, filepath.Join(b.ESP, "speedia", hash16("initrd-a"), "initrd")); got != "initrd-a" {
		t.Errorf("initrd on ESP = %q", got)
	}
	if got, want := readFile(t, filepath.Join(b.ESP, "loader", "loader.conf")), "default speedia-*\ntimeout 3\n"; got != want {
		t.Errorf("loader.conf = %q, want %q", got, want)
	}
	noTemps(t, b)
}

func TestSetNextTitleTriesNoInitrd(t *testing.T) {
	b, root := newESP(t)
	e := snap(t, root, 7, "k", "")
	e.Title, e.Tries = "Speedia 2025.1", 5
	must(t, b.SetNext(context.Background(), e))
	if got, want := entries(t, b), []string{"speedia-7+5.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
	got := readFile(t, filepath.Join(b.entriesDir(), "speedia-7+5.conf"))
	if !strings.Contains(got, "\ntitle Speedia 2025.1\n") || strings.Contains(got, "initrd") {
		t.Errorf("entry:\n%s", got)
	}
}

func TestSetNextRefreshes(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	must(t, b.SetNext(ctx, snap(t, root, 5, "k1", "i1")))
	must(t, b.Bless(ctx, 5))
	// Same snapshot, new initrd: one entry with fresh tries, old initrd gone.
	must(t, b.SetNext(ctx, snap(t, root, 5, "k1", "i2")))
	if got, want := entries(t, b), []string{"speedia-5+3.conf"}; !slices.Equal(got, want) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(b.ESP, "speedia", hash16("i1"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old initrd not collected: %v", err)
	}
}

func TestSetNextValidates(t *testing.T) {
	b, root := newESP(t)
	good := snap(t, root, 1, "k", "i")
	for name, mod := range map[string]func(*Entry){
		"snapshot 0":      func(e *Entry) { e.Snapshot = 0 },
		"no kernel":       func(e *Entry) { e.Kernel = "" },
		"no uuid":         func(e *Entry) { e.RootUUID = "" },
		"no subvol":       func(e *Entry) { e.Subvol = "" },
		"negative tries":  func(e *Entry) { e.Tries = -1 },
		"space in subvol": func(e *Entry) { e.Subvol = "@/a b" },
		"newline title":   func(e *Entry) { e.Title = "x\nlinux /evil" },
		"newline option":  func(e *Entry) { e.Options = []string{"quiet\ninitrd /evil"} },
	} {
		e := good
		mod(&e)
		if err := b.SetNext(context.Background(), e); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := os.Stat(b.entriesDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("invalid entries wrote something: %v", err)
	}
}

func TestSetNextNeedsESP(t *testing.T) {
	b, root := newESP(t)
	b.ESP = filepath.Join(root, "not-mounted")
	if err := b.SetNext(context.Background(), snap(t, root, 1, "k", "i")); err == nil {
		t.Fatal("no error for a missing ESP")
	}
	if _, err := os.Stat(b.ESP); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ESP created: %v", err)
	}
}

func TestFailedSetNextLeavesOldState(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	must(t, b.SetNext(ctx, snap(t, root, 1, "k1", "i1")))
	before := espFiles(t, b)

	e := snap(t, root, 2, "k2", "i2")
	e.Initrd += ".missing"
	if err := b.SetNext(ctx, e); err == nil {
		t.Fatal("no error for a missing initrd")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.SetNext(cancelled, snap(t, root, 3, "k3", "i3")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled SetNext: %v", err)
	}
	// The kernel of 2 may have been copied; its entry was not written.
	if got, want := entries(t, b), []string{"speedia-1+3.conf"}; !slices.Equal(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	noTemps(t, b)
	must(t, b.Remove(ctx, 99)) // gc: only files of 1 are left
	if got := espFiles(t, b); !slices.Equal(got, before) {
		t.Errorf("files = %v, want %v", got, before)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "speedia-1+3.conf")
	must(t, writeFileAtomic(p, []byte("old\n")))

	err := writeAtomic(p, func(w io.Writer) error {
		io.WriteString(w, "half")
		return errors.New("disk on fire")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if got := readFile(t, p); got != "old\n" {
		t.Errorf("file = %q after failed write", got)
	}
	must(t, writeFileAtomic(p, []byte("new\n")))
	if got := readFile(t, p); got != "new\n" {
		t.Errorf("file = %q", got)
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Errorf("dir has %d files, want 1 (no temps)", len(des))
	}
}

func TestGCRemovesCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	must(t, b.SetNext(ctx, snap(t, root, 1, "k", "i")))
	leftovers := []string{
		"loader/entries/.speedia-2+3.conf.tmp-123",
		"loader/.loader.conf.tmp-9",
		"speedia/0123456789abcdef/.linux.tmp-77",
		"speedia/" + hash16("k") + "/.linux.tmp-78",
	}
	for _, f := range leftovers {
		writeFile(t, filepath.Join(b.ESP, f), "partial")
	}
	admin := []string{"loader/entries/.keep-me", "speedia/README", "speedia/not-a-hash/x"}
	for _, f := range admin {
		writeFile(t, filepath.Join(b.ESP, f), "admin")
	}
	must(t, b.Remove(ctx, 2))
	noTemps(t, b)
	files := espFiles(t, b)
	for _, f := range admin {
		if !slices.Contains(files, f) {
			t.Errorf("gc removed %s, not ours", f)
		}
	}
	if _, err := os.Stat(filepath.Join(b.ESP, "speedia", "0123456789abcdef")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty hash dir left: %v", err)
	}
}

func TestKernelDedupAndGC(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	// 1 and 2 share the kernel; the initrds differ.
	must(t, b.SetNext(ctx, snap(t, root, 1, "kernel-6.1", "initrd-1")))
	must(t, b.SetNext(ctx, snap(t, root, 2, "kernel-6.1", "initrd-2")))
	kernel := "speedia/" + hash16("kernel-6.1") + "/linux"
	want := []string{
		kernel,
		"speedia/" + hash16("initrd-1") + "/initrd",
		"speedia/" + hash16("initrd-2") + "/initrd",
	}
	slices.Sort(want)
	if got := blobs(t, b); !slices.Equal(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	mod := func() time.Time {
		fi, err := os.Stat(filepath.Join(b.ESP, kernel))
		must(t, err)
		return fi.ModTime()
	}
	m := mod()
	must(t, b.SetNext(ctx, snap(t, root, 3, "kernel-6.1", "initrd-2")))
	if !mod().Equal(m) {
		t.Error("shared kernel rewritten")
	}
	if got := blobs(t, b); !slices.Equal(got, want) {
		t.Fatalf("after 3: files = %v, want %v", got, want)
	}

	// A foreign entry using our kernel keeps it alive.
	writeFile(t, filepath.Join(b.entriesDir(), "custom.conf"), "title custom\nlinux \\SPEEDIA\\"+strings.ToUpper(hash16("kernel-6.1"))+"\\LINUX\n")
	must(t, b.Remove(ctx, 1))
	must(t, b.Remove(ctx, 2))
	want = []string{kernel, "speedia/" + hash16("initrd-2") + "/initrd"}
	slices.Sort(want)
	if got := blobs(t, b); !slices.Equal(got, want) {
		t.Fatalf("after removing 1, 2: files = %v, want %v", got, want)
	}
	must(t, b.Remove(ctx, 3))
	if got, want := blobs(t, b), []string{kernel}; !slices.Equal(got, want) {
		t.Fatalf("after removing 3: files = %v, want %v", got, want)
	}
	must(t, os.Remove(filepath.Join(b.entriesDir(), "custom.conf")))
	must(t, b.Remove(ctx, 3)) // missing entry: fine, and collects
	if got := blobs(t, b); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	des, err := os.ReadDir(filepath.Join(b.ESP, "speedia"))
	must(t, err)
	if len(des) != 0 {
		t.Errorf("dirs left in speedia/: %d", len(des))
	}
}

// blobs lists the kernels and initrds on the ESP.
func blobs(t *testing.T, b *SystemdBoot) []string {
	var out []string
	for _, f := range espFiles(t, b) {
		if strings.HasPrefix(f, "speedia/") {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func TestMergeLoaderConf(t *testing.T) {
	tests := []struct{ name, old, want string }{
		{"empty", "", "default speedia-*\ntimeout 3\n"},
		{
			"admin keys kept, default replaced in place",
			"# mine\ntimeout 10\nconsole-mode max\ndefault debian-*\neditor no\n",
			"# mine\ntimeout 10\nconsole-mode max\ndefault speedia-*\neditor no\n",
		},
		{"no newline at end", "editor no", "editor no\ndefault speedia-*\ntimeout 3\n"},
		{"duplicate default", "default a\nbeep yes\ndefault b\n", "default speedia-*\nbeep yes\ntimeout 3\n"},
		{"tab separated", "timeout\t0\ndefault\t@saved\n", "timeout\t0\ndefault speedia-*\n"},
		{"commented default", "#default foo\n", "#default foo\ndefault speedia-*\ntimeout 3\n"},
	}
	for _, tt := range tests {
		got := mergeLoaderConf(tt.old)
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
		if again := mergeLoaderConf(got); again != got {
			t.Errorf("%s: not idempotent: %q", tt.name, again)
		}
	}
}

func TestLoaderConfKeepsAdminKeys(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	p := filepath.Join(b.ESP, "loader", "loader.conf")
	writeFile(t, p, "timeout 0\nconsole-mode keep\ndefault @saved\n")
	must(t, b.SetNext(ctx, snap(t, root, 1, "k", "i")))
	want := "timeout 0\nconsole-mode keep\ndefault speedia-*\n"
	if got := readFile(t, p); got != want {
		t.Fatalf("loader.conf = %q, want %q", got, want)
	}
	// Unchanged: not rewritten.
	old := time.Now().Add(-time.Hour)
	must(t, os.Chtimes(p, old, old))
	must(t, b.SetNext(ctx, snap(t, root, 2, "k", "i")))
	fi, err := os.Stat(p)
	must(t, err)
	if !fi.ModTime().Equal(old) {
		t.Error("unchanged loader.conf rewritten")
	}
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	for n := 1; n <= 4; n++ {
		must(t, b.SetNext(ctx, snap(t, root, n, "k", fmt.Sprint("i", n))))
		if n <= 2 {
			must(t, b.Bless(ctx, n))
		}
	}
	// 3 good, 4 booted once and not blessed yet.
	must(t, b.Bless(ctx, 3))
	must(t, os.Rename(filepath.Join(b.entriesDir(), "speedia-4+3.conf"), filepath.Join(b.entriesDir(), "speedia-4+2-1.conf")))

	must(t, b.SetNext(ctx, snap(t, root, 2, "k", "i2")))
	want := []string{"speedia-1.conf", "speedia-2+3.conf", "speedia-3+0.conf", "speedia-4+0-1.conf"}
	if got := entries(t, b); !slices.Equal(got, want) {
		t.Fatalf("after rollback: entries = %v, want %v", got, want)
	}
	if got := order(t, b); !slices.Equal(got, []int{2, 1, 4, 3}) {
		t.Errorf("List order = %v, want [2 1 4 3]", got)
	}
	// The newer snapshots' kernels stay: they can still be booted by hand.
	if got := len(blobs(t, b)); got != 5 {
		t.Errorf("%d kernels and initrds, want 5", got)
	}

	// Forward again to 4: fresh tries, older entries untouched.
	must(t, b.SetNext(ctx, snap(t, root, 4, "k", "i4")))
	want = []string{"speedia-1.conf", "speedia-2+3.conf", "speedia-3+0.conf", "speedia-4+3.conf"}
	if got := entries(t, b); !slices.Equal(got, want) {
		t.Fatalf("after roll forward: entries = %v, want %v", got, want)
	}
	if got := order(t, b); !slices.Equal(got, []int{4, 2, 1, 3}) {
		t.Errorf("List order = %v, want [4 2 1 3]", got)
	}
}

func order(t *testing.T, b *SystemdBoot) []int {
	t.Helper()
	list, err := b.List(context.Background())
	must(t, err)
	var out []int
	for _, e := range list {
		out = append(out, e.Snapshot)
	}
	return out
}

func TestBlessAndMarkBad(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	must(t, b.SetNext(ctx, snap(t, root, 4, "k", "i")))
	step := func(what string, err error, want string) {
		t.Helper()
		must(t, err)
		if got := entries(t, b); !slices.Equal(got, []string{want}) {
			t.Fatalf("%s: entries = %v, want [%s]", what, got, want)
		}
	}
	// As if systemd-boot had counted two attempts.
	step("booted twice", os.Rename(filepath.Join(b.entriesDir(), "speedia-4+3.conf"), filepath.Join(b.entriesDir(), "speedia-4+1-2.conf")), "speedia-4+1-2.conf")
	step("bless", b.Bless(ctx, 4), "speedia-4.conf")
	step("bless again", b.Bless(ctx, 4), "speedia-4.conf")
	step("mark bad", b.MarkBad(ctx, 4), "speedia-4+0.conf")
	step("mark bad again", b.MarkBad(ctx, 4), "speedia-4+0.conf")
	step("bless a bad one", b.Bless(ctx, 4), "speedia-4.conf")
	step("booted once", os.Rename(filepath.Join(b.entriesDir(), "speedia-4.conf"), filepath.Join(b.entriesDir(), "speedia-4+2-1.conf")), "speedia-4+2-1.conf")
	step("mark bad keeps tries done", b.MarkBad(ctx, 4), "speedia-4+0-1.conf")

	if err := b.Bless(ctx, 9); !errors.Is(err, ErrNotFound) {
		t.Errorf("Bless(9) = %v, want ErrNotFound", err)
	}
	if err := b.MarkBad(ctx, 9); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkBad(9) = %v, want ErrNotFound", err)
	}
}

func TestBlessCrashLeftover(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	must(t, b.SetNext(ctx, snap(t, root, 4, "k", "old")))
	must(t, b.Bless(ctx, 4))
	// A crash in SetNext between writing the new entry and removing the old.
	dir := b.entriesDir()
	oldPath := filepath.Join(dir, "speedia-4.conf")
	old := time.Now().Add(-time.Hour)
	must(t, os.Chtimes(oldPath, old, old))
	content := strings.Replace(readFile(t, oldPath), "title Speedia host (snapshot 4)", "title new", 1)
	writeFile(t, filepath.Join(dir, "speedia-4+3.conf"), content)

	must(t, b.Bless(ctx, 4))
	if got := entries(t, b); !slices.Equal(got, []string{"speedia-4.conf"}) {
		t.Fatalf("entries = %v", got)
	}
	if !strings.Contains(readFile(t, oldPath), "title new") {
		t.Error("kept the older file")
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	b, root := newESP(t)
	e := snap(t, root, 9, "k", "i")
	e.Options = []string{"quiet"}
	must(t, b.SetNext(ctx, e))
	must(t, b.SetNext(ctx, snap(t, root, 10, "k", "")))
	must(t, b.MarkBad(ctx, 10))
	writeFile(t, filepath.Join(b.entriesDir(), "debian-6.1.conf"), "title Debian\nlinux /x\n")

	list, err := b.List(ctx)
	must(t, err)
	want := []EntryInfo{{
		Snapshot: 9, File: "speedia-9+3.conf", Title: "Speedia host (snapshot 9)", Version: "9",
		Kernel: "/speedia/" + hash16("k") + "/linux", Initrd: "/speedia/" + hash16("i") + "/initrd",
		Options:   "root=UUID=" + testUUID + " rootflags=subvol=@/.snapshots/9/snapshot ro quiet",
		TriesLeft: 3, State: StateIndeterminate,
	}, {
		Snapshot: 10, File: "speedia-10+0.conf", Title: "Speedia host (snapshot 10)", Version: "10",
		Kernel:    "/speedia/" + hash16("k") + "/linux",
		Options:   "root=UUID=" + testUUID + " rootflags=subvol=@/.snapshots/10/snapshot ro",
		TriesLeft: 0, State: StateBad,
	}}
	if !slices.Equal(list, want) {
		t.Errorf("List =\n%+v\nwant\n%+v", list, want)
	}
}
