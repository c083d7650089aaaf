package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrSocketInUse is returned when another server answers on the socket.
var ErrSocketInUse = errors.New("metrics socket in use")

// ErrNotSocket is returned when the socket path names something else.
var ErrNotSocket = errors.New("not a socket")

// Serve serves /metrics on a unix socket (mode 0600: root only) and, when
// tcp is not "", on that TCP address too, until ctx ends. Either may be "".
// It returns nil when ctx ends and removes the socket.
func (m *Metrics) Serve(ctx context.Context, socket, tcp string) error {
	ls, err := Listen(socket, tcp)
	if err != nil {
		return err
	}
	return m.ServeOn(ctx, ls...)
}

// Listen makes the listeners Serve uses. A stale socket (no server answers
// on it) is replaced; the new one is never reachable with a wider mode than
// 0600. Closing the unix listener removes its socket.
func Listen(socket, tcp string) ([]net.Listener, error) {
	var ls []net.Listener
	if socket != "" {
		l, err := listenUnix(socket)
		if err != nil {
			return nil, fmt.Errorf("metrics listen %s: %w", socket, err)
		}
		ls = append(ls, l)
	}
	if tcp != "" {
		l, err := net.Listen("tcp", tcp)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("metrics listen: %w", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// ServeOn serves /metrics on the listeners until ctx ends, then closes them.
// It returns nil when ctx ends, or the first listener's error.
func (m *Metrics) ServeOn(ctx context.Context, ls ...net.Listener) error {
	if len(ls) == 0 {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	errs := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- srv.Serve(l)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		err = fmt.Errorf("metrics serve: %w", err)
	}
	srv.Close() // closes every listener and connection
	wg.Wait()
	return err
}

func listenUnix(path string) (net.Listener, error) {
	switch fi, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, ErrNotSocket // never delete what is not ours
	default:
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, ErrSocketInUse
		}
	}
	// Bind under a temporary name, restrict it, then rename it over the
	// final (or stale) name: no moment with the umask's wider mode, and no
	// umask change, which would affect the whole process.
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: l, path: path, fi: fi}, nil
}

// unixListener removes its socket on Close, unless another server has put
// its own there since.
type unixListener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, e := os.Lstat(l.path); e == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// Addr is the socket's final path (the bound name was temporary).
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }
