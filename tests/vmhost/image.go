package vmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/speedia/host/image/build"
)

// DefaultCache keeps the built VM image, the downloaded and rebuilt
// packages, across runs.
const DefaultCache = "/var/cache/speedia-test/vm"

// Binaries are the product's programs the image carries, built by `make build`.
var Binaries = []string{"speedia-updated", "speedia-update", "speedia-containers", "speedia-image"}

// Image is a built host image.
type Image struct {
	Path     string // the qcow2
	Manifest *build.Manifest
	Reused   bool // found in the cache: neither the spec nor the binaries changed
}

// Package returns the version of an installed package of the image.
func (im *Image) Package(name string) (string, bool) {
	for _, p := range im.Manifest.Packages {
		if p.Name == name {
			return p.Version, true
		}
	}
	return "", false
}

// Kernel is the release (uname -r) of the image's kernel package.
func (im *Image) Kernel() string {
	for _, p := range im.Manifest.Packages {
		if r, ok := strings.CutPrefix(p.Name, "linux-image-"); ok && strings.HasSuffix(r, "-amd64") && r != "amd64" {
			return r
		}
	}
	return ""
}

// BuildImage builds Spec(root, "qcow2") with root/bin/speedia-image, or
// reuses the image built last time when the spec and the binaries are the
// same. The cache keeps one image.
func BuildImage(ctx context.Context, root, cache string, log io.Writer) (*Image, error) {
	text, err := Spec(root, "qcow2")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "vmhost image v1\n%d\n%s", len(text), text)
	bin := filepath.Join(root, "bin")
	for _, b := range Binaries {
		data, err := os.ReadFile(filepath.Join(bin, b))
		if err != nil {
			return nil, fmt.Errorf("vmhost: %w (run make build)", err)
		}
		fmt.Fprintf(h, "%s %d\n", b, len(data))
		h.Write(data)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(cache, "image-"+key)
	if im, err := readImage(dir); err == nil {
		im.Reused = true
		return im, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(cache, "image-*"))
	for _, o := range old {
		os.RemoveAll(o) // one image is kept; a half-built one goes too
	}
	work := dir + ".tmp"
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	specPath := filepath.Join(work, "host.toml")
	if err := os.WriteFile(specPath, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "speedia-image"), "build", specPath, "--out", filepath.Join(work, "out"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		os.RemoveAll(work)
		return nil, fmt.Errorf("vmhost: speedia-image build: %w", err)
	}
	if err := os.Rename(work, dir); err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	return readImage(dir)
}

func readImage(dir string) (*Image, error) {
	m, err := build.ReadManifest(filepath.Join(dir, "out", "manifest.json"))
	if err != nil {
		return nil, err
	}
	for _, o := range m.Outputs {
		if o.Format == "qcow2" {
			p := filepath.Join(dir, "out", o.File)
			if _, err := os.Stat(p); err != nil {
				return nil, err
			}
			return &Image{Path: p, Manifest: m}, nil
		}
	}
	return nil, fmt.Errorf("vmhost: no qcow2 in %s", dir)
}
