package podman

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestConnectNamesTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := Connect(context.Background(), sock)
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("Connect to a missing socket: %v; want an error naming %s", err, sock)
	}
}
