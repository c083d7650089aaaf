package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot/native"
)

// ImageInfoPath is where an image records what it is.
const ImageInfoPath = "/usr/lib/speedia/image.json"

// ImageInfo is /usr/lib/speedia/image.json inside the image.
type ImageInfo struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	Base           string `json:"base"`
	SpecHash       string `json:"spec_hash"`
	SpeediaVersion string `json:"speedia_version"`
}

func imageInfo(m *Manifest) ImageInfo {
	return ImageInfo{Name: m.Name, Version: m.Version, Base: m.Base, SpecHash: m.SpecHash, SpeediaVersion: m.SpeediaVersion}
}

// kiwiLeftovers are files `kiwi-ng system prepare` leaves for its own later
// steps; the image does not need them.
var kiwiLeftovers = []string{"image", ".kconfig", ".profile", treeDone}

const networkConfig = `# Written by speedia-image: DHCP on every wired interface.
[Match]
Name=en* eth*

[Network]
DHCP=yes
`

// fillRoot copies the prepared tree into snapshot 1 and adds what belongs
// to this build only (so the tree cache survives a version change).
func fillRoot(ctx context.Context, r run.Runner, tree, root string, s *spec.Spec, m *Manifest, info ImageInfo) error {
	if _, err := r.Run(ctx, run.Cmd{Name: "cp", Args: []string{"-a", "--reflink=auto", tree + "/.", root + "/"}}); err != nil {
		return fmt.Errorf("copy root tree: %w", err)
	}
	for _, p := range kiwiLeftovers {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			return err
		}
	}
	infoJSON, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	files := map[string]string{
		"etc/fstab":                            fstab(m.Layout),
		"etc/kernel/cmdline":                   strings.Join(KernelArgs(s.KernelArgs), " ") + "\n",
		"etc/systemd/network/20-wired.network": networkConfig,
		strings.TrimPrefix(ImageInfoPath, "/"): string(infoJSON) + "\n",
	}
	if s.Update.TOML != "" {
		files["etc/speedia/update.toml"] = s.Update.TOML
	}
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "efi"), 0o700); err != nil {
		return err
	}
	// os-release names the image (hostnamectl, /etc/os-release readers).
	osr := filepath.Join(root, "usr/lib/os-release")
	old, err := os.ReadFile(osr)
	if err != nil {
		return err
	}
	add := fmt.Sprintf("IMAGE_ID=%s\nIMAGE_VERSION=%s\n", m.Name, m.Version)
	return os.WriteFile(osr, append(old, add...), 0o644)
}

// fstab mounts the shared subvolumes the engine's layout makes (native.
// SharedSubvolumes) and the ESP. / is the snapshot the boot entry names
// (rootflags=subvol=...): read-only as a subvolume, mounted rw so that its
// nested /etc subvolume stays writable.
func fstab(l Layout) string {
	var b strings.Builder
	b.WriteString("# Written by speedia-image: / is the snapshot the boot entry names, read-only as a subvolume.\n")
	fmt.Fprintf(&b, "UUID=%s / btrfs defaults 0 0\n", l.RootUUID)
	for _, sub := range append([]string{".snapshots"}, native.SharedSubvolumes...) {
		fmt.Fprintf(&b, "UUID=%s /%s btrfs subvol=@/%s 0 0\n", l.RootUUID, sub, sub)
	}
	fmt.Fprintf(&b, "PARTUUID=%s /efi vfat umask=0077,noatime 0 2\n", l.ESPPartUUID)
	// The root is read-only and Debian does not mount /tmp itself (MicroOS
	// does): without this /tmp is not writable at all. systemd's tmp.mount
	// options.
	b.WriteString("tmpfs /tmp tmpfs mode=1777,strictatime,nosuid,nodev,size=50%,nr_inodes=1m 0 0\n")
	return b.String()
}

// PanicReboot is added to the kernel command line unless the spec sets
// panic= itself: a boot that fails in the initrd (root cannot be mounted)
// or a kernel panic then reboots on its own, so boot counting can fall back
// to the last good snapshot with nobody at the console.
const PanicReboot = "panic=10"

// KernelArgs is the installed system's kernel command line: the spec's
// arguments plus PanicReboot.
func KernelArgs(spec []string) []string {
	for _, a := range spec {
		if strings.HasPrefix(a, "panic=") {
			return spec
		}
	}
	return append(append([]string(nil), spec...), PanicReboot)
}
