package client

import (
	"context"
	"time"
)

// ContainerUpgrade is a kept hard upgrade of a container.
type ContainerUpgrade struct {
	Name      string    `json:"name"`
	At        time.Time `json:"at"`
	KeepUntil time.Time `json:"keep_until"`
	OldImage  string    `json:"old_image"`
	NewImage  string    `json:"new_image"`
	OldID     string    `json:"old_id"`
	NewID     string    `json:"new_id"`
	// Kept is the stopped old container; empty when it is gone and only
	// its definition is kept.
	Kept string `json:"kept,omitempty"`
	// KeptRestart is the old container's restart policy, disabled while
	// it is kept; a rollback gives it back.
	KeptRestart *KeptRestart `json:"kept_restart,omitempty"`
	// WritableLayer is what the old container had written into its own
	// layer, outside volumes: not carried over, kept in the old container.
	WritableLayer *WritableLayer `json:"writable_layer,omitempty"`
	Data          []SavedData    `json:"data,omitempty"`
	Notes         []string       `json:"notes,omitempty"`
}

// KeptRestart is a kept container's restart policy from before the upgrade.
type KeptRestart struct {
	Policy  string `json:"policy"`
	Retries uint   `json:"retries,omitempty"`
}

// WritableLayer counts the files a container changed in its own layer,
// outside its volumes and bind mounts.
type WritableLayer struct {
	// User counts the files that are not package-manager or runtime churn.
	User int `json:"user"`
	// Paths lists the first of them, as "A /path" (added) or "C /path".
	Paths []string `json:"paths,omitempty"`
	// Churn counts package-manager and runtime files (the new image
	// brings its own).
	Churn int `json:"churn"`
}

// SavedData is one volume or bind mount saved before an upgrade.
type SavedData struct {
	Kind   string `json:"kind"` // volume or bind
	Name   string `json:"name"`
	Path   string `json:"path"`
	Method string `json:"method"` // btrfs-snapshot, reflink or tar
}

// ContainerResult is what happened to one container when they were
// brought back.
type ContainerResult struct {
	Name     string        `json:"name"`
	Action   string        `json:"action"`
	OK       bool          `json:"ok"`
	Critical bool          `json:"critical,omitempty"`
	Error    string        `json:"error,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

// ContainerRun is one stop or bring-back of the containers.
type ContainerRun struct {
	What    string            `json:"what"` // "stop" or "start"
	At      time.Time         `json:"at"`
	Results []ContainerResult `json:"results"`
	Notes   []string          `json:"notes,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// Containers is the daemon's picture of the containers.
type Containers struct {
	// Stopped lists the containers stopped for an update reboot that are
	// not back yet.
	Stopped  []string           `json:"stopped,omitempty"`
	Last     *ContainerRun      `json:"last,omitempty"`
	Upgrades []ContainerUpgrade `json:"upgrades"`
}

// ContainerUpgrade hard-upgrades container name to image. It can take
// minutes: the new container must come up healthy. Without force it
// refuses a container with files of its own in its writable layer.
func (c *Client) ContainerUpgrade(ctx context.Context, name, image string, force bool) (ContainerUpgrade, error) {
	var u ContainerUpgrade
	err := c.callJSON(ctx, "ContainerUpgrade", &u, name, image, force)
	return u, err
}

// ContainerRollback is what a rollback undid: a hard upgrade (the
// upgrade's fields) or a patch (Patch).
type ContainerRollback struct {
	*ContainerUpgrade
	Patch *ContainerPatch `json:"patch,omitempty"`
}

// ContainerRollback undoes the last patch or kept upgrade of container
// name, whichever is newer.
func (c *Client) ContainerRollback(ctx context.Context, name string) (ContainerRollback, error) {
	var u ContainerRollback
	err := c.callJSON(ctx, "ContainerRollback", &u, name)
	return u, err
}

// ContainerPrune discards the kept upgrade of container name: its old
// container, data snapshot and image tag.
func (c *Client) ContainerPrune(ctx context.Context, name string) (ContainerUpgrade, error) {
	var u ContainerUpgrade
	err := c.callJSON(ctx, "ContainerPrune", &u, name)
	return u, err
}

// Containers returns the daemon's picture of the containers.
func (c *Client) Containers(ctx context.Context) (Containers, error) {
	var r Containers
	err := c.callJSON(ctx, "Containers", &r)
	return r, err
}

// ContainerPackage is one pending package update inside a container.
type ContainerPackage struct {
	Name     string `json:"name"`
	Old      string `json:"old,omitempty"`
	New      string `json:"new"`
	Security bool   `json:"security,omitempty"`
	Source   string `json:"source,omitempty"`
}

// ContainerOS is what a container's os-release says.
type ContainerOS struct {
	ID        string   `json:"id"`
	IDLike    []string `json:"id_like,omitempty"`
	VersionID string   `json:"version_id,omitempty"`
	Codename  string   `json:"codename,omitempty"`
	Pretty    string   `json:"pretty,omitempty"`
}

// ContainerPatchStatus is one container's patch picture.
type ContainerPatchStatus struct {
	Name      string             `json:"name"`
	ID        string             `json:"id"`
	Image     string             `json:"image"`
	Running   bool               `json:"running"`
	OS        *ContainerOS       `json:"os,omitempty"`
	Manager   string             `json:"manager,omitempty"` // apt, apk, dnf, yum, zypper; empty: none
	Patchable bool               `json:"patchable"`
	Reason    string             `json:"reason,omitempty"`
	Policy    string             `json:"policy"` // auto, security, notify, off
	Pending   []ContainerPackage `json:"pending"`
	Security  int                `json:"security"`
	Checked   bool               `json:"checked"` // pending was asked of the package manager now
	Error     string             `json:"error,omitempty"`
	Last      *ContainerPatchEnd `json:"last,omitempty"`
	Bad       []string           `json:"bad,omitempty"`
}

// ContainerPatchEnd is how a container's last patch ended.
type ContainerPatchEnd struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step"` // done, restored, or where it stopped
	Updates int       `json:"updates"`
	Image   string    `json:"rollback_point,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// ContainerPatch is one patch of a container (or what a dry run would do).
type ContainerPatch struct {
	Name    string             `json:"name"`
	At      time.Time          `json:"at"`
	Step    string             `json:"step"`
	SetID   string             `json:"set_id"`
	Updates []ContainerPackage `json:"updates"`
	Image   string             `json:"image,omitempty"` // the rollback point
	Failed  string             `json:"failed,omitempty"`
	Error   string             `json:"error,omitempty"`
	DryRun  bool               `json:"dry_run,omitempty"`
	// Aside holds the data written after the rollback point, kept when
	// the point was put back.
	Aside *struct {
		Dir string `json:"dir"`
	} `json:"aside,omitempty"`
}

// ContainerCheck returns the patch picture of the named containers (none:
// all); refresh asks their package managers for pending updates.
func (c *Client) ContainerCheck(ctx context.Context, names []string, refresh bool) ([]ContainerPatchStatus, error) {
	var r []ContainerPatchStatus
	if names == nil {
		names = []string{}
	}
	err := c.callJSON(ctx, "ContainerCheck", &r, names, refresh)
	return r, err
}

// ContainerPatch upgrades the packages inside container name with a
// rollback point first; dryRun only lists them.
func (c *Client) ContainerPatch(ctx context.Context, name string, dryRun, securityOnly bool) (ContainerPatch, error) {
	var p ContainerPatch
	err := c.callJSON(ctx, "ContainerPatch", &p, name, dryRun, securityOnly)
	return p, err
}
