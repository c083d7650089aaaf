package boot

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file models how systemd-boot picks the entry to boot, independently
// of the package code, after the Boot Loader Specification ("Sorting", "Boot
// counting"), the Version Format Specification, loader.conf(5) ("default":
// a glob on the entry ID, the file name with ".conf"), and systemd-boot's
// boot.c (config_entry_compare, config_entry_parse_tries,
// config_default_entry_select).

type sdEntry struct {
	id                          string // lower-cased file name
	file                        string
	sortKey, machineID, version string
	left, done                  int // -1, -1: no boot counting
}

// sdLoad reads loader/entries like systemd-boot. Entries whose linux file
// is missing are dropped, as systemd-boot does.
func sdLoad(t *testing.T, esp string) []sdEntry {
	t.Helper()
	dir := filepath.Join(esp, "loader", "entries")
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []sdEntry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || de.IsDir() || !strings.HasSuffix(strings.ToLower(name), ".conf") || strings.HasPrefix(name, "auto-") {
			continue
		}
		e := sdEntry{id: strings.ToLower(name), file: name, left: -1, done: -1}
		var linux string
		for k, v := range keys([]byte(readFile(t, filepath.Join(dir, name)))) {
			switch k {
			case "sort-key":
				e.sortKey = v
			case "machine-id":
				e.machineID = v
			case "version":
				e.version = v
			case "linux":
				linux = v
			}
		}
		if linux == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(esp, filepath.FromSlash(strings.TrimPrefix(linux, "/")))); err != nil {
			continue
		}
		e.left, e.done = sdParseTries(name)
		out = append(out, e)
	}
	return out
}

// sdParseTries: "+LEFT[-DONE]" after the last '+', right before ".conf".
func sdParseTries(name string) (left, done int) {
	i := strings.LastIndexByte(name, '+')
	if i < 0 {
		return -1, -1
	}
	rest := name[i+1:]
	digits := func() (int, bool) {
		n := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
		v, err := strconv.Atoi(rest[:n])
		rest = rest[n:]
		return v, err == nil
	}
	left, ok := digits()
	if !ok {
		return -1, -1
	}
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
		if done, ok = digits(); !ok {
			return -1, -1
		}
	}
	if rest != ".conf" {
		return -1, -1
	}
	return left, done
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// sdCompare is config_entry_compare. useSortKey=false models systemd-boot
// older than sort-key support (v251), which orders by ID only.
func sdCompare(a, b sdEntry, useSortKey bool) int {
	if r := cmpBool(a.left == 0, b.left == 0); r != 0 {
		return r // bad entries last
	}
	if useSortKey {
		if r := cmpBool(a.sortKey == "", b.sortKey == ""); r != 0 {
			return r
		}
		if a.sortKey != "" {
			if r := strings.Compare(a.sortKey, b.sortKey); r != 0 {
				return r
			}
			if r := strings.Compare(a.machineID, b.machineID); r != 0 {
				return r
			}
			if r := -vercmp(a.version, b.version); r != 0 {
				return r
			}
		}
	}
	if r := -vercmp(a.id, b.id); r != 0 {
		return r
	}
	if a.left < 0 || b.left < 0 {
		return 0
	}
	if r := -cmp.Compare(a.left, b.left); r != 0 {
		return r
	}
	return cmp.Compare(a.done, b.done)
}

// vercmp is the Version Format Specification's comparison
// (systemd's strverscmp_improved).
func vercmp(a, b string) int {
	valid := func(r rune) bool {
		return r < 128 && (isDigit(byte(r)) || isAlpha(byte(r)) || strings.ContainsRune("~-^.", r))
	}
	at := func(s string, c byte) bool { return s != "" && s[0] == c }
	for {
		a = strings.TrimLeftFunc(a, func(r rune) bool { return !valid(r) })
		b = strings.TrimLeftFunc(b, func(r rune) bool { return !valid(r) })
		if at(a, '~') || at(b, '~') {
			if r := cmpBool(!at(a, '~'), !at(b, '~')); r != 0 {
				return r
			}
			a, b = a[1:], b[1:]
		}
		if a == "" || b == "" {
			return strings.Compare(a, b)
		}
		if at(a, '-') || at(b, '-') {
			if r := cmpBool(!at(a, '-'), !at(b, '-')); r != 0 {
				return r
			}
			a, b = a[1:], b[1:]
		}
		if at(a, '^') || at(b, '^') {
			if r := cmpBool(!at(a, '^'), !at(b, '^')); r != 0 {
				return -r
			}
			a, b = a[1:], b[1:]
		}
		if at(a, '.') || at(b, '.') {
			if r := cmpBool(!at(a, '.'), !at(b, '.')); r != 0 {
				return r
			}
			a, b = a[1:], b[1:]
		}
		if (a != "" && isDigit(a[0])) || (b != "" && isDigit(b[0])) {
			na, nb := span(a, isDigit), span(b, isDigit)
			if r := cmpBool(na > 0, nb > 0); r != 0 {
				return r
			}
			da, db := strings.TrimLeft(a[:na], "0"), strings.TrimLeft(b[:nb], "0")
			if r := cmp.Compare(len(da), len(db)); r != 0 {
				return r
			}
			if r := strings.Compare(da, db); r != 0 {
				return r
			}
			a, b = a[na:], b[nb:]
			continue
		}
		na, nb := span(a, isAlpha), span(b, isAlpha)
		if r := strings.Compare(a[:min(na, nb)], b[:min(na, nb)]); r != 0 {
			return r
		}
		if r := cmp.Compare(na, nb); r != 0 {
			return r
		}
		a, b = a[na:], b[nb:]
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func span(s string, f func(byte) bool) int {
	n := 0
	for n < len(s) && f(s[n]) {
		n++
	}
	return n
}

func TestVercmp(t *testing.T) {
	// Examples from the Version Format Specification, plus ours.
	tests := []struct {
		a, b string
		want int
	}{
		{"11", "11", 0}, {"systemd-123", "systemd-123", 0}, {"bar-123", "foo-123", -1},
		{"123a", "123", 1}, {"123.a", "123", 1}, {"123.a", "123.b", -1}, {"123a", "123.a", 1},
		{"A", "a", -1}, {"", "0", -1}, {"0.", "0", 1}, {"0.0", "0", 1}, {"0", "~", 1}, {"", "~", 1},
		{"1_", "1", 0}, {"1_", "1.2", -1}, {"1_2_3", "1.3.3", 1}, {"1+", "1", 0}, {"1+2+3", "1.3.3", 1},
		{"10", "9", 1}, {"speedia-10+3.conf", "speedia-9.conf", 1},
	}
	for _, tt := range tests {
		if got := vercmp(tt.a, tt.b); got != tt.want {
			t.Errorf("vercmp(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := vercmp(tt.b, tt.a); got != -tt.want {
			t.Errorf("vercmp(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// sdOrder returns the menu in systemd-boot's order.
func sdOrder(t *testing.T, esp string, useSortKey bool) []sdEntry {
	es := sdLoad(t, esp)
	slices.SortStableFunc(es, func(a, b sdEntry) int { return sdCompare(a, b, useSortKey) })
	return es
}

// sdDefault is the entry systemd-boot boots without a key press: the first
// in menu order that loader.conf's default glob matches.
func sdDefault(t *testing.T, esp string, useSortKey bool) sdEntry {
	t.Helper()
	es := sdOrder(t, esp, useSortKey)
	if len(es) == 0 {
		t.Fatal("no entries")
	}
	var glob string
	for k, v := range keys([]byte(readFile(t, filepath.Join(esp, "loader", "loader.conf")))) {
		if k == "default" {
			glob = strings.ToLower(v)
		}
	}
	for _, e := range es {
		if ok, _ := path.Match(glob, e.id); ok {
			return e
		}
	}
	return es[0]
}

// sdBoot boots the default entry, counting the attempt like systemd-boot
// (config_entry_bump_counters), and returns its snapshot.
func sdBoot(t *testing.T, esp string, useSortKey bool) int {
	t.Helper()
	e := sdDefault(t, esp, useSortKey)
	if e.left >= 0 {
		i := strings.LastIndexByte(e.file, '+')
		next := fmt.Sprintf("%s+%d-%d.conf", e.file[:i], max(e.left-1, 0), e.done+1)
		dir := filepath.Join(esp, "loader", "entries")
		must(t, os.Rename(filepath.Join(dir, e.file), filepath.Join(dir, next)))
	}
	n, ok := parseEntryName(e.file)
	if !ok {
		t.Fatalf("booted a foreign entry %s", e.file)
	}
	return n.Snapshot
}

func TestBootOrderLikeSystemdBoot(t *testing.T) {
	for _, useSortKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("sort-key=%v", useSortKey), func(t *testing.T) {
			ctx := context.Background()
			b, root := newESP(t)
			// Another OS's entry sorts first in the menu ("debian" < "speedia")
			// and must not be booted.
			writeFile(t, filepath.Join(b.ESP, "debian", "linux"), "k")
			writeFile(t, filepath.Join(b.ESP, "loader", "entries", "debian-6.1.0-13-amd64.conf"),
				"title Debian\nsort-key debian\nversion 6.1.0-13-amd64\nlinux /debian/linux\n")

			// next asserts what systemd-boot boots next, and that List
			// puts our entries in systemd-boot's order.
			next := func(what string, want int) {
				t.Helper()
				e := sdDefault(t, b.ESP, useSortKey)
				n, _ := parseEntryName(e.file)
				if n.Snapshot != want {
					t.Fatalf("%s: systemd-boot boots %s, want snapshot %d", what, e.file, want)
				}
				var sd []string
				for _, e := range sdOrder(t, b.ESP, useSortKey) {
					if _, ok := parseEntryName(e.file); ok {
						sd = append(sd, e.file)
					}
				}
				list, err := b.List(ctx)
				must(t, err)
				var ours []string
				for _, e := range list {
					ours = append(ours, e.File)
				}
				if !slices.Equal(ours, sd) {
					t.Fatalf("%s: List order %v, systemd-boot order %v", what, ours, sd)
				}
			}
			set := func(n int) { must(t, b.SetNext(ctx, snap(t, root, n, "k", fmt.Sprint("i", n)))) }

			set(1)
			next("first install", 1)
			must(t, b.Bless(ctx, 1))

			// New entry with tries left -> new.
			set(2)
			next("new entry", 2)
			// It never reaches boot-complete.target: tries run out -> previous.
			for i := 0; i < DefaultTries; i++ {
				if got := sdBoot(t, b.ESP, useSortKey); got != 2 {
					t.Fatalf("attempt %d booted %d, want 2", i+1, got)
				}
			}
			next("tries exhausted", 1)

			// New entry, boots, blessed -> new, and stays.
			set(3)
			if got := sdBoot(t, b.ESP, useSortKey); got != 3 {
				t.Fatalf("booted %d, want 3", got)
			}
			must(t, b.Bless(ctx, 3))
			next("blessed", 3)
			sdBoot(t, b.ESP, useSortKey)
			next("blessed, booted again", 3)

			// Marked bad by the updater -> previous.
			set(4)
			must(t, b.MarkBad(ctx, 4))
			next("marked bad", 3)

			// Versions compare as numbers: 10 is newer than 9.
			for n := 5; n <= 10; n++ {
				set(n)
				must(t, b.Bless(ctx, n))
			}
			next("snapshot 10", 10)

			// Rollback to 3; if 3 then fails, the fallback is the newest
			// good one below it, not the snapshots rolled back from.
			set(3)
			next("rollback", 3)
			for i := 0; i < DefaultTries; i++ {
				sdBoot(t, b.ESP, useSortKey)
			}
			next("rollback target failed", 1)

			// Everything bad: systemd-boot still boots one of ours.
			for _, e := range sdLoad(t, b.ESP) {
				if n, ok := parseEntryName(e.file); ok {
					must(t, b.MarkBad(ctx, n.Snapshot))
				}
			}
			next("all bad", 10)
		})
	}
}
