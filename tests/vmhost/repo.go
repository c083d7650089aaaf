package vmhost

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Repo is a flat apt repository ("deb [trusted=yes] http://HOST:PORT/ ./")
// whose contents the test swaps: each Publish fills a new generation
// directory and then switches to it, so apt never sees half of one.
type Repo struct {
	Log io.Writer // one line per request; set before Serve

	dir string
	srv *http.Server
	pub sync.Mutex // one Publish at a time, so generations go in order

	gen  int       // the last generation made; under pub
	date time.Time // its Release's Date; under pub
	now  func() time.Time

	mu   sync.Mutex
	cur  string // the generation being served
	reqs []Request
}

// Request is one request the repository answered.
type Request struct {
	Method, Path string
	Status       int
}

func (q Request) String() string { return fmt.Sprintf("%s %s %d", q.Method, q.Path, q.Status) }

// NewRepo makes a repository in dir, serving no packages until Publish.
// Generations left in dir by an earlier run are removed.
func NewRepo(dir string) (*Repo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vmhost: repo: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "gen-*"))
	if err != nil {
		return nil, fmt.Errorf("vmhost: repo: %w", err)
	}
	for _, g := range old {
		if err := os.RemoveAll(g); err != nil {
			return nil, fmt.Errorf("vmhost: repo: %w", err)
		}
	}
	r := &Repo{dir: dir}
	if err := r.Publish(context.Background()); err != nil {
		return nil, err
	}
	return r, nil
}

// Publish serves exactly debs from now on (none: an empty repository).
// The generation before stays on disk for requests still reading it.
func (r *Repo) Publish(ctx context.Context, debs ...string) error {
	r.pub.Lock()
	defer r.pub.Unlock()
	r.gen++
	gen := filepath.Join(r.dir, fmt.Sprintf("gen-%04d", r.gen))
	date := time.Now()
	if r.now != nil {
		date = r.now()
	}
	date = date.UTC().Add(-releaseLag).Truncate(time.Second)
	if date.Before(r.date) {
		date = r.date
	}
	r.date = date
	if err := fill(ctx, gen, date, debs); err != nil {
		os.RemoveAll(gen)
		return fmt.Errorf("vmhost: repo publish: %w", err)
	}
	r.mu.Lock()
	prev := r.cur
	r.cur = gen
	r.mu.Unlock()
	// Keep the previous generation, drop older ones: an open file stays
	// readable after removal anyway.
	gens, _ := filepath.Glob(filepath.Join(r.dir, "gen-*"))
	for _, g := range gens {
		if g != gen && g != prev {
			os.RemoveAll(g)
		}
	}
	return nil
}

// releaseLag backdates each Release: apt refuses one dated in the future of
// the guest's clock ("not valid yet"), and ignores one older than the last
// it read, so Dates lag the host's clock and never go backwards.
const releaseLag = time.Hour

func fill(ctx context.Context, gen string, date time.Time, debs []string) error {
	if err := os.Mkdir(gen, 0o755); err != nil {
		return err
	}
	for _, deb := range debs {
		dst := filepath.Join(gen, filepath.Base(deb))
		if !strings.HasSuffix(dst, ".deb") {
			return fmt.Errorf("%s is not a .deb", deb)
		}
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("two debs named %s", filepath.Base(deb))
		}
		if err := linkOrCopy(deb, dst); err != nil {
			return err
		}
	}
	var packages []byte
	if len(debs) > 0 {
		cmd := exec.CommandContext(ctx, "dpkg-scanpackages", "--multiversion", ".", "/dev/null")
		cmd.Dir = gen
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("dpkg-scanpackages: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		packages = out
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(packages); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{"Packages", packages}, {"Packages.gz", gz.Bytes()}}
	// An unsigned Release lets apt ([trusted=yes]) check the indexes and
	// notice every new generation by their hashes.
	var rel bytes.Buffer
	fmt.Fprintf(&rel, "Date: %s\nSHA256:\n", date.Format(time.RFC1123))
	for _, f := range files {
		fmt.Fprintf(&rel, " %x %d %s\n", sha256.Sum256(f.data), len(f.data), f.name)
	}
	files = append(files, struct {
		name string
		data []byte
	}{"Release", rel.Bytes()})
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(gen, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// linkOrCopy hard-links src to dst, copying where a link cannot be made
// (another filesystem, or a file the caller does not own).
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || !(errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM)) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Serve serves the current generation over HTTP on addr ("127.0.0.1:0":
// any free port) until Close, and returns the port.
func (r *Repo) Serve(addr string) (port int, err error) {
	if r.srv != nil {
		return 0, errors.New("vmhost: repo already serving")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("vmhost: repo serve: %w", err)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: time.Minute}
	go r.srv.Serve(ln)
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (r *Repo) handle(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	gen := r.cur
	r.mu.Unlock()
	// Two generations can be published within one second, the resolution
	// of Last-Modified: never answer "304 Not Modified".
	for _, h := range []string{"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since"} {
		req.Header.Del(h)
	}
	w.Header().Set("Cache-Control", "no-store")
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	http.FileServer(http.Dir(gen)).ServeHTTP(sw, req)
	q := Request{req.Method, req.URL.Path, sw.status}
	r.mu.Lock()
	r.reqs = append(r.reqs, q)
	log := r.Log
	r.mu.Unlock()
	if log != nil {
		fmt.Fprintf(log, "repo: %s\n", q)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Requests returns the requests answered so far, oldest first.
func (r *Repo) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Close stops serving; the files stay in the directory.
func (r *Repo) Close() error {
	if r.srv == nil {
		return nil
	}
	err := r.srv.Close()
	r.srv = nil
	return err
}
