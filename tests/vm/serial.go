package vm

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
)

// lineScanner cuts a growing serial log into lines and remembers how far
// WaitSerial has consumed it.
type lineScanner struct {
	off     int64  // bytes of the log read so far
	pending []byte // read but not yet consumed: complete lines and a partial one
}

// feed reads what the log gained since the last call.
func (s *lineScanner) feed(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // QEMU has not created it yet
		}
		return err
	}
	defer f.Close()
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	s.off += int64(len(b))
	s.pending = append(s.pending, b...)
	return err
}

// match looks for a line matching re from pending[*pos:], moving *pos past
// the complete lines it rejects so a waiting caller does not rescan them.
// A match is consumed with everything before it, so the next wait starts
// after it; a failed wait consumes nothing. The trailing partial line is
// tried too, since prompts ("login: ", "Shell> ") end without a newline.
func (s *lineScanner) match(re *regexp.Regexp, pos *int) (string, bool) {
	for *pos < len(s.pending) {
		rest := s.pending[*pos:]
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			if l := clean(rest); re.MatchString(l) {
				s.pending = s.pending[:0]
				*pos = 0
				return l, true
			}
			return "", false
		}
		l := clean(rest[:i])
		*pos += i + 1
		if l != "" && re.MatchString(l) {
			s.pending = append(s.pending[:0], s.pending[*pos:]...)
			*pos = 0
			return l, true
		}
	}
	return "", false
}

// clean drops terminal escape sequences and control characters, so patterns
// can be written against what a person would see.
func clean(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0x1b && i+1 < len(b) && b[i+1] == '[':
			// CSI: parameters and intermediates, then a final byte @..~.
			i += 2
			for i < len(b) && (b[i] < 0x40 || b[i] > 0x7e) {
				i++
			}
		case c == 0x1b && i+1 < len(b) && b[i+1] == ']':
			// OSC: up to BEL or ESC \.
			i += 2
			for i < len(b) && b[i] != 0x07 && !(b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\') {
				i++
			}
			if i < len(b) && b[i] == 0x1b {
				i++
			}
		case c == 0x1b:
			// Other escapes: intermediates (e.g. "(" of ESC ( B), then a final byte.
			i++
			for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f {
				i++
			}
		case c == '\b':
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case c < 0x20 && c != '\t', c == 0x7f:
		default:
			out = append(out, c)
		}
	}
	return strings.TrimRight(string(out), " \t")
}

// tailLines returns the last n non-empty cleaned lines of b.
func tailLines(b []byte, n int) string {
	var lines []string
	for _, l := range bytes.FieldsFunc(b, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if c := clean(l); c != "" {
			lines = append(lines, c)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readTail reads at most the last max bytes of a file.
func readTail(path string, max int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return b
}
