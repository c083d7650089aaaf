package iso

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// ErrTree means the image tree lacks something the ISO is made of.
var ErrTree = errors.New("image tree")

// in resolves rel inside tree, following symlinks as the booted image would
// (an absolute link points into the tree, not at this machine).
func in(tree, rel string) (string, error) {
	p, err := securejoin.SecureJoin(tree, rel)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrTree, rel, err)
	}
	return p, nil
}

// regular is in() for a file that must be a regular file.
func regular(tree, rel string) (string, bool) {
	p, err := in(tree, rel)
	if err != nil {
		return "", false
	}
	fi, err := os.Stat(p)
	return p, err == nil && fi.Mode().IsRegular()
}

// kernel is the kernel the installer boots, with its modules.
type kernel struct {
	Version string
	Image   string // vmlinuz
	Modules string // the modules dir, with modules.dep
}

// findKernel looks for kernels in the tree: modules in /usr/lib/modules/VER
// (Debian's /lib is a link to usr/lib) and the image at /boot/vmlinuz-VER
// or /usr/lib/modules/VER/vmlinuz (openSUSE, Fedora). With more than one
// kernel, version must say which.
func findKernel(tree, version string) (kernel, error) {
	found := map[string]kernel{}
	for _, base := range []string{"usr/lib/modules", "lib/modules"} {
		dir, err := in(tree, base)
		if err != nil {
			return kernel{}, err
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			v := e.Name()
			if _, ok := found[v]; ok || !e.IsDir() {
				continue
			}
			k := kernel{Version: v, Modules: filepath.Join(dir, v)}
			for _, img := range []string{"boot/vmlinuz-" + v, base + "/" + v + "/vmlinuz"} {
				if p, ok := regular(tree, img); ok {
					k.Image = p
					break
				}
			}
			if k.Image != "" {
				found[v] = k
			}
		}
	}
	if version != "" {
		k, ok := found[version]
		if !ok {
			return kernel{}, fmt.Errorf("%w: no kernel %s (vmlinuz and modules) in %s", ErrTree, version, tree)
		}
		return k, nil
	}
	var vs []string
	for v := range found {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	switch len(vs) {
	case 0:
		return kernel{}, fmt.Errorf("%w: no kernel in %s (looked for usr/lib/modules/VER with boot/vmlinuz-VER)", ErrTree, tree)
	case 1:
		return found[vs[0]], nil
	}
	return kernel{}, fmt.Errorf("%w: %d kernels in %s (%s): set the kernel version", ErrTree, len(vs), tree, strings.Join(vs, ", "))
}

// findBusybox returns the tree's BusyBox, which must be static: the
// initrd has no C library. Debian's busybox-static is one.
func findBusybox(tree string) (string, error) {
	for _, rel := range []string{"usr/bin/busybox", "bin/busybox", "usr/sbin/busybox", "sbin/busybox"} {
		p, ok := regular(tree, rel)
		if !ok {
			continue
		}
		if err := checkStatic(p); err != nil {
			return "", fmt.Errorf("%w: %s: %w (install busybox-static in the image)", ErrTree, rel, err)
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: no busybox in %s (install busybox-static in the image)", ErrTree, tree)
}

// checkStatic accepts an x86-64 ELF executable without a program
// interpreter, i.e. one that runs without ld.so and libc.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("not an ELF executable: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("built for %v, not x86-64", f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("ELF type %v is not an executable", f.Type)
	}
	for _, ph := range f.Progs {
		if ph.Type == elf.PT_INTERP {
			return errors.New("dynamically linked")
		}
	}
	return nil
}

// findSystemdBoot returns systemd-boot's EFI binary for x86-64.
func findSystemdBoot(tree string) (string, error) {
	for _, rel := range []string{"usr/lib/systemd/boot/efi/systemd-bootx64.efi", "lib/systemd/boot/efi/systemd-bootx64.efi"} {
		if p, ok := regular(tree, rel); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no usr/lib/systemd/boot/efi/systemd-bootx64.efi in %s (Debian: systemd-boot-efi)", ErrTree, tree)
}
