package cpio

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var date = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// reader is an independent cpio implementation: GNU cpio, else BusyBox's.
// BusyBox's listing shows no device numbers.
func reader(t *testing.T) (cmd []string, gnu bool) {
	t.Helper()
	if p, err := exec.LookPath("cpio"); err == nil {
		return []string{p}, true
	}
	if p, err := exec.LookPath("busybox"); err == nil {
		return []string{p, "cpio"}, false
	}
	t.Skip("no cpio or busybox to read the archive back")
	return nil, false
}

func build(t *testing.T, dev bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := New(&buf, date)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Dir("bin", 0o755))
	must(w.File("bin/busybox", 0o755, 5, strings.NewReader("hello")))
	must(w.Symlink("bin/sh", "busybox"))
	must(w.File("init", 0o755, 0, strings.NewReader("")))
	must(w.File("odd", 0o600, 3, strings.NewReader("abc")))
	if dev {
		must(w.Dir("dev", 0o755))
		must(w.CharDev("dev/console", 0o600, 5, 1))
	}
	must(w.Close())
	return buf.Bytes()
}

func TestListedByCpio(t *testing.T) {
	cmd, gnu := reader(t)
	a := build(t, true)
	if len(a)%4 != 0 {
		t.Errorf("archive length %d not 4-aligned", len(a))
	}
	c := exec.Command(cmd[0], append(cmd[1:], "-t", "-v")...)
	c.Stdin = bytes.NewReader(a)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	// Mode, size or target of each entry as `cpio -tv` prints them.
	wants := [][]string{
		{"drwxr-xr-x", " bin\n"},
		{"-rwxr-xr-x", " 5 ", " bin/busybox\n"},
		{"lrwxrwxrwx", "bin/sh -> busybox"},
		{"-rw-------", " 3 ", " odd\n"},
		{"crw-------", " dev/console\n"},
	}
	if gnu {
		wants = append(wants, []string{"crw-------", " 5,   1 ", " dev/console\n"})
	}
	for _, want := range wants {
		found := false
		for _, l := range strings.SplitAfter(string(out), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no line with %q in\n%s", want, out)
		}
	}
}

func TestExtractedByCpio(t *testing.T) {
	cmd, _ := reader(t)
	dir := t.TempDir()
	c := exec.Command(cmd[0], append(cmd[1:], "-i", "-d", "-m")...)
	c.Dir = dir
	c.Stdin = bytes.NewReader(build(t, false))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	for name, want := range map[string]string{"bin/busybox": "hello", "odd": "abc", "init": ""} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "odd"))
	if err != nil || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(date) {
		t.Errorf("odd: %v %v, want 0600 at %v", fi.Mode(), fi.ModTime(), date)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
}

func TestReproducible(t *testing.T) {
	if !bytes.Equal(build(t, true), build(t, true)) {
		t.Error("same entries gave different archives")
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(w *Writer) error
		want error
	}{
		{"absolute", func(w *Writer) error { return w.Dir("/etc", 0o755) }, ErrName},
		{"dotdot", func(w *Writer) error { return w.Dir("a/../../b", 0o755) }, ErrName},
		{"empty", func(w *Writer) error { return w.Dir("", 0o755) }, ErrName},
		{"short data", func(w *Writer) error { return w.File("f", 0o644, 10, strings.NewReader("abc")) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(&bytes.Buffer{}, date)
			err := tc.add(w)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			// The error sticks.
			if err2 := w.Close(); err2 == nil {
				t.Error("Close after an error succeeded")
			}
		})
	}
}
