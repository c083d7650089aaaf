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
	l := m.Layout
	fstab := fmt.Sprintf(`# Written by speedia-image. / is the snapshot the boot entry names
# (rootflags=subvol=...): read-only as a subvolume, mounted rw so that its
# nested /etc subvolume stays writable.
UUID=%[1]s / btrfs defaults 0 0
UUID=%[1]s /.snapshots btrfs subvol=@/.snapshots 0 0
UUID=%[1]s /var btrfs subvol=@/var 0 0
UUID=%[1]s /root btrfs subvol=@/root 0 0
UUID=%[1]s /home btrfs subvol=@/home 0 0
UUID=%[1]s /srv btrfs subvol=@/srv 0 0
PARTUUID=%[2]s /efi vfat umask=0077,noatime 0 2
`, l.RootUUID, l.ESPPartUUID)
	infoJSON, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	files := []struct {
		path string
		data string
		mode os.FileMode
	}{
		{"etc/fstab", fstab, 0o644},
		{"etc/kernel/cmdline", strings.Join(s.KernelArgs, " ") + "\n", 0o644},
		{"etc/systemd/network/20-wired.network", networkConfig, 0o644},
		{strings.TrimPrefix(ImageInfoPath, "/"), string(infoJSON) + "\n", 0o644},
	}
	if s.Update.TOML != "" {
		files = append(files, struct {
			path string
			data string
			mode os.FileMode
		}{"etc/speedia/update.toml", s.Update.TOML, 0o644})
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
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
