package vmhost

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/speedia/host/updater/pkgver"
	"github.com/ulikunitz/xz"
)

// Debian's archive on the CDN; security updates live in a separate archive.
const (
	DefaultMirror         = "http://deb.debian.org/debian"
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
)

// indexMaxAge is how long a fetched index is trusted: Debian publishes
// about four times a day, and the tests want the same answer all day.
const indexMaxAge = 12 * time.Hour

var (
	ErrNotFound = errors.New("vmhost: package not found") // no such name/version in the suites
	ErrChecksum = errors.New("vmhost: checksum mismatch") // a .deb differs from its index entry
)

// Archive reads Debian's archive (amd64 only) and keeps what it fetched
// under Cache, so reruns work offline once everything is there.
//
// A suite whose name ends in "-security" (bookworm-security) is read from
// SecurityMirror, every other one from Mirror.
type Archive struct {
	Mirror         string    // default DefaultMirror
	SecurityMirror string    // default DefaultSecurityMirror
	Cache          string    // directory; required
	Log            io.Writer // progress and fallbacks; may be nil

	now     func() time.Time // tests inject a clock
	mu      sync.Mutex
	indexes map[string]memo // by cache file: parsing main takes a second
}

type memo struct {
	mtime time.Time
	pkgs  []Package
}

// Package is one stanza of a Packages index.
type Package struct {
	Name, Version, Architecture, Filename, SHA256, Depends string
	Size                                                   int64
	Base                                                   string // archive URL that Filename is relative to
}

func (p Package) String() string { return p.Name + " " + p.Version }

func (a *Archive) logf(format string, args ...any) {
	if a.Log != nil {
		fmt.Fprintf(a.Log, "archive: "+format+"\n", args...)
	}
}

func (a *Archive) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

func (a *Archive) base(suite string) string {
	if strings.HasSuffix(suite, "-security") {
		return strings.TrimSuffix(cmp.Or(a.SecurityMirror, DefaultSecurityMirror), "/")
	}
	return strings.TrimSuffix(cmp.Or(a.Mirror, DefaultMirror), "/")
}

// Index returns the binary-amd64 packages of SUITE/COMPONENT (arch "all"
// included). The decompressed index is cached for 12 hours; when a refetch
// fails, an older cached copy is used and the fallback logged.
func (a *Archive) Index(ctx context.Context, suite, component string) ([]Package, error) {
	if a.Cache == "" {
		return nil, errors.New("vmhost: archive has no cache dir")
	}
	base := a.base(suite)
	rel := "dists/" + suite + "/" + component + "/binary-amd64/Packages.xz"
	file := filepath.Join(a.Cache, "index", flatName(base+"/"+strings.TrimSuffix(rel, ".xz")))

	st, err := os.Stat(file)
	fresh := err == nil && a.clock().Sub(st.ModTime()) < indexMaxAge
	if !fresh {
		t0 := time.Now()
		ferr := fetchIndex(ctx, base+"/"+rel, file)
		switch {
		case ferr == nil:
			a.logf("fetched %s/%s in %s", base, rel, time.Since(t0).Round(time.Millisecond))
			a.mu.Lock()
			delete(a.indexes, file)
			a.mu.Unlock()
		case err == nil:
			a.logf("refetching %s failed, using the copy of %s: %v", rel, st.ModTime().UTC().Format(time.RFC3339), ferr)
		default:
			return nil, fmt.Errorf("vmhost: index %s %s: %w", suite, component, ferr)
		}
		if st, err = os.Stat(file); err != nil {
			return nil, fmt.Errorf("vmhost: index %s %s: %w", suite, component, err)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if m, ok := a.indexes[file]; ok && m.mtime.Equal(st.ModTime()) {
		return m.pkgs, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("vmhost: index %s %s: %w", suite, component, err)
	}
	defer f.Close()
	pkgs, err := parseIndex(f, base)
	if err != nil {
		return nil, fmt.Errorf("vmhost: index %s %s: %w", suite, component, err)
	}
	if a.indexes == nil {
		a.indexes = map[string]memo{}
	}
	a.indexes[file] = memo{st.ModTime(), pkgs}
	return pkgs, nil
}

// flatName turns a URL into one file name.
func flatName(url string) string {
	url = strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, url)
}

func get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// fetchIndex stores the decompressed index at file, atomically.
func fetchIndex(ctx context.Context, url, file string) error {
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	zr, err := xz.NewReader(bufio.NewReaderSize(body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return writeAtomic(file, func(w io.Writer) error {
		if _, err := io.Copy(w, zr); err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		return nil
	})
}

// writeAtomic writes file through a temporary file beside it, so readers
// (and reruns after a crash) never see half a file.
func writeAtomic(file string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-"+filepath.Base(file)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// parseIndex reads deb822 stanzas; only the fields Package carries are
// kept, and a continued field keeps its lines joined by "\n".
func parseIndex(r io.Reader, base string) ([]Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var (
		pkgs  []Package
		p     Package
		field *string // the field a continuation line belongs to; nil if unkept
		seen  bool    // the current stanza has a field
		line  int
		start int
	)
	end := func() error {
		if !seen {
			return nil
		}
		if p.Name == "" {
			return fmt.Errorf("stanza at line %d has no Package field", start)
		}
		p.Base = base
		pkgs = append(pkgs, p)
		p, field, seen = Package{}, nil, false
		return nil
	}
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case strings.TrimSpace(s) == "":
			if err := end(); err != nil {
				return nil, err
			}
			continue
		case s[0] == '#':
			continue
		case s[0] == ' ' || s[0] == '\t':
			if !seen {
				return nil, fmt.Errorf("line %d: continuation without a field", line)
			}
			if field != nil {
				*field += "\n" + strings.TrimSpace(s)
			}
			continue
		}
		name, value, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no colon in %q", line, s)
		}
		if !seen {
			seen, start = true, line
		}
		value = strings.TrimSpace(value)
		field = nil
		switch strings.ToLower(name) {
		case "package":
			field = &p.Name
		case "version":
			field = &p.Version
		case "architecture":
			field = &p.Architecture
		case "filename":
			field = &p.Filename
		case "sha256":
			field = &p.SHA256
		case "depends":
			field = &p.Depends
		case "size":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: size: %w", line, err)
			}
			p.Size = n
			continue
		}
		if field != nil {
			*field = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// Find returns NAME at exactly VERSION from the main component of the
// first suite that has it; VERSION "" means the highest across suites.
func (a *Archive) Find(ctx context.Context, suites []string, name, version string) (Package, error) {
	var (
		best Package
		seen []string
	)
	for _, suite := range suites {
		pkgs, err := a.Index(ctx, suite, "main")
		if err != nil {
			return Package{}, err
		}
		for _, p := range pkgs {
			if p.Name != name {
				continue
			}
			seen = append(seen, p.Version+" ("+suite+")")
			switch {
			case version != "" && p.Version == version:
				return p, nil
			case version == "" && (best.Name == "" || pkgver.Compare(p.Version, best.Version) > 0):
				best = p
			}
		}
	}
	if best.Name != "" {
		return best, nil
	}
	want := name
	if version != "" {
		want += " " + version
	}
	have := "none"
	if len(seen) > 0 {
		have = strings.Join(seen, ", ")
	}
	return Package{}, fmt.Errorf("%w: %s in %s/main of %s (versions there: %s)",
		ErrNotFound, want, strings.Join(suites, ", "), a.base(""), have)
}

// Download stores p's .deb under Cache/debs and returns its path. A file
// already there is reused if its SHA256 matches; a new one is verified
// before it gets its final name.
func (a *Archive) Download(ctx context.Context, p Package) (string, error) {
	if p.SHA256 == "" {
		return "", fmt.Errorf("vmhost: download %s: index has no SHA256", p)
	}
	name := path.Base(p.Filename)
	if p.Filename == "" || name == "." || name == ".." || name == "/" {
		return "", fmt.Errorf("vmhost: download %s: bad file name %q", p, p.Filename)
	}
	if a.Cache == "" {
		return "", errors.New("vmhost: archive has no cache dir")
	}
	file := filepath.Join(a.Cache, "debs", name)
	if err := verify(file, p); err == nil {
		return file, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		a.logf("fetching %s again: %v", name, err)
	}

	url := cmp.Or(p.Base, a.base("")) + "/" + p.Filename
	a.logf("fetching %s (%.1f MB)", url, float64(p.Size)/1e6)
	t0 := time.Now()
	body, err := get(ctx, url)
	if err != nil {
		return "", fmt.Errorf("vmhost: download %s: %w", p, err)
	}
	defer body.Close()
	err = writeAtomic(file, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), body)
		if err != nil {
			return err
		}
		return check(hex.EncodeToString(h.Sum(nil)), n, p)
	})
	if err != nil {
		return "", fmt.Errorf("vmhost: download %s: %w", p, err)
	}
	a.logf("fetched %s in %s", name, time.Since(t0).Round(time.Millisecond))
	return file, nil
}

func verify(file string, p Package) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	return check(hex.EncodeToString(h.Sum(nil)), n, p)
}

func check(sum string, n int64, p Package) error {
	if !strings.EqualFold(sum, p.SHA256) || (p.Size > 0 && n != p.Size) {
		return fmt.Errorf("%w: %s: got sha256 %s (%d bytes), index says %s (%d bytes)",
			ErrChecksum, path.Base(p.Filename), sum, n, p.SHA256, p.Size)
	}
	return nil
}
