package podmantest

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Test images that BuildImages makes.
const (
	ImageV1     = "localhost/speedia-test:v1"
	ImageV2     = "localhost/speedia-test:v2"
	ImageBroken = "localhost/speedia-test:broken"
)

// Port is where the v1 and v2 images serve /www (with /www/VERSION).
const Port = 8080

// BusyboxBin is the static busybox copied into the images.
var BusyboxBin = "/bin/busybox"

// image is one test image: its /VERSION, CMD, ENV and LABEL.
type image struct {
	ref, version string
	cmd          string // run by /bin/sh -c
}

// The servers trap SIGTERM because busybox as PID 1 would ignore it, and
// every stop would then wait for the 10 s timeout. The broken image shows
// whether a failed upgrade's data is restored: it marks and damages /data.
var images = []image{
	{ImageV1, "1", serve},
	{ImageV2, "2", serve},
	{ImageBroken, "broken", "mkdir -p /data; echo broken > /data/BROKEN; rm -f /data/keep; exit 1"},
}

var serve = fmt.Sprintf("trap 'exit 0' TERM; httpd -f -p %d -h /www & wait", Port)

// BuildImages makes ImageV1, ImageV2 and ImageBroken from the static busybox
// with `podman import`: a root of busybox and its applets in /bin, /VERSION
// and /www/VERSION ("1", "2" or "broken"), an empty /data, ENV
// SPEEDIA_IMAGE_VERSION and LABEL version set to the same version.
func BuildImages(ctx context.Context, s *Service) error {
	dir := filepath.Join(s.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	applets, err := exec.CommandContext(ctx, BusyboxBin, "--list").Output()
	if err != nil {
		return fmt.Errorf("podmantest: %s --list: %w", BusyboxBin, err)
	}
	for _, im := range images {
		tarball := filepath.Join(dir, im.version+".tar")
		if err := WriteRootfs(tarball, im.version, strings.Fields(string(applets))); err != nil {
			return err
		}
		cmd, _ := json.Marshal([]string{"/bin/sh", "-c", im.cmd})
		if _, err := s.Podman(ctx, "import",
			"--change", "CMD "+string(cmd),
			"--change", "ENV SPEEDIA_IMAGE_VERSION="+im.version,
			"--change", "LABEL version="+im.version,
			tarball, im.ref); err != nil {
			return err
		}
	}
	return nil
}

// WriteRootfs writes an image root as a tar file: busybox and its applets
// in /bin, /VERSION and /www/VERSION holding version, an empty /data.
func WriteRootfs(path, version string, applets []string) error {
	bb, err := os.ReadFile(BusyboxBin)
	if err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	defer f.Close()
	mtime := time.Unix(1700000000, 0)
	tw := tar.NewWriter(f)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	dir := func(name string, mode int64) error {
		return add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}, nil)
	}
	file := func(name string, mode int64, body []byte) error {
		return add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body)
	}
	steps := []func() error{
		func() error { return dir("bin", 0o755) },
		func() error { return file("bin/busybox", 0o755, bb) },
		func() error { return dir("data", 0o755) },
		func() error { return dir("etc", 0o755) },
		func() error { return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\n")) },
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\n")) },
		func() error { return dir("tmp", 0o1777) },
		func() error { return dir("www", 0o755) },
		func() error { return file("VERSION", 0o644, []byte(version)) },
		func() error { return file("www/VERSION", 0o644, []byte(version)) },
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		steps = append(steps, func() error {
			return add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("podmantest: write %s: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("podmantest: write %s: %w", path, err)
	}
	return f.Close()
}
