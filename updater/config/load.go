package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Paths are the two directories the configuration is read from.
type Paths struct {
	Vendor string // shipped defaults, read-only image: /usr/lib/speedia
	Admin  string // admin overrides: /etc/speedia
}

// DefaultPaths are the directories of an installed host.
var DefaultPaths = Paths{Vendor: "/usr/lib/speedia", Admin: "/etc/speedia"}

const (
	mainFile = "update.toml"
	dropins  = "update.d"
)

// Files lists the files Load reads, in order: Vendor/update.toml,
// Vendor/update.d/*.toml, Admin/update.toml, Admin/update.d/*.toml (each
// directory in lexical order). An Admin drop-in masks the Vendor drop-in of
// the same name. Missing files and directories are skipped silently;
// unreadable directories are problems.
func (p Paths) Files() ([]string, error) {
	vendor, err1 := dropinNames(filepath.Join(p.Vendor, dropins))
	admin, err2 := dropinNames(filepath.Join(p.Admin, dropins))
	files := []string{filepath.Join(p.Vendor, mainFile)}
	for _, n := range vendor {
		if !slices.Contains(admin, n) {
			files = append(files, filepath.Join(p.Vendor, dropins, n))
		}
	}
	files = append(files, filepath.Join(p.Admin, mainFile))
	for _, n := range admin {
		files = append(files, filepath.Join(p.Admin, dropins, n))
	}
	return files, join(slices.DeleteFunc([]error{err1, err2}, func(e error) bool { return e == nil }))
}

// dropinNames lists the *.toml names in dir, sorted; hidden files (editor
// and atomic-write temporaries) are ignored.
func dropinNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{File: dir, Msg: "cannot list drop-ins: " + errText(err), err: err}
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".toml") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Load reads the files of p in order over Default(), later files winning
// key by key (an array such as [[reboot.window]] is replaced as a whole),
// and validates the result. It returns the files it read and, on failure,
// a zero Config and every problem found (errors.Join of *Error): the caller
// keeps its last good configuration.
func Load(p Paths) (Config, []string, error) {
	names, err := p.Files()
	return loadFiles(names, Problems(err))
}

// LoadFiles is Load of the files given, in order, as Load reads those of
// Paths.Files: missing files are skipped.
func LoadFiles(names []string) (Config, []string, error) {
	return loadFiles(names, nil)
}

// loadFiles reads names over Default(); errs are problems found already.
func loadFiles(names []string, problems []*Error) (Config, []string, error) {
	var errs []error
	for _, e := range problems {
		errs = append(errs, e)
	}
	var srcs []source
	var read []string
	for _, name := range names {
		data, err := os.ReadFile(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			errs = append(errs, &Error{File: name, Msg: "cannot read: " + errText(err), err: err})
			continue
		}
		read = append(read, name)
		srcs = append(srcs, source{name: name, data: data})
	}
	c, err := load(Default(), srcs)
	for _, e := range Problems(err) {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		order := map[string]int{}
		for i, n := range names {
			order[n] = i + 1 // listing errors of directories (0) first
		}
		slices.SortStableFunc(errs, func(a, b error) int {
			return cmp.Compare(order[a.(*Error).File], order[b.(*Error).File])
		})
		return Config{}, read, errors.Join(errs...)
	}
	return c, read, nil
}

// errText is err without the path that Error already names.
func errText(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

type source struct {
	name string
	data []byte
}

// origin is where the value in force of a top-level key came from.
type origin struct {
	file  string
	order int
	lines map[string]int
}

// load applies srcs in order over base, then validates the result.
func load(base Config, srcs []source) (Config, error) {
	l := &loader{origins: map[string]origin{}}
	c := base
	for i, src := range srcs {
		l.apply(&c, src, i)
	}
	for _, e := range Problems(c.Validate()) {
		o := l.locate(e)
		e.File, e.Line = o.file, lineOf(o.lines, e.Key)
		l.add(e, o.order)
	}
	if len(l.errs) == 0 {
		return c, nil
	}
	slices.SortStableFunc(l.errs, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.e.Line, b.e.Line),
			cmp.Compare(a.e.Column, b.e.Column), strings.Compare(a.e.Key, b.e.Key))
	})
	errs := make([]error, len(l.errs))
	for i, r := range l.errs {
		errs[i] = r.e
	}
	return Config{}, errors.Join(errs...)
}

type ranked struct {
	e     *Error
	order int // index of the file, for sorting
}

type loader struct {
	errs    []ranked
	origins map[string]origin // "check.interval", "reboot.window", ... -> file in force
}

func (l *loader) add(e *Error, order int) { l.errs = append(l.errs, ranked{e, order}) }

// locate finds the file that set key or its nearest ancestor.
func (l *loader) locate(e *Error) origin {
	for k := e.Key; k != ""; k = parentKey(k) {
		if o, ok := l.origins[k]; ok {
			return o
		}
	}
	return origin{order: -1}
}

func (l *loader) apply(c *Config, src source, order int) {
	var doc map[string]any
	if _, err := toml.Decode(string(src.data), &doc); err != nil {
		e := &Error{File: src.name, Msg: err.Error(), err: err}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line, e.Column = position(string(src.data), pe.Position)
			e.Msg = pe.Message
		}
		l.add(e, order)
		return
	}
	d := &decoder{loader: l, origin: origin{file: src.name, order: order, lines: keyLines(string(src.data))}}
	d.document(c, doc)
}

// decoder applies one parsed file to a Config.
type decoder struct {
	*loader
	origin
}

func (d *decoder) errorf(key, format string, args ...any) {
	d.add(&Error{File: d.file, Line: lineOf(d.lines, key), Key: key, Msg: fmt.Sprintf(format, args...)}, d.order)
}

func (d *decoder) wrapf(err error, key, format string, args ...any) {
	d.add(&Error{File: d.file, Line: lineOf(d.lines, key), Key: key, Msg: fmt.Sprintf(format, args...), err: err}, d.order)
}

func (d *decoder) document(c *Config, doc map[string]any) {
	for _, name := range sortedKeys(doc) {
		fields, ok := schema[name]
		if !ok {
			d.unknown(joinKey("", name), allKeys())
			continue
		}
		table, ok := doc[name].(map[string]any)
		if !ok {
			d.errorf(name, "must be a table ([%s]), found %s", name, typeName(doc[name]))
			continue
		}
		for _, k := range sortedKeys(table) {
			key := joinKey(name, k)
			set, ok := fields[k]
			if !ok {
				d.unknown(key, allKeys())
				continue
			}
			if set(d, c, key, table[k]) {
				d.origins[key] = d.origin
			}
		}
	}
}

func (d *decoder) unknown(key string, candidates []string) {
	if s := suggest(key, candidates); s != "" {
		d.errorf(key, "unknown key; did you mean %q?", s)
		return
	}
	d.errorf(key, "unknown key")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// position turns a syntax error's byte offset into line and column. The
// parser's own Line is one too far for an unexpected newline, and its Col
// is off at line starts; its Start is right.
func position(data string, p toml.Position) (line, col int) {
	data = strings.TrimPrefix(data, "\ufeff") // the parser counts without it
	if p.Start < 0 || p.Start > len(data) || p.Start == 0 && p.Line > 1 {
		return p.Line, p.Col
	}
	before := data[:p.Start]
	return 1 + strings.Count(before, "\n"), p.Start - strings.LastIndexByte(before, '\n')
}
