//go:build integration

package kiwi

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every rendered description passes KIWI's own validation, offline.
func TestRenderedDescriptionsPassKIWI(t *testing.T) {
	if _, err := exec.LookPath(Command); err != nil {
		t.Skip("kiwi-ng not installed (make deps)")
	}
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "desc")
			if _, err := Render(load(t, name), dir, nil); err != nil {
				t.Fatal(err)
			}
			if err := Info(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("a broken description fails", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "desc")
		if _, err := Render(load(t, "debian-web"), dir, nil); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "config.xml")
		data, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(data), `filesystem="btrfs"`, `filesystem="nofs"`, 1)), 0o644)
		if err := Info(context.Background(), dir); err == nil {
			t.Fatal("kiwi-ng image info accepted filesystem=nofs")
		} else {
			t.Log(err)
		}
	})
}
