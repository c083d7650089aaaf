// Package patch knows the package managers found inside containers (apt,
// apk, dnf/yum, zypper): how to tell which one a container has, how to list
// its pending updates (with old and new versions and whether each is a
// security fix), and how to upgrade non-interactively. Each manager is a
// Driver in a file of its own; the commands run inside the container
// through an Exec, so tests replay real recorded outputs and the
// integration tier runs them with `podman exec`. It imports no Podman code.
package patch

import (
	"context"
	"errors"
	"time"
)

// Manager names a package manager.
type Manager string

const (
	None   Manager = ""       // distroless, busybox, scratch: not patchable
	Apt    Manager = "apt"    // Debian, Ubuntu (dpkg)
	Apk    Manager = "apk"    // Alpine
	Dnf    Manager = "dnf"    // Fedora, RHEL 8+, Rocky, Alma
	Yum    Manager = "yum"    // RHEL/CentOS 7
	Zypper Manager = "zypper" // openSUSE, SLE
)

// OS is what a container's /etc/os-release says.
type OS struct {
	ID        string   `json:"id"`                   // "debian", "alpine", ...
	IDLike    []string `json:"id_like,omitempty"`    // "rhel fedora"
	VersionID string   `json:"version_id,omitempty"` // "12", "3.20.3"
	Codename  string   `json:"codename,omitempty"`   // VERSION_CODENAME
	Pretty    string   `json:"pretty,omitempty"`     // PRETTY_NAME
}

// Update is one pending package update.
type Update struct {
	Name     string `json:"name"`
	Old      string `json:"old,omitempty"` // "" for a new package
	New      string `json:"new"`
	Security bool   `json:"security,omitempty"`
	// Source is where the new version comes from: the suite
	// ("bookworm-security"), the repository or the advisory ID.
	Source string `json:"source,omitempty"`
}

// Exec runs argv inside the container (as root, no TTY) with extra
// environment and returns what it printed and its exit code. err is for
// failures to run at all, not for a non-zero exit.
type Exec func(ctx context.Context, argv []string, env []string) (stdout, stderr []byte, exit int, err error)

// Files reads a file of the container's root filesystem without starting
// anything in it; a missing file is fs.ErrNotExist.
type Files func(path string) ([]byte, error)

// UpgradeOptions says how an upgrade runs.
type UpgradeOptions struct {
	// Only these packages (names from Pending); empty: everything pending.
	Packages []string
	// SecurityOnly limits the upgrade to security fixes where the manager
	// can tell them apart.
	SecurityOnly bool
	// LockTimeout is how long to wait for the package manager's lock held
	// by someone else inside the container, then fail with ErrLocked.
	LockTimeout time.Duration
}

// Driver is one package manager.
type Driver interface {
	Manager() Manager
	// Detect reports whether the container's files show this manager.
	Detect(files Files) bool
	// Pending refreshes the package lists and returns the updates that an
	// upgrade would install, without changing any package.
	Pending(ctx context.Context, run Exec) ([]Update, error)
	// Upgrade installs updates non-interactively, keeping the admin's
	// configuration files, and waits for a held lock up to LockTimeout.
	Upgrade(ctx context.Context, run Exec, opt UpgradeOptions) error
}

// Errors a driver returns (wrapped with what happened).
var (
	ErrLocked = errors.New("package database locked by another process in the container")
	ErrFailed = errors.New("package manager failed")
)
