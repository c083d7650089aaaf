package podman

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/speedia/host/updater/errkind"
)

// LayerFiles is what a container changed in its own writable layer, outside
// its volumes and bind mounts: the files a hard upgrade does not carry over
// (the old container keeps them, stopped, until it is discarded).
type LayerFiles struct {
	// User counts added or changed files that are not package-manager or
	// runtime churn: a customer's files, most likely.
	User int `json:"user"`
	// Paths lists the first of them, as "A /path" (added) or "C /path"
	// (changed).
	Paths []string `json:"paths,omitempty"`
	// Churn counts changes under ChurnPrefixes: the new image brings its
	// own.
	Churn int `json:"churn"`
}

// maxLayerPaths caps LayerFiles.Paths: enough to see what kind of files
// they are, not a listing.
const maxLayerPaths = 10

// ChurnPrefixes are where package managers, the dynamic linker and the
// container runtime write on their own; changes there are not a user's
// files.
var ChurnPrefixes = []string{
	"/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/cache/debconf", "/var/log/apt",
	"/var/log/dpkg.log", "/var/log/alternatives.log", "/etc/alternatives",
	"/lib/apk", "/var/cache/apk", "/etc/apk",
	"/var/lib/rpm", "/var/lib/dnf", "/var/cache/dnf", "/var/cache/yum", "/var/log/dnf",
	"/var/lib/zypp", "/var/cache/zypp", "/var/log/zypp", "/var/log/zypper.log",
	"/etc/ld.so.cache", "/var/cache/ldconfig",
	"/tmp", "/var/tmp", "/run", "/var/run", "/proc", "/sys", "/dev",
	"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/.containerenv",
}

// runtimeMounts are the files Podman mounts into every container; their
// mount points change the directories that hold them.
var runtimeMounts = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv", "/dev/shm"}

func isChurn(p string) bool {
	for _, c := range ChurnPrefixes {
		if p == c || strings.HasPrefix(p, c+"/") {
			return true
		}
	}
	return false
}

// classifyLayer sorts podman diff's changes. Deletions lose nothing, paths
// under a mount are in a volume or bind mount (carried over), and a
// directory that is only "changed" because something below it changed is
// not a file of its own.
func classifyLayer(changes []change, mounts []string) LayerFiles {
	parent := map[string]bool{}
	for _, c := range changes {
		for d := path.Dir(c.Path); d != "/" && d != "."; d = path.Dir(d) {
			parent[d] = true
		}
	}
	under := func(p string) bool {
		for _, m := range mounts {
			if p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") || strings.HasPrefix(m, p+"/") {
				return true // the mount itself, below it, or a directory holding it
			}
		}
		return false
	}
	sorted := append([]change(nil), changes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var lf LayerFiles
	for _, c := range sorted {
		p := path.Clean("/" + c.Path)
		if c.Kind == changeDeleted || under(p) {
			continue
		}
		if isChurn(p) {
			lf.Churn++
			continue
		}
		if c.Kind == changeModified && parent[p] {
			continue
		}
		lf.User++
		if len(lf.Paths) < maxLayerPaths {
			mark := "C "
			if c.Kind == changeAdded {
				mark = "A "
			}
			lf.Paths = append(lf.Paths, mark+p)
		}
	}
	return lf
}

// layerFiles reads what container d wrote into its own layer.
func layerFiles(conn context.Context, d *define.InspectContainerData) (LayerFiles, error) {
	raw, err := containers.Diff(conn, d.ID, new(containers.DiffOptions).WithDiffType("container"))
	if err != nil {
		return LayerFiles{}, fmt.Errorf("podman diff %s: %w", d.Name, explain(err))
	}
	changes := make([]change, 0, len(raw))
	for _, c := range raw {
		changes = append(changes, change{Path: c.Path, Kind: changeKind(c.Kind)})
	}
	mounts := append([]string(nil), runtimeMounts...)
	for _, mt := range d.Mounts {
		mounts = append(mounts, path.Clean(mt.Destination))
	}
	return classifyLayer(changes, mounts), nil
}

// change is one line of podman diff. Its kinds are the archive
// package's: modified, added, deleted.
type change struct {
	Path string
	Kind changeKind
}

type changeKind int

const (
	changeModified changeKind = iota
	changeAdded
	changeDeleted
)

// layerRefusal explains why an upgrade without force stops.
func layerRefusal(name string, lf LayerFiles) error {
	more := ""
	if n := lf.User - len(lf.Paths); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Errorf("%w: %s has %d files in its own writable layer, outside its volumes (%s%s); "+
		"a hard upgrade does not carry them over yet: move them to a volume first, or upgrade with --force "+
		"(the old container keeps them, stopped, and a rollback gets them back)",
		errkind.Refused, name, lf.User, strings.Join(lf.Paths, ", "), more)
}
