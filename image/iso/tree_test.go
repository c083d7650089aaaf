package iso

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindKernel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string // vmlinuz files and module dirs (with modules.dep)
		links   map[string]string
		version string
		want    string // version, or error text
	}{
		{name: "debian", files: []string{"boot/vmlinuz-6.1", "usr/lib/modules/6.1"}, links: map[string]string{"lib": "usr/lib"}, want: "6.1"},
		{name: "absolute link resolved in the tree", files: []string{"boot/vmlinuz-6.1", "real/modules/6.1"}, links: map[string]string{"lib": "/real"}, want: "6.1"},
		{name: "image beside the modules", files: []string{"usr/lib/modules/6.4/vmlinuz", "usr/lib/modules/6.4"}, want: "6.4"},
		{name: "old /lib", files: []string{"boot/vmlinuz-5.10", "lib/modules/5.10"}, want: "5.10"},
		{name: "modules without image are no kernel", files: []string{"boot/vmlinuz-6.1", "usr/lib/modules/6.1", "usr/lib/modules/6.0"}, want: "6.1"},
		{name: "two kernels", files: []string{"boot/vmlinuz-6.1", "usr/lib/modules/6.1", "boot/vmlinuz-6.2", "usr/lib/modules/6.2"}, want: "2 kernels"},
		{name: "two kernels, one chosen", files: []string{"boot/vmlinuz-6.1", "usr/lib/modules/6.1", "boot/vmlinuz-6.2", "usr/lib/modules/6.2"}, version: "6.2", want: "6.2"},
		{name: "chosen one missing", files: []string{"boot/vmlinuz-6.1", "usr/lib/modules/6.1"}, version: "6.2", want: "no kernel 6.2"},
		{name: "none", files: []string{"usr/lib/modules/6.1"}, want: "no kernel in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(tree, f)
				if strings.Contains(f, "vmlinuz") {
					writeFile(t, p, []byte("kernel"))
				} else {
					writeFile(t, filepath.Join(p, "modules.dep"), nil)
				}
			}
			for l, target := range tc.links {
				if err := os.Symlink(target, filepath.Join(tree, l)); err != nil {
					t.Fatal(err)
				}
			}
			k, err := findKernel(tree, tc.version)
			if err != nil {
				if !errors.Is(err, ErrTree) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want ErrTree with %q", err, tc.want)
				}
				return
			}
			if k.Version != tc.want {
				t.Fatalf("version %s, want %s", k.Version, tc.want)
			}
			for _, p := range []string{k.Image, k.Modules} {
				if !strings.HasPrefix(p, tree+"/") {
					t.Errorf("%s is outside the tree", p)
				}
			}
			if _, err := os.Stat(filepath.Join(k.Modules, "modules.dep")); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestFindBusybox(t *testing.T) {
	for _, tc := range []struct {
		name    string
		path    string
		machine elf.Machine
		interp  bool
		want    string // error text; "" = found
	}{
		{name: "static in /usr/bin", path: "usr/bin/busybox", machine: elf.EM_X86_64},
		{name: "static in /bin", path: "bin/busybox", machine: elf.EM_X86_64},
		{name: "dynamic", path: "bin/busybox", machine: elf.EM_X86_64, interp: true, want: "dynamically linked"},
		{name: "other architecture", path: "bin/busybox", machine: elf.EM_AARCH64, want: "not x86-64"},
		{name: "none", want: "no busybox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := t.TempDir()
			if tc.path != "" {
				writeELF(t, filepath.Join(tree, tc.path), tc.machine, tc.interp)
			}
			p, err := findBusybox(tree)
			if tc.want == "" {
				if err != nil || p != filepath.Join(tree, tc.path) {
					t.Fatalf("%s, %v", p, err)
				}
				return
			}
			if !errors.Is(err, ErrTree) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "busybox-static") {
				t.Fatalf("err %v, want ErrTree with %q and a hint", err, tc.want)
			}
		})
	}
	// A shell script is no ELF file.
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "bin/busybox"), []byte("#!/bin/sh\n"))
	if _, err := findBusybox(tree); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("script: %v", err)
	}
}

func TestFindSystemdBoot(t *testing.T) {
	tree := t.TempDir()
	if _, err := findSystemdBoot(tree); !errors.Is(err, ErrTree) {
		t.Errorf("empty tree: %v", err)
	}
	p := filepath.Join(tree, "usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	writeFile(t, p, []byte("MZ"))
	if got, err := findSystemdBoot(tree); err != nil || got != p {
		t.Errorf("%s, %v", got, err)
	}
}
