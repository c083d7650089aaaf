package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Report is what Verify found: the files read, in order, and every problem.
type Report struct {
	Target   string   // what was checked: a path, or "" for DefaultPaths
	Files    []string // the files read, in order
	Problems []*Error // empty: the configuration is valid
}

// OK says whether the configuration is valid.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// ErrInvalid is what a command checking the configuration returns (exit 1)
// after Write has listed the problems.
var ErrInvalid = errors.New("the configuration is invalid")

// Verify validates the configuration as the daemon loads it. It serves
// "speedia-update config check" and "speedia-updated --check-config".
// target is
//
//   - "": the daemon's own files, DefaultPaths (Load, exactly);
//   - a configuration directory such as /etc/speedia: DIR/update.toml,
//     then DIR/update.d/*.toml;
//   - a drop-in directory (named update.d): its *.toml files;
//   - a file named update.toml: it, then the update.d/*.toml beside it;
//   - any other file (a drop-in): that file alone.
//
// The files are read in order over the built-in defaults, later ones
// winning, and the result validated as the daemon does. A target that does
// not exist, or a directory with no files to read, is a problem too.
func Verify(target string) Report {
	r := Report{Target: target}
	var names []string
	var problems []*Error
	if target == "" {
		var err error
		names, err = DefaultPaths.Files()
		problems = Problems(err)
	} else {
		var err error
		if names, err = targetFiles(target); err != nil {
			problems = Problems(err)
			if len(problems) == 0 {
				problems = []*Error{{File: target, Msg: errText(err), err: err}}
			}
		}
	}
	var err error
	_, r.Files, err = loadFiles(names, problems)
	r.Problems = Problems(err)
	if r.OK() && target != "" && len(r.Files) == 0 {
		r.Problems = []*Error{{File: target, Msg: "no update.toml or update.d/*.toml to read"}}
	}
	return r
}

// targetFiles lists the files Verify reads for target (see Verify).
func targetFiles(target string) ([]string, error) {
	fi, err := os.Stat(target)
	if err != nil {
		return nil, err
	}
	dir := target
	switch {
	case fi.IsDir() && filepath.Base(filepath.Clean(target)) == dropins:
		names, err := dropinNames(target)
		for i, n := range names {
			names[i] = filepath.Join(target, n)
		}
		return names, err
	case !fi.IsDir() && filepath.Base(target) != mainFile:
		return []string{target}, nil
	case !fi.IsDir():
		dir = filepath.Dir(target)
	}
	names, err := dropinNames(filepath.Join(dir, dropins))
	files := []string{filepath.Join(dir, mainFile)}
	for _, n := range names {
		files = append(files, filepath.Join(dir, dropins, n))
	}
	return files, err
}

// Write prints the report: "OK: " and the files read on stdout, or every
// problem as FILE:LINE: ... on stderr. With asJSON it prints one JSON
// object on stdout instead: {"ok", "files", "errors": [{file, line, column,
// key, message}]}.
func (r Report) Write(stdout, stderr io.Writer, asJSON bool) error {
	if asJSON {
		type problem struct {
			File    string `json:"file,omitempty"`
			Line    int    `json:"line,omitempty"`
			Column  int    `json:"column,omitempty"`
			Key     string `json:"key,omitempty"`
			Message string `json:"message"`
		}
		v := struct {
			OK     bool      `json:"ok"`
			Files  []string  `json:"files"`
			Errors []problem `json:"errors"`
		}{OK: r.OK(), Files: r.Files, Errors: []problem{}}
		if v.Files == nil {
			v.Files = []string{}
		}
		for _, p := range r.Problems {
			v.Errors = append(v.Errors, problem{p.File, p.Line, p.Column, p.Key, p.Msg})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if !r.OK() {
		var b strings.Builder
		for _, p := range r.Problems {
			b.WriteString(p.Error() + "\n")
		}
		_, err := io.WriteString(stderr, b.String())
		return err
	}
	var err error
	if len(r.Files) == 0 {
		_, err = fmt.Fprintln(stdout, "OK: no configuration files; the built-in defaults apply")
	} else {
		_, err = fmt.Fprintln(stdout, "OK: "+strings.Join(r.Files, ", "))
	}
	return err
}
