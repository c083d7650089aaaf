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
	// Kept is the stopped old container; empty when only its definition
	// is kept (Podman would start it at boot).
	Kept  string      `json:"kept,omitempty"`
	Data  []SavedData `json:"data,omitempty"`
	Notes []string    `json:"notes,omitempty"`
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
// minutes: the new container must come up healthy.
func (c *Client) ContainerUpgrade(ctx context.Context, name, image string) (ContainerUpgrade, error) {
	var u ContainerUpgrade
	err := c.callJSON(ctx, "ContainerUpgrade", &u, name, image)
	return u, err
}

// ContainerRollback undoes the kept upgrade of container name.
func (c *Client) ContainerRollback(ctx context.Context, name string) (ContainerUpgrade, error) {
	var u ContainerUpgrade
	err := c.callJSON(ctx, "ContainerRollback", &u, name)
	return u, err
}

// Containers returns the daemon's picture of the containers.
func (c *Client) Containers(ctx context.Context) (Containers, error) {
	var r Containers
	err := c.callJSON(ctx, "Containers", &r)
	return r, err
}
