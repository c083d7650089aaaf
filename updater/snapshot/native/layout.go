package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot"
)

// SharedSubvolumes are kept out of the root snapshots, shared by all of them,
// and never rolled back: /var holds containers, databases, logs.
var SharedSubvolumes = []string{"var", "root", "home", "srv"}

// snapperConfig makes `snapper list` show the snapshots; creating and
// deleting them stays with the engine (number cleanup spares "important").
const snapperConfig = `# Speedia host: the engine manages root snapshots; snapper lists them.
SUBVOLUME="/"
FSTYPE="btrfs"
QGROUP=""
SPACE_LIMIT="0.5"
FREE_LIMIT="0.2"
ALLOW_USERS=""
ALLOW_GROUPS=""
SYNC_ACL="no"
BACKGROUND_COMPARISON="yes"
NUMBER_CLEANUP="yes"
NUMBER_MIN_AGE="1800"
NUMBER_LIMIT="10"
NUMBER_LIMIT_IMPORTANT="10"
TIMELINE_CREATE="no"
TIMELINE_CLEANUP="no"
EMPTY_PRE_POST_CLEANUP="yes"
`

// Layout creates the MicroOS-style layout on the top level (subvolid 5) of a
// freshly made btrfs at top, calls fill to put a root tree into the first
// snapshot, then converts that tree: /etc becomes a writable nested
// subvolume, dpkg's database moves into the snapshot, /var and the other
// shared directories move into their subvolumes. Snapshot 1 ends read-only,
// marked good, and is the default subvolume. Used by the test host and the
// image builder.
func Layout(ctx context.Context, r run.Runner, top string, fill func(root string) error) error {
	b := btrfs{r}
	at := filepath.Join(top, "@")
	snaps := filepath.Join(at, ".snapshots")
	for _, p := range []string{at, snaps} {
		if err := b.create(ctx, p); err != nil {
			return fmt.Errorf("layout: %w", err)
		}
	}
	for _, sub := range SharedSubvolumes {
		if err := b.create(ctx, filepath.Join(at, sub)); err != nil {
			return fmt.Errorf("layout: %w", err)
		}
	}
	dir := filepath.Join(snaps, "1")
	root := filepath.Join(dir, "snapshot")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := b.create(ctx, root); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := fill(root); err != nil {
		return fmt.Errorf("layout: fill root: %w", err)
	}
	if err := convertRoot(ctx, b, root, at); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	in := &info{Type: "single", Num: 1, Date: time.Now().UTC().Format(snapperDate), Description: "first root filesystem"}
	in.set("important", "yes")
	in.set("speedia.state", string(snapshot.StateReady))
	in.set("speedia.good", "yes")
	if err := writeInfo(filepath.Join(dir, "info.xml"), in); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := writeMeta(filepath.Join(dir, "changes.json"), &meta{Kernels: kernelVersions(root)}); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := b.setReadOnly(ctx, root, true); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if err := b.setDefault(ctx, root); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	return nil
}

func convertRoot(ctx context.Context, b btrfs, root, at string) error {
	// /etc: a nested subvolume, writable inside the read-only root.
	etc, tmp := filepath.Join(root, "etc"), filepath.Join(root, "etc.layout")
	if err := os.Rename(etc, tmp); err != nil {
		return err
	}
	if err := b.create(ctx, etc); err != nil {
		return err
	}
	if _, err := b.r.Run(ctx, run.Cmd{Name: "cp", Args: []string{"-a", "--reflink=auto", tmp + "/.", etc + "/"}}); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(etc, "snapper/configs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "snapper/configs/root"), []byte(snapperConfig), 0o640); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(etc, "default"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "default/snapper"), []byte("SNAPPER_CONFIGS=\"root\"\n"), 0o644); err != nil {
		return err
	}
	// dpkg's database belongs to the snapshot whose files it describes.
	sysimage := filepath.Join(root, "usr/lib/sysimage")
	if err := os.MkdirAll(sysimage, 0o755); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(root, "var/lib/dpkg"), filepath.Join(sysimage, "dpkg")); err != nil {
		return err
	}
	if err := os.Symlink("/usr/lib/sysimage/dpkg", filepath.Join(root, "var/lib/dpkg")); err != nil {
		return err
	}
	// Shared directories: move the content into their subvolumes, leave empty
	// mount points behind.
	for _, sub := range SharedSubvolumes {
		src := filepath.Join(root, sub)
		if _, err := os.Stat(src); err == nil {
			if _, err := b.r.Run(ctx, run.Cmd{Name: "cp", Args: []string{"-a", "--reflink=auto", src + "/.", filepath.Join(at, sub) + "/"}}); err != nil {
				return err
			}
			if err := os.RemoveAll(src); err != nil {
				return err
			}
		}
		mode := os.FileMode(0o755)
		if sub == "root" {
			mode = 0o700
		}
		if err := os.Mkdir(src, mode); err != nil {
			return err
		}
	}
	return os.Mkdir(filepath.Join(root, ".snapshots"), 0o750)
}

// SnapshotPath is where snapshot n's root lives below a top-level mount.
func SnapshotPath(top string, n int) string {
	return filepath.Join(top, "@", ".snapshots", strconv.Itoa(n), "snapshot")
}
