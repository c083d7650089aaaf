package podman

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/containers/podman/v5/pkg/bindings/containers"

	"github.com/speedia/host/podman/patch"
)

// maxReadFile bounds what ContainerFiles reads of one file: os-release and
// package databases' markers, never a customer's data.
const maxReadFile = 1 << 20

// ContainerFiles reads files of a container's root filesystem through
// Podman's copy API (podman cp): nothing starts in the container, it may
// be stopped, and the reader needs no view of Podman's mounts. Symbolic
// links (Debian's /etc/os-release) are followed inside the container.
func ContainerFiles(conn context.Context, id string) patch.Files {
	return func(p string) ([]byte, error) {
		for hop := 0; hop < 8; hop++ {
			hdr, body, err := copyOne(conn, id, p)
			if err != nil {
				return nil, err
			}
			switch hdr.Typeflag {
			case tar.TypeReg:
				return body, nil
			case tar.TypeSymlink:
				t := hdr.Linkname
				if !path.IsAbs(t) {
					t = path.Join(path.Dir(p), t)
				}
				p = path.Clean(t)
			default:
				return nil, fmt.Errorf("%s in %s: not a regular file", p, id)
			}
		}
		return nil, fmt.Errorf("%s in %s: too many symbolic links", p, id)
	}
}

func copyOne(conn context.Context, id, p string) (*tar.Header, []byte, error) {
	var buf bytes.Buffer
	copyFn, err := containers.CopyToArchive(conn, id, p, &buf)
	if err == nil {
		err = copyFn()
	}
	if err != nil {
		if isNotFound(err) {
			return nil, nil, fmt.Errorf("%s in %s: %w", p, id, fs.ErrNotExist)
		}
		return nil, nil, fmt.Errorf("reading %s in %s: %w", p, id, explain(err))
	}
	tr := tar.NewReader(&buf)
	hdr, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s in %s: %w", p, id, fs.ErrNotExist)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s in %s: %w", p, id, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return hdr, nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(tr, maxReadFile))
	return hdr, body, err
}
