package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml v1.5.0 keeps key positions private (MetaData.keyInfo), and
// its one key per dotted name cannot tell [[reboot.window]] elements apart.
// keyLines is a small scan of a document the parser has accepted, mapping
// each key path, in the form Error.Key uses ("reboot.window[1].start",
// "health.critical_units[2]"), to the line it is written on. Tables map to
// their header line; implicit parents to the first line that names them.
func keyLines(src string) map[string]int {
	s := &scanner{src: strings.TrimPrefix(src, "\ufeff"), line: 1, lines: map[string]int{}, aot: map[string]int{}}
	s.document()
	return s.lines
}

// lineOf is the line of key, or of its nearest ancestor that has one; 0 if none.
func lineOf(lines map[string]int, key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if n, ok := lines[k]; ok {
			return n
		}
	}
	return 0
}

// parentKey strips the last segment: "a.b[1]" -> "a.b", "a.b" -> "a".
func parentKey(k string) string {
	if strings.HasSuffix(k, "]") {
		if i := strings.LastIndexByte(k, '['); i >= 0 {
			return k[:i]
		}
	}
	// Walk back over a trailing quoted segment, which may hold dots.
	end := len(k)
	if strings.HasSuffix(k, `"`) {
		for i := len(k) - 2; i >= 0; i-- {
			if k[i] == '"' && (i == 0 || k[i-1] != '\\') {
				end = i
				break
			}
		}
	}
	if i := strings.LastIndexByte(k[:end], '.'); i >= 0 {
		return k[:i]
	}
	return ""
}

// joinKey appends one segment, quoting it the way toml.Key.String does.
func joinKey(parent, seg string) string {
	if !isBare(seg) {
		seg = strconv.Quote(seg)
	}
	if parent == "" {
		return seg
	}
	return parent + "." + seg
}

func indexKey(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

type scanner struct {
	src   string
	i     int
	line  int
	lines map[string]int
	aot   map[string]int // array-of-tables path -> elements seen
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) has(prefix string) bool { return strings.HasPrefix(s.src[s.i:], prefix) }

func (s *scanner) advance(n int) {
	for ; n > 0 && !s.eof(); n-- {
		if s.src[s.i] == '\n' {
			s.line++
		}
		s.i++
	}
}

func (s *scanner) first(key string, line int) {
	if _, ok := s.lines[key]; !ok {
		s.lines[key] = line
	}
}

func (s *scanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.i++
	}
}

// skipBlank skips white space, newlines and comments (inside arrays).
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance(1)
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (s *scanner) skipLine() {
	for !s.eof() && s.peek() != '\n' {
		s.i++
	}
	s.advance(1)
}

func (s *scanner) document() {
	table := ""
	for !s.eof() {
		s.skipSpace()
		switch c := s.peek(); {
		case c == '\n' || c == '\r' || c == '#':
			s.skipLine()
		case c == '[':
			table = s.header()
			s.skipLine()
		default:
			before := s.i
			s.keyValue(table)
			s.skipLine()
			if s.i == before { // cannot happen on valid TOML; never spin
				s.advance(1)
			}
		}
	}
}

// header reads [a.b] or [[a.b]] and returns the table's path.
func (s *scanner) header() string {
	line := s.line
	aot := s.has("[[")
	if aot {
		s.advance(2)
	} else {
		s.advance(1)
	}
	segs := s.key()
	path := ""
	for i, seg := range segs {
		path = joinKey(path, seg)
		if aot && i == len(segs)-1 {
			s.first(path, line)
			n := s.aot[path]
			s.aot[path] = n + 1
			path = indexKey(path, n)
		} else if n, ok := s.aot[path]; ok {
			path = indexKey(path, n-1)
		}
		s.first(path, line)
	}
	return path
}

// keyValue reads key = value inside table.
func (s *scanner) keyValue(table string) {
	line := s.line
	path := table
	for _, seg := range s.key() {
		path = joinKey(path, seg)
		s.first(path, line)
	}
	s.skipSpace()
	if s.peek() != '=' {
		return
	}
	s.advance(1)
	s.skipSpace()
	s.value(path)
}

// key reads a dotted key and returns its segments.
func (s *scanner) key() []string {
	var segs []string
	for !s.eof() {
		s.skipSpace()
		switch s.peek() {
		case '"':
			segs = append(segs, s.basicString())
		case '\'':
			segs = append(segs, s.literalString())
		default:
			start := s.i
			for !s.eof() && isBareByte(s.peek()) {
				s.i++
			}
			if s.i == start {
				return segs
			}
			segs = append(segs, s.src[start:s.i])
		}
		s.skipSpace()
		if s.peek() != '.' {
			return segs
		}
		s.advance(1)
	}
	return segs
}

func isBareByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value skips one value, recording the lines of array elements and of
// inline table keys below path.
func (s *scanner) value(path string) {
	s.first(path, s.line)
	switch {
	case s.has(`"""`):
		s.multiline(`"""`, true)
	case s.has(`'''`):
		s.multiline(`'''`, false)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.advance(1)
		for n := 0; ; n++ {
			s.skipBlank()
			if s.eof() || s.peek() == ']' {
				break
			}
			before := s.i
			s.value(indexKey(path, n))
			s.skipBlank()
			if s.peek() == ',' {
				s.advance(1)
			} else if s.i == before {
				break
			}
		}
		s.advance(1)
	case s.peek() == '{':
		s.advance(1)
		for {
			s.skipBlank()
			if s.eof() || s.peek() == '}' {
				break
			}
			if s.peek() == ',' {
				s.advance(1)
				continue
			}
			before := s.i
			s.keyValue(path)
			if s.i == before {
				break
			}
		}
		s.advance(1)
	default: // number, bool, date: up to a delimiter
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.peek())) {
			s.i++
		}
	}
}

// basicString reads "..." and returns its value.
func (s *scanner) basicString() string {
	start := s.i
	s.advance(1)
	for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
		if s.peek() == '\\' {
			s.i++
		}
		s.advance(1)
	}
	s.advance(1)
	raw := s.src[start:min(s.i, len(s.src))]
	if v, err := strconv.Unquote(raw); err == nil {
		return v
	}
	return strings.Trim(raw, `"`)
}

// literalString reads '...' and returns its value.
func (s *scanner) literalString() string {
	s.advance(1)
	start := s.i
	for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
		s.i++
	}
	v := s.src[start:s.i]
	s.advance(1)
	return v
}

// multiline skips a """...""" or ”'...”' string; up to two more quotes
// right before the closing ones belong to the content.
func (s *scanner) multiline(quote string, escapes bool) {
	s.advance(3)
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.advance(2)
			continue
		}
		if s.has(quote) {
			s.advance(3)
			for extra := 0; extra < 2 && s.peek() == quote[0]; extra++ {
				s.advance(1)
			}
			return
		}
		s.advance(1)
	}
}
