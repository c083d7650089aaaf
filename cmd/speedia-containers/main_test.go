package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/speedia/host/podman"
)

func TestUsageErrors(t *testing.T) {
	m := &podman.Manager{Socket: filepath.Join(t.TempDir(), "none.sock")}
	for _, args := range [][]string{nil, {"dance"}, {"upgrade", "db"}, {"rollback"}} {
		r := do(context.Background(), m, args, strings.NewReader(""), opts{})
		if r.Kind != "usage" {
			t.Errorf("%q: reply %+v, want a usage error", args, r)
		}
	}
	r := do(context.Background(), m, []string{"stop"}, strings.NewReader("{"), opts{})
	if r.Kind != "usage" || !strings.Contains(r.Error, "inventory on stdin") {
		t.Errorf("bad stdin: %+v", r)
	}
}

func TestPodmanDownNamesTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	m := &podman.Manager{Socket: sock}
	r := do(context.Background(), m, []string{"upgrade", "db", "img"}, strings.NewReader(""), opts{})
	if r.Error == "" || !strings.Contains(r.Error, sock) || r.Kind != "" {
		t.Errorf("reply %+v; want an error naming %s", r, sock)
	}
}
