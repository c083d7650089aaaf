package vm

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		// OVMF's shell prompt as it comes over serial.
		{"\x1b[06;01H\x1b[1m\x1b[33m\x1b[40mShell> \x1b[0m\x1b[37m\x1b[40m", "Shell>"},
		{"\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J", ""},
		{"[  \x1b[0;32mOK\x1b[0m  ] Reached target", "[  OK  ] Reached target"},
		{"\x1b]0;title\x07after", "after"},
		{"\x1b]0;title\x1b\\after", "after"},
		{"abc\b\b d", "a d"},
		{"tab\there\x00\x7f", "tab\there"},
		{"cut at \x1b[1", "cut at"},
		{"lone esc\x1b", "lone esc"},
		{"\x1b(Bcharset", "charset"},
	}
	for _, tt := range tests {
		if got := clean([]byte(tt.in)); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLineScanner(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	var s lineScanner
	appendLog := func(b string) {
		t.Helper()
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(b)
		f.Close()
		if err := s.feed(log); err != nil {
			t.Fatal(err)
		}
	}
	// Each expect is one WaitSerial call that polls once.
	expect := func(re string, want string, ok bool) {
		t.Helper()
		pos := 0
		got, gotOK := s.match(regexp.MustCompile(re), &pos)
		if got != want || gotOK != ok {
			t.Errorf("match(%q) = %q, %v; want %q, %v", re, got, gotOK, want, ok)
		}
	}

	if err := s.feed(log); err != nil { // not created yet: not an error
		t.Fatal(err)
	}
	expect("boot", "", false)
	appendLog("BdsDxe: loading Boot0001\r\nUEFI Interactive Sh")
	expect("Interactive Shell", "", false) // the line is not complete yet...
	appendLog("ell v2.2\r\nEDK II\r\n")
	expect("Interactive Shell", "UEFI Interactive Shell v2.2", true) // ...now it is
	expect("BdsDxe", "", false)                                      // before the match above
	expect("NOPE", "", false)                                        // a failed wait consumes nothing
	expect("EDK", "EDK II", true)
	appendLog("\x1b[1mShell> \x1b[0m") // a prompt ends without a newline
	expect(`^Shell>$`, "Shell>", true)
	expect("Shell", "", false)
	appendLog("host login: ")
	expect("login:", "host login:", true)
}

func TestTailLines(t *testing.T) {
	b := []byte("one\r\n\r\ntwo\n\x1b[2J\nthree\rfour")
	if got := tailLines(b, 3); got != "two\nthree\nfour" {
		t.Errorf("tail = %q", got)
	}
	if got := tailLines(b, 10); got != "one\ntwo\nthree\nfour" {
		t.Errorf("tail = %q", got)
	}
}

func TestReadTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(readTail(p, 4)); got != "6789" {
		t.Errorf("readTail = %q", got)
	}
	if got := readTail(p+"missing", 4); got != nil {
		t.Errorf("missing file: %q", got)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 5}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if got := b.String(); got != "cdefg" {
		t.Errorf("tail = %q", got)
	}
}

func TestListensOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	ok, err := listensOn(os.Getpid(), port)
	if err != nil || !ok {
		t.Errorf("own listener: %v, %v", ok, err)
	}
	// Listening, but not by that process (PID 1 never holds our socket).
	if ok, _ := listensOn(1, port); ok {
		t.Error("listener attributed to PID 1")
	}
	l.Close()
	if ok, _ := listensOn(os.Getpid(), port); ok {
		t.Error("closed listener still seen")
	}
}

func TestNewKey(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen missing (package openssh-client)")
	}
	priv, pub, err := NewKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(priv); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(pub, "ssh-ed25519 ") || strings.Contains(pub, "\n") {
		t.Errorf("public line = %q", pub)
	}
}

// One wait polling several times must not rescan lines, nor miss a line
// that completes between polls.
func TestLineScannerPolls(t *testing.T) {
	var s lineScanner
	re := regexp.MustCompile("ready")
	pos := 0
	s.pending = []byte("a\nb\nrea")
	if _, ok := s.match(re, &pos); ok {
		t.Fatal("matched a partial line")
	}
	if pos != 4 {
		t.Errorf("pos = %d, want 4 (after the complete lines)", pos)
	}
	s.pending = append(s.pending, "dy now\nafter\n"...)
	if l, ok := s.match(re, &pos); !ok || l != "ready now" {
		t.Errorf("match = %q, %v", l, ok)
	}
	if string(s.pending) != "after\n" || pos != 0 {
		t.Errorf("pending = %q, pos %d", s.pending, pos)
	}
}
