package spec

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/speedia/host/updater/config"
)

// Error is one problem in a host spec, e.g.
//
//	web.toml:3: version: "1.0" is not MAJOR.MINOR.PATCH (use digits, e.g. "1.0.0")
//
// It is the update configuration's error type, so that the [update] table
// and the rest of the spec report alike. Load and Parse return every
// problem as errors.Join of *Error; config.Problems lists them.
type Error = config.Error

// Defaults and limits of the spec's keys.
const (
	DefaultTimezone = "UTC"
	DefaultShell    = "/bin/bash"
	DefaultDiskSize = 4 << 30
	MinDiskSize     = 2 << 30 // the root file system with two snapshots of the base
	MaxScriptSize   = 1 << 20 // the first-boot script must be smaller
)

func defaultKernelArgs() []string { return []string{"console=tty0", "console=ttyS0,115200"} }

func defaultApt() []string {
	return []string{
		"http://deb.debian.org/debian bookworm main",
		"http://deb.debian.org/debian bookworm-updates main",
		"http://deb.debian.org/debian-security bookworm-security main",
	}
}

func defaultRepositories() []string {
	return []string{
		"https://download.opensuse.org/tumbleweed/repo/oss",
		"https://download.opensuse.org/update/tumbleweed",
	}
}

// updateHeader opens Update.TOML, which becomes the host's /etc/speedia/update.toml.
const updateHeader = "# The [update] table of the host spec, written by speedia-image.\n" +
	"# Keys and defaults: /usr/lib/speedia/update.toml and docs/config.md.\n\n"

var (
	errNotRegular = errors.New("not a regular file")
	errTooLarge   = fmt.Errorf("%d bytes or larger", MaxScriptSize)
)

// Load reads and validates the host spec at path; the first-boot script is
// read relative to path's directory.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read host spec: %w", err)
	}
	return Parse(path, data, readScript)
}

// readScript reads a first-boot script, refusing what is not a regular
// file (a FIFO would block, a device never end) and reading no more than
// MaxScriptSize bytes.
func readScript(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, MaxScriptSize))
	if err == nil && len(body) >= MaxScriptSize {
		err = errTooLarge
	}
	return body, err
}

// Parse validates data, a host spec named file. readFile reads the
// first-boot script, whose path is resolved against file's directory; nil
// means os.ReadFile. Every problem is reported.
func Parse(file string, data []byte, readFile func(string) ([]byte, error)) (*Spec, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	doc, line, err := config.Document(file, data)
	if err != nil {
		return nil, err
	}
	p := &parser{file: file, line: line, readFile: readFile}
	s := p.spec(doc)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	h := sha256.New()
	h.Write(data)
	h.Write(s.Firstboot.ScriptBody)
	s.File, s.Hash = file, hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// Keys of the spec, for unknown-key checks and suggestions.
var (
	topKeys       = []string{"name", "version", "base", "date", "hostname", "timezone", "kernel_args", "packages", "disk_size", "formats", "users", "update", "source", "firstboot"}
	userKeys      = []string{"name", "groups", "shell", "ssh_keys"}
	sourceKeys    = []string{"apt", "repositories"}
	firstbootKeys = []string{"script"}
)

// suggestions is every key but those of users, which are suggested per user.
var suggestions = slices.Concat(topKeys,
	[]string{"source.apt", "source.repositories", "firstboot.script"})

type parser struct {
	file     string
	line     func(key string) int
	readFile func(string) ([]byte, error)
	errs     []*Error
}

func (p *parser) errorf(key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// spec reads the whole document; the result is only used when p.errs stays empty.
func (p *parser) spec(doc map[string]any) *Spec {
	s := &Spec{
		Timezone:   DefaultTimezone,
		KernelArgs: defaultKernelArgs(),
		DiskSize:   DefaultDiskSize,
		Formats:    []Format{FormatQcow2},
	}
	p.unknown("", doc, topKeys, suggestions)

	p.text(doc, "", "name", `add name = "web-host"`, checkName, &s.Name)
	p.text(doc, "", "version", `add version = "1.0.0"`, checkVersion, &s.Version)
	var base string
	if p.text(doc, "", "base", `add base = "debian" or base = "microos"`, checkBase, &base) {
		s.Base = Base(base)
	}
	if v, ok := doc["date"]; ok {
		p.date(v, &s.Date)
	} else {
		p.errorf("date", "missing (add the release date, e.g. date = 2026-11-22)")
	}
	p.text(doc, "", "hostname", "", checkHostname, &s.Hostname)
	p.text(doc, "", "timezone", "", checkTimezone, &s.Timezone)
	if v, ok := doc["kernel_args"]; ok {
		s.KernelArgs = p.list("kernel_args", v, checkKernelArg)
	}
	if v, ok := doc["packages"]; ok {
		s.Packages = p.list("packages", v, checkPackage)
	}
	if v, ok := doc["disk_size"]; ok {
		p.diskSize(v, &s.DiskSize)
	}
	if v, ok := doc["formats"]; ok {
		s.Formats = p.formats(v)
	}
	if v, ok := doc["users"]; ok {
		s.Users = p.users(v)
	}
	s.Update = p.update(doc)
	s.Source = p.source(doc, s.Base)
	s.Firstboot = p.firstboot(doc)
	return s
}

// unknown reports the keys of t (at path parent) that are not in known,
// suggesting one of candidates.
func (p *parser) unknown(parent string, t map[string]any, known, candidates []string) {
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if slices.Contains(known, k) {
			continue
		}
		key := keyPath(parent, k)
		if s := config.Suggest(key, candidates); s != "" {
			p.errorf(key, "unknown key; did you mean %q?", s)
		} else {
			p.errorf(key, "unknown key")
		}
	}
}

// keyPath appends segment k to parent the way config.Error keys spell it:
// segments that are not bare TOML keys are quoted.
func keyPath(parent, k string) string {
	bare := k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == ""
	if !bare {
		k = strconv.Quote(k)
	}
	if parent != "" {
		k = parent + "." + k
	}
	return k
}

// kind names the TOML type of v for messages.
func kind(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	}
	return fmt.Sprintf("a %T", v)
}

// str returns v as a string, reporting other types at key.
func (p *parser) str(key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		p.errorf(key, "must be a string, not %s", kind(v))
	}
	return s, ok
}

// text reads the string t[k] (key path parent.k) into dst when check
// (which returns what is wrong, or "") accepts it. A missing key is a
// problem when hint (what to add) is set. It reports whether dst was set.
func (p *parser) text(t map[string]any, parent, k, hint string, check func(string) string, dst *string) bool {
	key := keyPath(parent, k)
	v, ok := t[k]
	if !ok {
		if hint != "" {
			p.errorf(key, "missing (%s)", hint)
		}
		return false
	}
	s, ok := p.str(key, v)
	if !ok {
		return false
	}
	if msg := check(s); msg != "" {
		p.errorf(key, "%s", msg)
		return false
	}
	*dst = s
	return true
}

// list reads an array of strings, each accepted by check and none twice.
// Problems are reported per element; the result is only used without them.
func (p *parser) list(key string, v any, check func(string) string) []string {
	items, ok := v.([]any)
	if !ok {
		p.errorf(key, "must be an array of strings, not %s", kind(v))
		return nil
	}
	out := make([]string, 0, len(items))
	first := map[string]int{}
	for i, item := range items {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		s, ok := p.str(ikey, item)
		if !ok {
			continue
		}
		if j, dup := first[s]; dup {
			p.errorf(ikey, "%q is listed twice (also %s[%d]; remove one)", s, key, j)
			continue
		}
		first[s] = i
		if msg := check(s); msg != "" {
			p.errorf(ikey, "%s", msg)
			continue
		}
		out = append(out, s)
	}
	return out
}

// date accepts a TOML local date (taken as midnight UTC) or offset date-time.
func (p *parser) date(v any, dst *time.Time) {
	t, ok := v.(time.Time)
	if !ok {
		if s, isStr := v.(string); isStr {
			p.errorf("date", "must be a TOML date, not the string %q (write it without quotes, e.g. date = 2026-11-22)", s)
		} else {
			p.errorf("date", "must be a date such as 2026-11-22, not %s", kind(v))
		}
		return
	}
	// The TOML decoder marks values without an offset by these zone names.
	switch t.Location().String() {
	case "date-local":
		t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case "datetime-local":
		p.errorf("date", "%s has no UTC offset (add one, e.g. %sZ, or write only the date)",
			t.Format("2006-01-02T15:04:05"), t.Format("2006-01-02T15:04:05"))
		return
	case "time-local":
		p.errorf("date", "%s is a time of day, not a date (write e.g. date = 2026-11-22)", t.Format("15:04:05"))
		return
	}
	if t.Year() < 1980 {
		p.errorf("date", "%s is before 1980 (FAT and ZIP time stamps in the image cannot hold it)", t.UTC().Format(time.DateOnly))
		return
	}
	*dst = t.UTC()
}

func (p *parser) diskSize(v any, dst *int64) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case string:
		var msg string
		if n, msg = parseSize(v); msg != "" {
			p.errorf("disk_size", "%s", msg)
			return
		}
	default:
		p.errorf("disk_size", "must be a size such as \"4GiB\", not %s", kind(v))
		return
	}
	if msg := checkDiskSize(n); msg != "" {
		p.errorf("disk_size", "%s", msg)
		return
	}
	*dst = n
}

func (p *parser) formats(v any) []Format {
	names := p.list("formats", v, checkFormat)
	if items, ok := v.([]any); ok && len(items) == 0 {
		p.errorf("formats", "is empty (leave it out for [\"qcow2\"])")
	}
	out := make([]Format, len(names))
	for i, n := range names {
		out[i] = Format(n)
	}
	return out
}

// tables returns the elements of an array of tables, [[x]] or x = [{...}].
func tables(v any) ([]map[string]any, bool) {
	switch v := v.(type) {
	case []map[string]any:
		return v, true
	case []any:
		out := make([]map[string]any, len(v))
		for i, item := range v {
			t, ok := item.(map[string]any)
			if !ok {
				return nil, false
			}
			out[i] = t
		}
		return out, true
	}
	return nil, false
}

// table returns doc[name] as a table, reporting other types.
func (p *parser) table(doc map[string]any, name string) (map[string]any, bool) {
	v, ok := doc[name]
	if !ok {
		return nil, false
	}
	t, ok := v.(map[string]any)
	if !ok {
		p.errorf(name, "must be a table ([%s]), not %s", name, kind(v))
	}
	return t, ok
}

func (p *parser) users(v any) []User {
	items, ok := tables(v)
	if !ok {
		p.errorf("users", "must be an array of tables ([[users]]), not %s", kind(v))
		return nil
	}
	var out []User
	first := map[string]int{}
	for i, t := range items {
		key := fmt.Sprintf("users[%d]", i)
		cands := make([]string, len(userKeys))
		for j, k := range userKeys {
			cands[j] = key + "." + k
		}
		p.unknown(key, t, userKeys, cands)
		u := User{Shell: DefaultShell}
		if p.text(t, key, "name", `add name = "root" or another user name`, checkUserName, &u.Name) {
			if j, dup := first[u.Name]; dup {
				p.errorf(key+".name", "%q is already users[%d] (merge the two)", u.Name, j)
			}
			first[u.Name] = i
		}
		if v, ok := t["groups"]; ok {
			if u.Name == "root" {
				p.errorf(key+".groups", "root's groups are fixed (leave groups out for root)")
			}
			u.Groups = p.list(key+".groups", v, checkGroupName)
		}
		p.text(t, key, "shell", "", checkShell, &u.Shell)
		if v, ok := t["ssh_keys"]; ok {
			u.SSHKeys = p.list(key+".ssh_keys", v, checkSSHKey)
		}
		out = append(out, u)
	}
	return out
}

func (p *parser) update(doc map[string]any) Update {
	t, ok := p.table(doc, "update")
	if !ok {
		return Update{Config: config.Default()}
	}
	var buf bytes.Buffer
	buf.WriteString(updateHeader)
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(t); err != nil {
		p.errorf("update", "cannot be written as update.toml: %v", err)
		return Update{}
	}
	c, errs := config.Section(p.file, buf.Bytes(), "update", p.line)
	p.errs = append(p.errs, errs...)
	return Update{TOML: buf.String(), Config: c}
}

func (p *parser) source(doc map[string]any, base Base) Source {
	var src Source
	if t, ok := p.table(doc, "source"); ok {
		p.unknown("source", t, sourceKeys, suggestions)
		if v, ok := t["apt"]; ok {
			if base == BaseMicroOS {
				p.errorf("source.apt", "is for base \"debian\" (use source.repositories for microos)")
			}
			src.Apt = p.sources("source.apt", v, checkAptLine)
		}
		if v, ok := t["repositories"]; ok {
			if base == BaseDebian {
				p.errorf("source.repositories", "is for base \"microos\" (use source.apt for debian)")
			}
			src.Repositories = p.sources("source.repositories", v, checkRepository)
		}
	}
	switch {
	case base == BaseDebian && src.Apt == nil:
		src.Apt = defaultApt()
	case base == BaseMicroOS && src.Repositories == nil:
		src.Repositories = defaultRepositories()
	}
	return src
}

// sources reads a non-empty list of repositories.
func (p *parser) sources(key string, v any, check func(string) string) []string {
	out := p.list(key, v, check)
	if items, ok := v.([]any); ok && len(items) == 0 {
		p.errorf(key, "is empty (leave it out for the default repositories)")
	}
	return out
}

func (p *parser) firstboot(doc map[string]any) Firstboot {
	t, ok := p.table(doc, "firstboot")
	if !ok {
		return Firstboot{}
	}
	p.unknown("firstboot", t, firstbootKeys, suggestions)
	v, ok := t["script"]
	if !ok {
		p.errorf("firstboot.script", "missing (add script = \"firstboot.sh\", or remove [firstboot])")
		return Firstboot{}
	}
	name, ok := p.str("firstboot.script", v)
	if !ok {
		return Firstboot{}
	}
	if name == "" {
		p.errorf("firstboot.script", "is empty (name a file beside the spec, e.g. \"firstboot.sh\")")
		return Firstboot{}
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(p.file), path)
	}
	body, err := p.readFile(path)
	switch {
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		p.errorf("firstboot.script", "cannot read %s: %v (the path is relative to the spec file's directory)", path, err)
	case len(body) >= MaxScriptSize:
		p.errorf("firstboot.script", "%s is %v (keep the script small; let it fetch what it needs)", path, errTooLarge)
	}
	return Firstboot{Script: path, ScriptBody: body}
}
