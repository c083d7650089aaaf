package iso

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// DefaultModules are the drivers the installer loads when Options.Modules is
// nil: what it takes to see the install medium (CD over SATA, IDE, SCSI or
// USB; virtual media of server BMCs are USB CD drives) and the usual target
// disks (SATA, NVMe, virtio, common server RAID/HBA and hypervisor disks),
// plus a USB keyboard for the rescue shell. Names missing from the kernel
// are skipped; built-in ones need nothing.
var DefaultModules = []string{
	"isofs", "cdrom", "sr_mod", "sd_mod",
	"ahci", "libahci", "ata_piix", "ata_generic",
	"virtio_pci", "virtio_blk", "virtio_scsi",
	"nvme",
	"xhci_pci", "ehci_pci", "ohci_pci", "uhci_hcd", "usb_storage", "uas",
	"megaraid_sas", "mpt3sas", "smartpqi", "hpsa", "vmw_pvscsi", "hv_storvsc", "xen_blkfront",
	"usbhid", "hid_generic",
}

// requiredModules must be loadable (module or built-in): without them the
// installer cannot read its own medium.
var requiredModules = []string{"isofs"}

// ErrModules means the kernel's module tree cannot give the installer its
// drivers.
var ErrModules = errors.New("kernel modules")

// module is one kernel module file to load, relative to the module dir.
type module struct {
	Name string   // normalized: '-' as '_', no suffix
	Path string   // e.g. kernel/fs/isofs/isofs.ko
	Deps []string // names of the modules it needs, as modules.dep lists them
}

// modName is the kernel's name for a module file or a name given by a user.
func modName(p string) string {
	b := path.Base(p)
	for _, s := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(b, s) {
			b = strings.TrimSuffix(b, s)
			break
		}
	}
	return strings.ReplaceAll(b, "-", "_")
}

// modulePlan is the modules to insert, dependencies first, and the wanted
// names that needed nothing or were not there.
type modulePlan struct {
	Load    []module
	Builtin []string
	Missing []string
}

// planModules reads modules.dep and modules.builtin in dir and returns the
// closure of want under the dependencies, each module after all it depends
// on (the order insmod needs, since it resolves nothing itself).
func planModules(dir string, want []string) (modulePlan, error) {
	var plan modulePlan
	deps, err := readDep(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return plan, err
	}
	builtin := map[string]bool{}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if l := strings.TrimSpace(s.Text()); l != "" {
				builtin[modName(l)] = true
			}
		}
		f.Close()
		if err := s.Err(); err != nil {
			return plan, fmt.Errorf("%w: modules.builtin: %w", ErrModules, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return plan, fmt.Errorf("%w: %w", ErrModules, err)
	}
	byName := map[string]string{} // name -> path
	for p := range deps {
		byName[modName(p)] = p
	}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(p string, chain []string) error
	visit = func(p string, chain []string) error {
		n := modName(p)
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("%w: dependency cycle %s -> %s", ErrModules, strings.Join(chain, " -> "), n)
		}
		state[n] = 1
		var names []string
		for _, d := range deps[p] {
			names = append(names, modName(d))
			if _, ok := deps[d]; !ok {
				return fmt.Errorf("%w: %s needs %s, which modules.dep does not list", ErrModules, p, d)
			}
			if err := visit(d, append(chain, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		plan.Load = append(plan.Load, module{Name: n, Path: p, Deps: names})
		return nil
	}
	seen := map[string]bool{}
	for _, w := range want {
		n := modName(w)
		if seen[n] {
			continue
		}
		seen[n] = true
		switch p, ok := byName[n]; {
		case ok:
			if err := visit(p, nil); err != nil {
				return plan, err
			}
		case builtin[n]:
			plan.Builtin = append(plan.Builtin, n)
		default:
			plan.Missing = append(plan.Missing, n)
		}
	}
	for _, r := range requiredModules {
		if _, ok := byName[r]; !ok && !builtin[r] {
			return plan, fmt.Errorf("%w: %s is neither a module nor built in; the installer could not read its medium", ErrModules, r)
		}
	}
	return plan, nil
}

// readDep parses modules.dep: "path: dep dep ..." per line, paths relative
// to the module dir.
func readDep(p string) (map[string][]string, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s missing (run depmod for this kernel in the image)", ErrModules, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModules, err)
	}
	defer f.Close()
	deps := map[string][]string{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; s.Scan(); line++ {
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(l, ":")
		if !ok || mod == "" {
			return nil, fmt.Errorf("%w: %s:%d: no \"module:\"", ErrModules, p, line)
		}
		deps[mod] = strings.Fields(rest)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModules, p, err)
	}
	return deps, nil
}

// readModule returns a module file's ELF bytes, decompressed: BusyBox's
// insmod hands the file to the kernel as it is, and not every kernel
// decompresses modules itself.
func readModule(p string) ([]byte, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(p, ".ko"):
		return raw, nil
	case strings.HasSuffix(p, ".ko.xz"):
		r, err = xz.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(p, ".ko.gz"):
		r, err = gzip.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(p, ".ko.zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(raw))
		if err == nil {
			defer d.Close()
			r = d
		}
	default:
		return nil, fmt.Errorf("%w: %s: unknown module file suffix", ErrModules, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModules, p, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModules, p, err)
	}
	return out, nil
}
