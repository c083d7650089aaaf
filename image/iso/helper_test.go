package iso

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

var date = time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)

// writeELF writes a minimal x86-64 executable, with a program interpreter
// (dynamically linked) if interp is set.
func writeELF(t *testing.T, p string, machine elf.Machine, interp bool) {
	t.Helper()
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: 0x400000, Filesz: 0x100, Memsz: 0x100, Align: 0x1000}}
	if interp {
		progs = append([]elf.Prog64{{Type: uint32(elf.PT_INTERP), Off: 0x100, Filesz: 28, Memsz: 28, Align: 1}}, progs...)
	}
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: 1, Entry: 0x400000,
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs)), Shentsize: 64,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, progs)
	for b.Len() < 0x100 {
		b.WriteByte(0)
	}
	b.WriteString("/lib64/ld-linux-x86-64.so.2\x00")
	writeFile(t, p, b.Bytes())
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compress encodes data as a module file with the suffix of p would be.
func compress(t *testing.T, p string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch filepath.Ext(p) {
	case ".ko":
		return data
	case ".xz":
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case ".gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	case ".zst":
		w, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	default:
		t.Fatalf("no compression for %s", p)
	}
	return b.Bytes()
}

// modContent is a fake module's (decompressed) bytes.
func modContent(rel string) []byte { return []byte("module " + rel + "\n") }

// testModules writes a module dir: the modules of dep (path -> deps) with
// fake contents, compressed as their names say, and modules.builtin.
func testModules(t *testing.T, dir string, dep map[string][]string, builtin []string) {
	t.Helper()
	var b bytes.Buffer
	for p, deps := range dep {
		b.WriteString(p + ":")
		for _, d := range deps {
			b.WriteString(" " + d)
		}
		b.WriteString("\n")
		writeFile(t, filepath.Join(dir, p), compress(t, p, modContent(p)))
	}
	writeFile(t, filepath.Join(dir, "modules.dep"), b.Bytes())
	b.Reset()
	for _, p := range builtin {
		b.WriteString(p + "\n")
	}
	writeFile(t, filepath.Join(dir, "modules.builtin"), b.Bytes())
}

// fakeDep is a small module tree in the shapes real ones have: compressed
// and plain files, '-' in names, shared dependencies.
var fakeDep = map[string][]string{
	"kernel/fs/isofs/isofs.ko":                  {"kernel/drivers/cdrom/cdrom.ko.xz"},
	"kernel/drivers/cdrom/cdrom.ko.xz":          nil,
	"kernel/drivers/scsi/sr_mod.ko.zst":         {"kernel/drivers/cdrom/cdrom.ko.xz", "kernel/drivers/scsi/scsi_mod.ko.gz", "kernel/drivers/scsi/scsi_common.ko"},
	"kernel/drivers/scsi/scsi_mod.ko.gz":        {"kernel/drivers/scsi/scsi_common.ko"},
	"kernel/drivers/scsi/scsi_common.ko":        nil,
	"kernel/drivers/usb/storage/usb-storage.ko": {"kernel/drivers/usb/core/usbcore.ko", "kernel/drivers/scsi/scsi_mod.ko.gz", "kernel/drivers/scsi/scsi_common.ko"},
	"kernel/drivers/usb/core/usbcore.ko":        nil,
	"kernel/net/unrelated.ko":                   nil,
}

var fakeBuiltin = []string{"kernel/drivers/ata/ahci.ko"}

// testTree writes an image tree the way Debian lays it out (/lib a link
// to usr/lib) with fakes of what the ISO takes from it.
func testTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "boot/vmlinuz-6.1.0-test"), bytes.Repeat([]byte("kernel\n"), 100000))
	testModules(t, filepath.Join(tree, "usr/lib/modules/6.1.0-test"), fakeDep, fakeBuiltin)
	writeELF(t, filepath.Join(tree, "usr/bin/busybox"), elf.EM_X86_64, false)
	writeFile(t, filepath.Join(tree, "usr/lib/systemd/boot/efi/systemd-bootx64.efi"), []byte("MZ systemd-boot"))
	if err := os.Symlink("usr/lib", filepath.Join(tree, "lib")); err != nil {
		t.Fatal(err)
	}
	return tree
}
