package config

import (
	"errors"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Other TOML files embed an update policy as one of their tables (a host
// spec's [update], which speedia-image writes out as /etc/speedia/update.toml).
// These three functions let such a file be read with this package's
// conventions: syntax errors with line and column, every key's line, typo
// suggestions, and the policy checked by the very decoder and Validate of
// Load.

// Document parses src, a TOML document named file, into its top-level table
// and a function giving the line of a key path in the form Error.Key uses
// ("users[1].name"); a key that is not written gets the line of its nearest
// written ancestor, or 0. A syntax error is returned as an *Error with line
// and column.
func Document(file string, src []byte) (map[string]any, func(key string) int, error) {
	var doc map[string]any
	_, err := toml.Decode(string(src), &doc)
	var pe toml.ParseError
	switch {
	case errors.As(err, &pe):
		line, col := position(string(src), pe.Position)
		return nil, nil, &Error{File: file, Line: line, Column: col, Msg: pe.Message, err: err}
	case err != nil:
		return nil, nil, &Error{File: file, Msg: err.Error(), err: err}
	}
	lines := keyLines(string(src))
	return doc, func(key string) int { return lineOf(lines, key) }, nil
}

// Suggest returns the candidate key closest to the unknown key, or "" when
// none is close enough to be a plausible typo. Keys are dotted paths; the
// last segment is compared, ignoring case and '-' versus '_'.
func Suggest(key string, candidates []string) string { return suggest(key, candidates) }

// Section loads an update policy that the file file carries as its table
// prefix (e.g. "update"). table is that table written out as a standalone
// update.toml document, the one a host will read; line gives the lines of
// file, as from Document. Section applies table over Default() and
// validates the result like Load. Every problem names file, the line in it
// and the full key ("update.reboot.strategy"); on problems the Config is
// the zero value.
func Section(file string, table []byte, prefix string, line func(key string) int) (Config, []*Error) {
	c, err := load(Default(), []source{{name: file, data: table}})
	problems := Problems(err)
	for _, e := range problems {
		e.Msg = prefixSuggestion(e.Msg, prefix)
		e.Key = strings.TrimSuffix(prefix+"."+e.Key, ".")
		e.File, e.Line, e.Column = file, line(e.Key), 0
	}
	return c, problems
}

// prefixSuggestion rewrites the key that decoder.unknown suggests so that
// it names the key in the embedding file.
func prefixSuggestion(msg, prefix string) string {
	const lead = "unknown key; did you mean "
	rest, ok := strings.CutPrefix(msg, lead)
	if !ok {
		return msg
	}
	s, err := strconv.Unquote(strings.TrimSuffix(rest, "?"))
	if err != nil {
		return msg
	}
	return lead + strconv.Quote(prefix+"."+s) + "?"
}
