package build

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/updater/atomicfile"
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

// dpkgPackages lists the installed packages of a Debian root tree.
func dpkgPackages(tree string) ([]Package, error) {
	f, err := os.Open(filepath.Join(tree, "var/lib/dpkg/status"))
	if err != nil {
		return nil, fmt.Errorf("package list: %w", err)
	}
	defer f.Close()
	var out []Package
	var cur Package
	installed := false
	flush := func() {
		if cur.Name != "" && installed {
			out = append(out, cur)
		}
		cur, installed = Package{}, false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			cur.Name = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Version: "):
			cur.Version = strings.TrimPrefix(line, "Version: ")
		case strings.HasPrefix(line, "Status: "):
			installed = strings.HasSuffix(line, " installed")
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
