package configdrive

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/image/fat"
	"github.com/speedia/host/image/spec"
)

// Values a shell would expand or end a here-document at, if the script
// did not quote them.
const (
	rootKey  = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK root's "key" $(echo pwned) ` + "`id`" + ` \$HOME \\ 'x'`
	aliceKey = "ssh-rsa AAAAB3NzaC1yc2E alice@laptop"
	phoneKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 alice@phone"
	policy   = "[update]\nstrategy = \"periodic\"\n# $(reboot) `reboot`\nSPEEDIA_EOF\n"
	// No trailing newline; a line equal to the first delimiter choice.
	specScript = "#!/bin/sh -eu\n# combustion: network\n" +
		"{ printf 'spec\\036'; printf '%s\\036' \"$#\" \"$@\"; cat \"$0\"; printf '\\036\\037'; } >>\"$REC\"\n" +
		": <<'X'\nSPEEDIA_EOF\n$HOME `id`\nX"
)

var date = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func testSpec() *spec.Spec {
	return &spec.Spec{
		Name:     "web",
		Version:  "1.0.0",
		Date:     date,
		Hostname: "web-1",
		Users: []spec.User{
			{Name: "root", SSHKeys: []string{rootKey}},
			{Name: "alice", Groups: []string{"adm", "speedia-admin"}, SSHKeys: []string{aliceKey, phoneKey}},
			{Name: "bob", Shell: "/bin/sh"},
		},
		Update:    spec.Update{TOML: policy},
		Firstboot: spec.Firstboot{ScriptBody: []byte(specScript)},
	}
}

func writeDrive(t *testing.T, s *spec.Spec) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seed.img")
	if err := Write(s, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func tool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

func TestWriteIsReproducible(t *testing.T) {
	_, a := writeDrive(t, testSpec())
	p, b := writeDrive(t, testSpec())
	if !bytes.Equal(a, b) {
		t.Fatal("two drives of the same spec differ")
	}
	if len(a) != Size {
		t.Errorf("drive is %d bytes, want %d", len(a), Size)
	}
	// The bytes depend on the spec, its date included.
	later := testSpec()
	later.Date = date.Add(24 * time.Hour)
	if _, c := writeDrive(t, later); bytes.Equal(a, c) {
		t.Error("a different date gives the same bytes")
	}
	// Nothing from the wall clock: every entry carries the spec's date
	// (FAT keeps local time to 2 s), the serial is 0.
	tool(t, "mdir")
	for _, dir := range []string{"::/", "::/combustion", "::/ignition"} {
		out, err := exec.Command("mdir", "-i", p, "-a", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("mdir %s: %v\n%s", dir, err, out)
		}
		if !strings.Contains(string(out), "Serial Number is 0000-0000") {
			t.Errorf("mdir %s: serial is not 0:\n%s", dir, out)
		}
		entry := regexp.MustCompile(`(?m)^\S+\s+(?:\S+\s+)?(?:<DIR>|\d+)\s+(\d{4}-\d\d-\d\d\s+\d+:\d\d)`)
		ms := entry.FindAllStringSubmatch(string(out), -1)
		if len(ms) < 2 {
			t.Fatalf("mdir %s: no entries found:\n%s", dir, out)
		}
		for _, m := range ms {
			if strings.Join(strings.Fields(m[1]), " ") != "2001-02-03 4:05" {
				t.Errorf("mdir %s: entry dated %q, want the spec's 2001-02-03 4:05:\n%s", dir, m[1], out)
			}
		}
	}
}

// FAT cannot record times before 1980: an unset date gives its earliest.
func TestWriteWithoutDate(t *testing.T) {
	s := testSpec()
	s.Date = time.Time{}
	p, _ := writeDrive(t, s)
	tool(t, "mdir")
	out, err := exec.Command("mdir", "-i", p, "::/combustion").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1980-01-01") {
		t.Errorf("mdir: %v\n%s", err, out)
	}
}

func TestDriveCheckedByTools(t *testing.T) {
	s := testSpec()
	p, _ := writeDrive(t, s)
	script, _ := Script(s)
	ign, _ := Ignition(s)
	t.Run("fsck.fat", func(t *testing.T) {
		tool(t, "fsck.fat")
		if out, err := exec.Command("fsck.fat", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat -n: %v\n%s", err, out)
		}
	})
	t.Run("mtools", func(t *testing.T) {
		tool(t, "mdir")
		out, err := exec.Command("mdir", "-i", p, "::/combustion").CombinedOutput()
		if err != nil || !strings.Contains(string(out), " script") {
			t.Errorf("mdir ::/combustion does not list script: %v\n%s", err, out)
		}
		for path, want := range map[string][]byte{ScriptPath: script, IgnitionPath: ign} {
			out, err := exec.Command("mtype", "-i", p, "::/"+path).Output()
			if err != nil || !bytes.Equal(out, want) {
				t.Errorf("mtype %s: %v, content differs:\n%s", path, err, out)
			}
		}
	})
	t.Run("label", func(t *testing.T) {
		tool(t, "fatlabel")
		if out, err := exec.Command("fatlabel", p).Output(); err != nil || strings.TrimSpace(string(out)) != "ignition" {
			t.Errorf("fatlabel = %q, %v", out, err)
		}
	})
	t.Run("blkid", func(t *testing.T) {
		// udev names /dev/disk/by-label/ from this probe.
		tool(t, "blkid")
		out, err := exec.Command("blkid", "-p", "-o", "export", p).Output()
		if err != nil {
			t.Fatalf("blkid -p: %v", err)
		}
		for _, want := range []string{"\nLABEL=ignition\n", "\nTYPE=vfat\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("blkid -p lacks %q:\n%s", strings.TrimSpace(want), out)
			}
		}
	})
}

func TestReadRoundTrip(t *testing.T) {
	s := testSpec()
	p, _ := writeDrive(t, s)
	script, _ := Script(s)
	ign, _ := Ignition(s)
	c, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Label != Label || !bytes.Equal(c.Script, script) || !bytes.Equal(c.Ignition, ign) {
		t.Errorf("Read = label %q, script %d bytes (want %d), ignition %d bytes (want %d)",
			c.Label, len(c.Script), len(script), len(c.Ignition), len(ign))
	}

	// A drive made otherwise, with a script only (as for Combustion alone).
	other := filepath.Join(t.TempDir(), "other.img")
	f, err := os.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(fat.MinSize)
	err = fat.Write(f, 0, fat.MinSize, "COMBUSTION", date, []fat.File{{Path: "COMBUSTION/SCRIPT", Data: []byte("#!/bin/sh\n")}})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err = Read(other)
	if err != nil {
		t.Fatal(err)
	}
	if c.Label != "COMBUSTION" || string(c.Script) != "#!/bin/sh\n" || c.Ignition != nil {
		t.Errorf("Read = %q %q %q", c.Label, c.Script, c.Ignition)
	}

	notFAT := filepath.Join(t.TempDir(), "zero.img")
	os.WriteFile(notFAT, make([]byte, 1<<20), 0o644)
	if _, err := Read(notFAT); err == nil {
		t.Error("Read accepted a file of zeros")
	}
}

func TestWriteRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*spec.Spec)
		is   error
	}{
		{"nothing to do", func(s *spec.Spec) {
			*s = spec.Spec{Date: date, Users: []spec.User{{Name: "root"}}}
		}, ErrEmpty},
		{"key spans lines", func(s *spec.Spec) { s.Users[1].SSHKeys[0] += "\nssh-rsa B" }, ErrUnsafe},
		{"empty key", func(s *spec.Spec) { s.Users[1].SSHKeys[0] = " " }, ErrUnsafe},
		{"NUL in script", func(s *spec.Spec) { s.Firstboot.ScriptBody = []byte("a\x00b") }, ErrUnsafe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec()
			tc.edit(s)
			out := filepath.Join(t.TempDir(), "seed.img")
			err := Write(s, out)
			if !errors.Is(err, tc.is) {
				t.Fatalf("Write = %v, want %v", err, tc.is)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused drive was written")
			}
		})
	}
	// Any one thing is enough.
	for name, s := range map[string]spec.Spec{
		"hostname": {Hostname: "h"},
		"root key": {Users: []spec.User{{Name: "root", SSHKeys: []string{aliceKey}}}},
		"a user":   {Users: []spec.User{{Name: "bob"}}},
		"policy":   {Update: spec.Update{TOML: "[update]\n"}},
		"script":   {Firstboot: spec.Firstboot{ScriptBody: []byte("true\n")}},
	} {
		if _, err := Script(&s); err != nil {
			t.Errorf("%s only: %v", name, err)
		}
	}
}

// The Ignition config, read as Ignition reads it (field names from the
// 3.2.0 spec; real Ignition 2.20's v3_2.Parse accepted this output without
// a warning when this was written).
func TestIgnitionConfig(t *testing.T) {
	type file struct {
		Path      string
		Overwrite bool
		Mode      int
		Contents  struct{ Source string }
	}
	type user struct {
		Name              string
		Groups            []string
		Shell             string
		SSHAuthorizedKeys []string
	}
	type config struct {
		Ignition struct{ Version string }
		Passwd   struct{ Users []user }
		Storage  struct{ Files []file }
	}
	parse := func(t *testing.T, s *spec.Spec) config {
		t.Helper()
		b, err := Ignition(s)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var c config
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		return c
	}
	data := func(t *testing.T, f file) string {
		t.Helper()
		enc, ok := strings.CutPrefix(f.Contents.Source, "data:;base64,")
		if !ok {
			t.Fatalf("%s: source %q is not a base64 data URL", f.Path, f.Contents.Source)
		}
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	c := parse(t, testSpec())
	if c.Ignition.Version != "3.2.0" {
		t.Errorf("version %q", c.Ignition.Version)
	}
	wantUsers := []user{
		{Name: "root", SSHAuthorizedKeys: []string{rootKey}},
		{Name: "alice", Groups: []string{"adm", "speedia-admin"}, Shell: "/bin/bash", SSHAuthorizedKeys: []string{aliceKey, phoneKey}},
		{Name: "bob", Shell: "/bin/sh"},
	}
	if !reflect.DeepEqual(c.Passwd.Users, wantUsers) {
		t.Errorf("users = %+v\nwant %+v", c.Passwd.Users, wantUsers)
	}
	want := map[string]string{"/etc/hostname": "web-1\n", "/etc/speedia/update.toml": policy}
	if len(c.Storage.Files) != len(want) {
		t.Errorf("files = %+v", c.Storage.Files)
	}
	for _, f := range c.Storage.Files {
		if got := data(t, f); got != want[f.Path] {
			t.Errorf("%s = %q, want %q", f.Path, got, want[f.Path])
		}
		if !f.Overwrite || f.Mode != 420 {
			t.Errorf("%s: overwrite %v, mode %d; want true, 420 (0644)", f.Path, f.Overwrite, f.Mode)
		}
	}

	// Only what the spec has; root without keys is left alone; the policy
	// gets the newline the script's here-document gives it too.
	s := &spec.Spec{Users: []spec.User{{Name: "root"}}, Update: spec.Update{TOML: "[update]"}}
	c = parse(t, s)
	if len(c.Passwd.Users) != 0 || len(c.Storage.Files) != 1 || data(t, c.Storage.Files[0]) != "[update]\n" {
		t.Errorf("policy only: %+v", c)
	}
	if b, _ := Ignition(s); strings.Contains(string(b), `"passwd"`) || strings.Contains(string(b), "hostname") {
		t.Errorf("policy only:\n%s", b)
	}
}

// shells are the POSIX shells the script must work with: dash is Debian's
// /bin/sh; MicroOS's is bash.
func shells(t *testing.T) [][]string {
	var out [][]string
	for _, sh := range [][]string{{"dash"}, {"bash", "--posix"}, {"busybox", "sh"}} {
		if _, err := exec.LookPath(sh[0]); err == nil {
			out = append(out, sh)
		}
	}
	if len(out) == 0 {
		t.Skip("no shell")
	}
	return out
}

func TestScriptParses(t *testing.T) {
	for _, s := range []*spec.Spec{testSpec(), {Hostname: "h"}} {
		script, err := Script(s)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "script")
		os.WriteFile(p, script, 0o755)
		for _, sh := range shells(t) {
			if out, err := exec.Command(sh[0], append(sh[1:], "-n", p)...).CombinedOutput(); err != nil {
				t.Errorf("%v -n: %v\n%s", sh, err, out)
			}
		}
		if !bytes.HasPrefix(script, []byte("#!/bin/sh\n")) {
			t.Error("no #!/bin/sh")
		}
	}
	// Combustion reads "# combustion:" lines as flags; ours needs none.
	script, _ := Script(&spec.Spec{Hostname: "h", Update: spec.Update{TOML: "x"}})
	if regexp.MustCompile(`(?m)^# combustion:`).Match(script) {
		t.Errorf("the script sets Combustion flags:\n%s", script)
	}
}

// call is one step the script asked for, with its arguments.
type call []string

// runStubbed runs the generated script with its steps replaced by stubs that
// record their arguments (functions defined later win): what reaches each
// step, after the shell has read the quoting and the here-documents, must be
// the spec's values exactly. The spec's script runs for real. The steps
// themselves run for real in the integration test.
func runStubbed(t *testing.T, sh []string, s *spec.Spec, args ...string) []call {
	t.Helper()
	script, err := Script(s)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(string(script), prologue)
	if !ok {
		t.Fatal("the script does not start with the prologue")
	}
	stubs := `
rec() { for a; do printf '%s\036' "$a"; done; printf '\037'; } >>"$REC"
set_hostname() { rec set_hostname "$@"; }
add_user() { rec add_user "$@"; }
add_group() { rec add_group "$@"; }
add_key() { rec add_key "$@"; }
install_file() { rec install_file "$1" "$(cat)"; }
`
	dir := t.TempDir()
	p := filepath.Join(dir, "script")
	os.WriteFile(p, []byte(prologue+stubs+rest), 0o755)
	rec := filepath.Join(dir, "rec")
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o755)
	cmd := exec.Command(sh[0], append(append(sh[1:], p), args...)...)
	cmd.Env = append(os.Environ(), "REC="+rec, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", sh, err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("%v: temporary files left: %v", sh, left)
	}
	b, _ := os.ReadFile(rec)
	var calls []call
	for _, c := range strings.Split(strings.TrimSuffix(string(b), "\037"), "\037") {
		if c != "" {
			calls = append(calls, strings.Split(strings.TrimSuffix(c, "\036"), "\036"))
		}
	}
	return calls
}

func TestScriptPassesValuesExactly(t *testing.T) {
	s := testSpec()
	// What the spec's script recorded: its argument count, then itself.
	ran := func(args ...string) call {
		return append(append(call{"spec"}, args...), specScript+"\n")
	}
	for _, sh := range shells(t) {
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			got := runStubbed(t, sh, s)
			want := []call{
				{"set_hostname", "web-1"},
				{"add_key", "root", rootKey},
				{"add_user", "alice", "/bin/bash"},
				{"add_group", "alice", "adm"},
				{"add_group", "alice", "speedia-admin"},
				{"add_key", "alice", aliceKey},
				{"add_key", "alice", phoneKey},
				{"add_user", "bob", "/bin/sh"},
				// $(cat) drops the trailing newline.
				{"install_file", "/etc/speedia/update.toml", strings.TrimSuffix(policy, "\n")},
				ran("0"),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("calls:\n%q\nwant:\n%q", got, want)
			}
			// Combustion's prepare call, in the initrd, is for the spec's
			// script only.
			got = runStubbed(t, sh, s, "--prepare")
			if want := []call{ran("1", "--prepare")}; !reflect.DeepEqual(got, want) {
				t.Errorf("--prepare calls:\n%q\nwant:\n%q", got, want)
			}
		})
	}
}

func TestHereDocDelimiter(t *testing.T) {
	for text, want := range map[string]string{
		"a\nb\n":                               "SPEEDIA_EOF",
		"SPEEDIA_EOF\n":                        "SPEEDIA_EOF_1",
		"x\nSPEEDIA_EOF\nSPEEDIA_EOF_1":        "SPEEDIA_EOF_2",
		" SPEEDIA_EOF\nSPEEDIA_EOF \nSPEEDIA_": "SPEEDIA_EOF", // only whole lines end it
	} {
		if got := hereDoc(text); got != want {
			t.Errorf("hereDoc(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestInterpreter(t *testing.T) {
	for body, want := range map[string]string{
		"echo hi\n":                    "/bin/sh",
		"#!/bin/bash\necho\n":          "'/bin/bash'",
		"#! /bin/sh -eu\n":             "'/bin/sh' '-eu'",
		"#!/usr/bin/env python3 -u\n":  "'/usr/bin/env' 'python3 -u'", // the kernel passes one argument
		"#!/bin/bash\r\n":              "'/bin/bash'",
		"#!\n":                         "/bin/sh",
		"#!/opt/it's here/sh\tx \n":    `'/opt/it'\''s' 'here/sh` + "\tx'",
		"# not a shebang\n#!/bin/bash": "/bin/sh",
	} {
		if got := interpreter(body); got != want {
			t.Errorf("interpreter(%q) = %s, want %s", body, got, want)
		}
	}
}
