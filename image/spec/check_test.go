package spec

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
)

// wire builds an SSH public key blob of length-prefixed strings.
func wire(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestCheckSSHKey(t *testing.T) {
	key32 := strings.Repeat("k", 32)
	tests := []struct {
		line string
		ok   bool
	}{
		{ed25519Key, true},
		{rsaKey, true},
		{ecdsaKey, true},
		{"ssh-ed25519 " + wire("ssh-ed25519", key32), true}, // no comment
		{"ssh-ed25519  " + wire("ssh-ed25519", key32) + "  two words", true},
		{"sk-ssh-ed25519@openssh.com " + wire("sk-ssh-ed25519@openssh.com", key32, "ssh:") + " yubikey", true},
		{"sk-ecdsa-sha2-nistp256@openssh.com " + wire("sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", "\x04point", "ssh:"), true},
		{"ecdsa-sha2-nistp521 " + wire("ecdsa-sha2-nistp521", "nistp521", "\x04point"), true},
		{"ssh-ed25519 " + wire("ssh-ed25519", key32[:31]), false},                          // short key
		{"ssh-ed25519 " + wire("ssh-ed25519", key32, "extra"), false},                      // extra part
		{"ssh-ed25519 " + wire("ssh-ed25519", key32) + "AAAA", false},                      // trailing bytes
		{"sk-ssh-ed25519@openssh.com " + wire("sk-ssh-ed25519@openssh.com", key32), false}, // no application
		{"ssh-rsa " + wire("ssh-rsa"), false},
		{"ssh-rsa " + wire("ssh-rsaX", "e", "n"), false},
		{"ssh-ed25519 " + base64.StdEncoding.EncodeToString([]byte{0, 0}), false},
		{"ssh-ed25519 " + base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff, 0xff}), false},
		{"ssh-ed25519 " + wire("ssh-ed25519", key32)[1:], false}, // one character lost
		{"", false},
		{"ssh-ed25519 " + wire("ssh-ed25519", key32) + "\rx", false},
	}
	for _, tt := range tests {
		msg := checkSSHKey(tt.line)
		if (msg == "") != tt.ok {
			t.Errorf("checkSSHKey(%q) = %q, want ok %t", tt.line, msg, tt.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4GiB", 4 << 30, true},
		{" 4 GiB ", 4 << 30, true},
		{"0B", 0, true},
		{"8388608TiB", 0, false}, // 2^63: one past the largest
		{"8388607TiB", 8388607 << 40, true},
		{"4gib", 0, false},
		{"4G", 0, false},
		{"4.5GiB", 0, false},
		{"GiB", 0, false},
		{"", 0, false},
		{"+4GiB", 4 << 30, true},
	}
	for _, tt := range tests {
		got, msg := parseSize(tt.in)
		if (msg == "") != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %q; want %d, ok %t", tt.in, got, msg, tt.want, tt.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1: "1B", 1536: "1536B", 2048: "2KiB", 2 << 30: "2GiB", 3 << 40: "3TiB", 1<<20 + 1: "1048577B"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheckHostname(t *testing.T) {
	for s, ok := range map[string]bool{
		"web1": true, "web-1.example.com": true, "1web": true, "a": true,
		strings.Repeat("a", 63): true, strings.Repeat("a.", 126) + "a": true,
		"": false, "web_1": false, "web-": false, "web.": false, ".web": false, "wéb": false,
	} {
		if got := checkHostname(s) == ""; got != ok {
			t.Errorf("checkHostname(%q) ok = %t, want %t", s, got, ok)
		}
	}
}
