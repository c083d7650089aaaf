// Package podman is Speedia host's client of the Podman API service. It is
// the only package that imports Podman's bindings; the rest of the program
// talks to containers through it.
package podman

import (
	"context"
	"fmt"

	"github.com/containers/podman/v5/pkg/bindings"
)

// DefaultSocket is rootful Podman's API socket.
const DefaultSocket = "/run/podman/podman.sock"

// Connect returns a context bound to the Podman service at socket, after
// checking that the service answers.
func Connect(ctx context.Context, socket string) (context.Context, error) {
	conn, err := bindings.NewConnection(ctx, "unix://"+socket)
	if err != nil {
		return nil, fmt.Errorf("connect to podman at %s (is podman.socket or `podman system service` running?): %w", socket, err)
	}
	return conn, nil
}
