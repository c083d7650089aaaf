package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/updater/atomicfile"
	"github.com/speedia/host/updater/snapshot/native"
)

// Manifest describes one build; it lies beside the images as manifest.json.
type Manifest struct {
	Name           string    `json:"name"`
	Version        string    `json:"version"`
	Base           string    `json:"base"`
	SpecHash       string    `json:"spec_hash"`
	Date           string    `json:"date"` // SOURCE_DATE_EPOCH, RFC 3339
	SpeediaVersion string    `json:"speedia_version"`
	TreeKey        string    `json:"tree_key"`
	KernelArgs     []string  `json:"kernel_args"`
	Layout         Layout    `json:"layout"`
	Packages       []Package `json:"packages"`
	Outputs        []Output  `json:"outputs"`
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Output is one image file.
type Output struct {
	File   string `json:"file"` // base name, beside manifest.json
	Format string `json:"format"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (m *Manifest) addOutput(p string, f spec.Format) error {
	sum, size, err := FileSHA256(p)
	if err != nil {
		return err
	}
	m.Outputs = append(m.Outputs, Output{File: filepath.Base(p), Format: string(f), Size: size, SHA256: sum})
	return nil
}

func (m *Manifest) write(p string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(data, '\n'), 0o644)
}

// ReadManifest reads a manifest.json.
func ReadManifest(p string) (*Manifest, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &m, nil
}

// FileSHA256 hashes a file.
func FileSHA256(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 4<<20))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// dpkgPackages lists the installed packages of a Debian root tree (KIWI's,
// before the layout moves dpkg's database into the snapshot).
func dpkgPackages(tree string) ([]Package, error) {
	pkgs, err := native.DpkgStatus(filepath.Join(tree, "var/lib/dpkg/status"))
	if err != nil {
		return nil, fmt.Errorf("package list: %w", err)
	}
	out := make([]Package, 0, len(pkgs))
	for name, version := range pkgs {
		out = append(out, Package{Name: name, Version: version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
