package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/config"
)

// head is the required part of a spec, lines 1-4.
const head = "name = \"web-host\"\nversion = \"1.0.0\"\nbase = \"debian\"\ndate = 2026-11-22\n"

const (
	ed25519Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5ShBeoTS2H8hE60KszalkSnLnA64LDcXcYsZUeSDqD admin@example.com"
	rsaKey     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC5un7Q2f7lmcAWBm5VyFQZEKe/aKsrDROF3pF2aRp61Xn0/JPAfoSV0n3jBi7MnIjFarPKnhRJ3PtJnb5kUMjhRzgOX7uDSpNpuRog/msjbUI8vqdPtABbmvRjPFMD+bFQdzd/sXl8DOiiLI3b25i9eyIxwMXlWNqn7wWH5u9/tKctSymJZbpuxMACuzXsxskRMF1ISL+UZh+oTptc7E8zoyudjNpTikXj5yC7FzltGcgbh+p9foXUjeNZk1bst1H0g6URg5Oz6AsrgwzKDO4vwHRl7+IneK/jejNCL04AWhWAzBxXOcbDmnux5Y9Rr1tv5lmml5aCCVwpJRjYi1u1 r"
	ecdsaKey   = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBMaRkSc/J95WhdnO//GsvII+MhNKOcOkGPHQXc2Hxy77wSbQ7RL0K+0KoTfN+Gb071n5i45qbDsDg0ZVs+WZAuQ0WFh8zbb7LbVTr1nrEqMJQrOIZ4sWW0GJPsSky+8+Xg=="
)

// files is a fake file system for first-boot scripts, by path.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if s, ok := m[p]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
}

func parse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse("specs/web.toml", []byte(src), files(map[string]string{"specs/firstboot.sh": "#!/bin/sh\necho hi\n"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func needTZ(t *testing.T) {
	t.Helper()
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		t.Skip("no tzdata:", err)
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, s *Spec)
	}{
		{"debian", head, func(t *testing.T, s *Spec) {
			if !reflect.DeepEqual(s.Source, Source{Apt: []string{
				"http://deb.debian.org/debian bookworm main",
				"http://deb.debian.org/debian bookworm-updates main",
				"http://deb.debian.org/debian-security bookworm-security main",
			}}) {
				t.Errorf("Source = %+v", s.Source)
			}
		}},
		{"microos", strings.Replace(head, `"debian"`, `"microos"`, 1), func(t *testing.T, s *Spec) {
			if !reflect.DeepEqual(s.Source, Source{Repositories: []string{
				"https://download.opensuse.org/tumbleweed/repo/oss",
				"https://download.opensuse.org/update/tumbleweed",
			}}) {
				t.Errorf("Source = %+v", s.Source)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parse(t, tt.src)
			want := &Spec{
				File: "specs/web.toml", Hash: s.Hash,
				Name: "web-host", Version: "1.0.0", Base: Base(tt.name),
				Date:       time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
				Timezone:   "UTC",
				KernelArgs: []string{"console=tty0", "console=ttyS0,115200"},
				DiskSize:   4 << 30,
				Formats:    []Format{FormatQcow2},
				Update:     Update{Config: config.Default()},
				Source:     s.Source,
			}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("spec =\n%+v\nwant\n%+v", s, want)
			}
			if len(s.Hash) != 64 {
				t.Errorf("Hash = %q", s.Hash)
			}
			tt.check(t, s)
		})
	}
}

func TestParseEveryKey(t *testing.T) {
	needTZ(t)
	src := head + `hostname = "web1.example.com"
timezone = "Europe/Berlin"
kernel_args = ["quiet", "console=ttyS1"]
packages = ["htop", "libstdc++6", "python3.11", "patterns-base-minimal_base", "gcc:amd64"]
disk_size = "8 GiB"
formats = ["raw", "iso", "qcow2"]

[[users]]
name = "root"
ssh_keys = ["` + ed25519Key + `", "` + ecdsaKey + `"]

[[users]]
name = "deploy"
groups = ["sudo", "docker"]
shell = "/usr/bin/zsh"
ssh_keys = ["` + rsaKey + `"]

[source]
apt = ["https://mirror.example.com/debian bookworm main contrib non-free-firmware"]

[firstboot]
script = "firstboot.sh"
`
	s := parse(t, src)
	want := &Spec{
		File: "specs/web.toml", Hash: s.Hash, Update: s.Update,
		Name: "web-host", Version: "1.0.0", Base: BaseDebian,
		Date:       time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Hostname:   "web1.example.com",
		Timezone:   "Europe/Berlin",
		KernelArgs: []string{"quiet", "console=ttyS1"},
		Packages:   []string{"htop", "libstdc++6", "python3.11", "patterns-base-minimal_base", "gcc:amd64"},
		DiskSize:   8 << 30,
		Formats:    []Format{FormatRaw, FormatISO, FormatQcow2},
		Users: []User{
			{Name: "root", Shell: "/bin/bash", SSHKeys: []string{ed25519Key, ecdsaKey}},
			{Name: "deploy", Groups: []string{"sudo", "docker"}, Shell: "/usr/bin/zsh", SSHKeys: []string{rsaKey}},
		},
		Source:    Source{Apt: []string{"https://mirror.example.com/debian bookworm main contrib non-free-firmware"}},
		Firstboot: Firstboot{Script: "specs/firstboot.sh", ScriptBody: []byte("#!/bin/sh\necho hi\n")},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("spec =\n%+v\nwant\n%+v", s, want)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		date string
		want time.Time
	}{
		{"2026-11-22", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
		{"2026-11-22T10:30:00Z", time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)},
		{"2026-11-22T01:30:00+02:00", time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC)},
		{"2026-11-22 10:30:00.5-01:00", time.Date(2026, 11, 22, 11, 30, 0, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		s := parse(t, strings.Replace(head, "2026-11-22", tt.date, 1))
		if !s.Date.Equal(tt.want) || s.Date.Location() != time.UTC {
			t.Errorf("date = %s: Date = %v, want %v in UTC", tt.date, s.Date, tt.want)
		}
	}
}

func TestParseDiskSize(t *testing.T) {
	for in, want := range map[string]int64{
		`"4GiB"`: 4 << 30, `"2 GiB"`: 2 << 30, `"3072MiB"`: 3 << 30, `"1TiB"`: 1 << 40,
		`"3145728KiB"`: 3 << 30, `"2147483648B"`: 2 << 30, `"2147483648"`: 2 << 30, `2147483648`: 2 << 30,
	} {
		s := parse(t, head+"disk_size = "+in+"\n")
		if s.DiskSize != want {
			t.Errorf("disk_size = %s: %d, want %d", in, s.DiskSize, want)
		}
	}
}

// problem is what a test expects of one *Error.
type problem struct {
	line int
	key  string
	msg  string // a part of the message
}

func TestParseErrors(t *testing.T) {
	needTZ(t)
	user := head + "[[users]]\nname = \"root\"\n" // lines 5-6
	keys := func(k ...string) string {            // ssh_keys on line 7
		return user + "ssh_keys = [\"" + strings.Join(k, "\", \"") + "\"]\n"
	}
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{"all required missing", "", []problem{
			{0, "name", `missing (add name = "web-host")`},
			{0, "version", `missing (add version = "1.0.0")`},
			{0, "base", `missing (add base = "debian" or base = "microos")`},
			{0, "date", "missing (add the release date"},
		}},
		{"name", strings.Replace(head, `"web-host"`, `"Web_Host"`, 1), []problem{{1, "name", `"Web_Host" is not an image name`}}},
		{"name too long", strings.Replace(head, `"web-host"`, `"`+strings.Repeat("a", 64)+`"`, 1), []problem{{1, "name", "is not an image name"}}},
		{"name not a string", strings.Replace(head, `"web-host"`, `1`, 1), []problem{{1, "name", "must be a string, not an integer"}}},
		{"version", strings.Replace(head, `"1.0.0"`, `"1.0"`, 1), []problem{{2, "version", `"1.0" is not MAJOR.MINOR.PATCH (use digits, e.g. "1.0.0")`}}},
		{"version letters", strings.Replace(head, `"1.0.0"`, `"1.0.0-rc1"`, 1), []problem{{2, "version", "is not MAJOR.MINOR.PATCH"}}},
		{"version overflow", strings.Replace(head, `"1.0.0"`, `"1.0.99999999999"`, 1), []problem{{2, "version", "too large"}}},
		{"base", strings.Replace(head, `"debian"`, `"ubuntu"`, 1), []problem{{3, "base", `"ubuntu" is not a base (use "debian" or "microos")`}}},
		{"date string", strings.Replace(head, "2026-11-22", `"2026-11-22"`, 1), []problem{{4, "date", "write it without quotes"}}},
		{"date local datetime", strings.Replace(head, "2026-11-22", `2026-11-22T10:00:00`, 1), []problem{{4, "date", "has no UTC offset"}}},
		{"date time of day", strings.Replace(head, "2026-11-22", `10:00:00`, 1), []problem{{4, "date", "is a time of day"}}},
		{"date too early", strings.Replace(head, "2026-11-22", `1970-01-01`, 1), []problem{{4, "date", "before 1980"}}},
		{"date integer", strings.Replace(head, "2026-11-22", `20261122`, 1), []problem{{4, "date", "must be a date"}}},
		{"hostname dash", head + "hostname = \"-web\"\n", []problem{{5, "hostname", `"-web" is not a host name`}}},
		{"hostname upper", head + "hostname = \"Web1\"\n", []problem{{5, "hostname", "is not a host name"}}},
		{"hostname empty label", head + "hostname = \"web..example\"\n", []problem{{5, "hostname", "is not a host name"}}},
		{"hostname long label", head + "hostname = \"" + strings.Repeat("a", 64) + "\"\n", []problem{{5, "hostname", "is not a host name"}}},
		{"hostname too long", head + "hostname = \"" + strings.Repeat("a.", 127) + "a\"\n", []problem{{5, "hostname", "is not a host name"}}},
		{"timezone", head + "timezone = \"Mars/Olympus\"\n", []problem{{5, "timezone", `"Mars/Olympus" is not a known time zone`}}},
		{"timezone empty", head + "timezone = \"\"\n", []problem{{5, "timezone", "leave timezone out for UTC"}}},
		{"timezone Local", head + "timezone = \"Local\"\n", []problem{{5, "timezone", "is not a time zone"}}},
		{"kernel_args", head + "kernel_args = [\n\"quiet\",\n\"root=/dev/sda2\",\n\"ro\",\n\"a b\",\n'x=\"y\"',\n\"rootflags=subvol=@\",\n\"rw\",\n\"quiet\"]\n", []problem{
			{7, "kernel_args[1]", `"root=/dev/sda2" is set by the image`},
			{8, "kernel_args[2]", `"ro" is set by the image`},
			{9, "kernel_args[3]", "is not one kernel argument"},
			{10, "kernel_args[4]", "is not one kernel argument"},
			{11, "kernel_args[5]", `"rootflags=subvol=@" is set by the image`},
			{12, "kernel_args[6]", `"rw" is set by the image`},
			{13, "kernel_args[7]", `"quiet" is listed twice (also kernel_args[0]`},
		}},
		{"kernel_args not array", head + "kernel_args = \"quiet\"\n", []problem{{5, "kernel_args", "must be an array of strings"}}},
		{"packages", head + "packages = [\"htop\", \"foo bar\", 3, \"htop\", \"-x\"]\n", []problem{
			{5, "packages[1]", `"foo bar" is not a package name`},
			{5, "packages[2]", "must be a string, not an integer"},
			{5, "packages[3]", `"htop" is listed twice (also packages[0]; remove one)`},
			{5, "packages[4]", "is not a package name"},
		}},
		{"disk_size unit", head + "disk_size = \"4GB\"\n", []problem{{5, "disk_size", "units are binary"}}},
		{"disk_size word", head + "disk_size = \"big\"\n", []problem{{5, "disk_size", `"big" is not a size`}}},
		{"disk_size negative", head + "disk_size = \"-4GiB\"\n", []problem{{5, "disk_size", "is not a size"}}},
		{"disk_size small", head + "disk_size = \"1GiB\"\n", []problem{{5, "disk_size", "1GiB is smaller than the minimum, 2GiB"}}},
		{"disk_size small integer", head + "disk_size = -1\n", []problem{{5, "disk_size", "smaller than the minimum"}}},
		{"disk_size not MiB", head + "disk_size = 2147484672\n", []problem{{5, "disk_size", "2097153KiB is not a whole number of MiB (round it, e.g. to 2GiB)"}}},
		{"disk_size overflow", head + "disk_size = \"99999999TiB\"\n", []problem{{5, "disk_size", "too large"}}},
		{"disk_size float", head + "disk_size = 4.5\n", []problem{{5, "disk_size", "not a float"}}},
		{"formats", head + "formats = [\"qcow2\", \"vmdk\", \"qcow2\"]\n", []problem{
			{5, "formats[1]", `"vmdk" is not an image format (use "qcow2", "raw" or "iso")`},
			{5, "formats[2]", "listed twice"},
		}},
		{"formats empty", head + "formats = []\n", []problem{{5, "formats", "is empty"}}},
		{"unknown top-level keys", head + "hostnme = \"web1\"\ncolour = \"blue\"\n\"a.b\" = 1\n[updates]\n", []problem{
			{5, "hostnme", `unknown key; did you mean "hostname"?`},
			{6, "colour", "unknown key"},
			{7, `"a.b"`, "unknown key"},
			{8, "updates", `unknown key; did you mean "update"?`},
		}},
		{"unknown user key", keys(ed25519Key) + "sshkey = []\n", []problem{{8, "users[0].sshkey", `unknown key; did you mean "users[0].ssh_keys"?`}}},
		{"users not tables", head + "users = [\"root\"]\n", []problem{{5, "users", "must be an array of tables ([[users]])"}}},
		{"user name", head + "[[users]]\nname = \"Admin\"\n[[users]]\nshell = \"/bin/sh\"\n", []problem{
			{6, "users[0].name", `"Admin" is not a user name`},
			{7, "users[1].name", `missing (add name = "root" or another user name)`},
		}},
		{"user twice", user + "[[users]]\nname = \"root\"\n", []problem{{8, "users[1].name", `"root" is already users[0] (merge the two)`}}},
		{"root groups", user + "groups = [\"wheel\"]\n", []problem{{7, "users[0].groups", "root's groups are fixed"}}},
		{"groups", head + "[[users]]\nname = \"admin\"\ngroups = [\"sudo\", \"Bad Group\", \"sudo\"]\n", []problem{
			{7, "users[0].groups[1]", `"Bad Group" is not a group name`},
			{7, "users[0].groups[2]", "listed twice"},
		}},
		{"shell", user + "shell = \"bash\"\n", []problem{{7, "users[0].shell", `"bash" is not an absolute path`}}},
		{"shell not clean", user + "shell = \"/bin/../bin/bash\"\n", []problem{{7, "users[0].shell", "is not an absolute path"}}},
		{"ssh key type", keys("ssh-dss AAAAB3NzaC1kc3MAAACBAP== x"), []problem{{7, "users[0].ssh_keys[0]", `key type "ssh-dss" is not supported (use one of ecdsa-sha2-nistp256,`}}},
		{"ssh key options", keys("from=\\\"10.0.0.1\\\" " + ed25519Key), []problem{{7, "users[0].ssh_keys[0]", "is not supported"}}},
		{"ssh key base64", keys("ssh-ed25519 AAAA!!!! x"), []problem{{7, "users[0].ssh_keys[0]", "not valid base64"}}},
		{"ssh key type mismatch", keys(strings.Replace(ed25519Key, "ssh-ed25519", "ssh-rsa", 1)), []problem{{7, "users[0].ssh_keys[0]", "does not hold an ssh-rsa key"}}},
		{"ssh key truncated", keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5ShBeoTS2H8hE60KszalkSnLnA64LDcXcY"), []problem{{7, "users[0].ssh_keys[0]", "key data is damaged or cut short"}}},
		{"ssh key short", keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAUE="), []problem{{7, "users[0].ssh_keys[0]", "key data is damaged"}}},
		{"ssh key alone", keys("ssh-ed25519"), []problem{{7, "users[0].ssh_keys[0]", "is not an OpenSSH public key line"}}},
		{"ssh key newline", keys(ed25519Key + "\\n" + ed25519Key), []problem{{7, "users[0].ssh_keys[0]", "holds a line break"}}},
		{"update not a table", head + "update = \"weekly\"\n", []problem{{5, "update", "must be a table ([update])"}}},
		{"update keys", head + "[update.reboot]\nstratgy = \"manual\"\nstrategy = \"often\"\n[[update.reboot.window]]\ndays = \"Sun\"\nstart = \"25:00\"\nlength = \"2h\"\n[update.checks]\ninterval = \"1h\"\n", []problem{
			{6, "update.reboot.stratgy", `unknown key; did you mean "update.reboot.strategy"?`},
			{7, "update.reboot.strategy", `"often" is not a strategy`},
			{10, "update.reboot.window[0].start", `"25:00" is not a time of day`},
			{12, "update.checks", `unknown key; did you mean "update.check"?`},
		}},
		{"update window needed", head + "[update.reboot]\nwindow = []\n", []problem{{6, "update.reboot.window", "needs at least one [[reboot.window]]"}}},
		{"source", head + "[source]\napt = [\n\"deb http://deb.debian.org/debian bookworm main\",\n\"http://deb.debian.org/debian bookworm\",\n\"ftp://deb.debian.org/debian bookworm main\",\n\"[signed-by=/k.gpg] http://x/debian bookworm main\",\n\"http://deb.debian.org/debian bookworm ma!n\"]\nrepositories = [\"https://x/repo\"]\nyum = []\n", []problem{
			{7, "source.apt[0]", `starts with "deb" (leave it out`},
			{8, "source.apt[1]", "is not an apt repository line"},
			{9, "source.apt[2]", `"ftp://deb.debian.org/debian" is not an http or https URL`},
			{10, "source.apt[3]", "options in [...]"},
			{11, "source.apt[4]", `"ma!n" is not a suite or component name`},
			{12, "source.repositories", `is for base "microos" (use source.apt for debian)`},
			{13, "source.yum", "unknown key"},
		}},
		{"source microos", strings.Replace(head, `"debian"`, `"microos"`, 1) + "[source]\napt = [\"http://deb.debian.org/debian bookworm main\"]\nrepositories = [\"file:///srv/repo\", \"https://\"]\nrepository = []\n", []problem{
			{6, "source.apt", `is for base "debian" (use source.repositories for microos)`},
			{7, "source.repositories[0]", `"file:///srv/repo" is not an http or https URL`},
			{7, "source.repositories[1]", "is not an http or https URL"},
			{8, "source.repository", `unknown key; did you mean "source.repositories"?`},
		}},
		{"source empty", head + "[source]\napt = []\n", []problem{{6, "source.apt", "is empty"}}},
		{"source not a table", head + "source = \"debian\"\n", []problem{{5, "source", "must be a table ([source])"}}},
		{"firstboot missing script", head + "[firstboot]\nscrpt = \"x.sh\"\n", []problem{
			{5, "firstboot.script", "missing (add script ="},
			{6, "firstboot.scrpt", `unknown key; did you mean "firstboot.script"?`},
		}},
		{"firstboot no file", head + "[firstboot]\nscript = \"nope.sh\"\n", []problem{{6, "firstboot.script", "cannot read specs/nope.sh: file does not exist (the path is relative to the spec file's directory)"}}},
		{"firstboot empty", head + "[firstboot]\nscript = \"\"\n", []problem{{6, "firstboot.script", "is empty"}}},
		{"firstboot too large", head + "[firstboot]\nscript = \"big.sh\"\n", []problem{{6, "firstboot.script", "specs/big.sh is 1048576 bytes or larger"}}},
		{"every problem, by line", "name = \"X\"\nversion = \"1\"\n[[users]]\nname = \"root\"\nshell = \"sh\"\n[update.check]\ninterval = \"1s\"\n", []problem{
			{0, "base", "missing"},
			{0, "date", "missing"},
			{1, "name", "is not an image name"},
			{2, "version", "is not MAJOR.MINOR.PATCH"},
			{5, "users[0].shell", "is not an absolute path"},
			{7, "update.check.interval", "must be at least 1m"},
		}},
	}
	big := strings.Repeat("#", MaxScriptSize)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("specs/web.toml", []byte(tt.src), files(map[string]string{"specs/big.sh": big}))
			if err == nil {
				t.Fatalf("no error; spec %+v", s)
			}
			if s != nil {
				t.Errorf("spec %+v returned with errors", s)
			}
			got := config.Problems(err)
			for i := range max(len(got), len(tt.want)) {
				switch {
				case i >= len(got):
					t.Errorf("missing problem %+v", tt.want[i])
				case i >= len(tt.want):
					t.Errorf("unexpected problem %q", got[i])
				default:
					g, w := got[i], tt.want[i]
					if g.File != "specs/web.toml" || g.Line != w.line || g.Key != w.key || !strings.Contains(g.Msg, w.msg) {
						t.Errorf("problem %d = %q, want line %d, key %s, message with %q", i, g, w.line, w.key, w.msg)
					}
				}
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse("web.toml", []byte(strings.Replace(head, `"1.0.0"`, `"1.0"`, 1)+"timezone = 3\n"), nil)
	want := "web.toml:2: version: \"1.0\" is not MAJOR.MINOR.PATCH (use digits, e.g. \"1.0.0\")\n" +
		"web.toml:5: timezone: must be a string, not an integer"
	if err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
	_, err = Parse("web.toml", []byte("version = \"1.0.0\"\nbase = \"debian\"\ndate = 2026-11-22\n"), nil)
	if want := `web.toml: name: missing (add name = "web-host")`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse("web.toml", []byte(head+"packages = [\"htop\"\nhostname = \"x\"\n"), nil)
	ps := config.Problems(err)
	if len(ps) != 1 || ps[0].File != "web.toml" || ps[0].Line != 6 || ps[0].Column == 0 {
		t.Fatalf("problems = %q, want one at web.toml:6 with a column", ps)
	}
	if !strings.HasPrefix(err.Error(), "web.toml:6:") {
		t.Errorf("error = %q", err)
	}
}

func TestHashCoversScript(t *testing.T) {
	src := []byte(head + "[firstboot]\nscript = \"fb.sh\"\n")
	hash := func(script string) string {
		s, err := Parse("web.toml", src, files(map[string]string{"fb.sh": script}))
		if err != nil {
			t.Fatal(err)
		}
		return s.Hash
	}
	a, b := hash("echo a\n"), hash("echo b\n")
	if a == b {
		t.Errorf("hash %s did not change with the script", a)
	}
	if a != hash("echo a\n") {
		t.Errorf("hash is not stable")
	}
	if plain := parse(t, head).Hash; plain == a || plain == parse(t, head+"# comment\n").Hash {
		t.Errorf("hash %s does not depend on the spec's bytes", plain)
	}
}

func TestUpdateRoundTrip(t *testing.T) {
	needTZ(t)
	tests := []string{
		"[update]\n",
		"[update.reboot]\nstrategy = \"manual\"\n",
		`[update]
check.interval = "12h"
reboot = { timezone = "Europe/Berlin", blackout = ["2026-12-24..2026-12-26", "2027-01-01"], delay = "5m" }
[update.health]
critical_units = ["nginx.service"]
max_attempts = 3
[update.metrics]
listen = "127.0.0.1:9846"
[update.containers]
enabled = false
`,
		`[update.reboot]
timezone = "Europe/Berlin"
[[update.reboot.window]]
days = "Mon..Fri"
start = "22:30"
length = "90m"
[[update.reboot.window]]
days = "Sun"
start = "04:00"
length = "2h"
`,
	}
	for _, tail := range tests {
		s := parse(t, head+tail)
		if s.Update.TOML == "" || !strings.HasPrefix(s.Update.TOML, "#") {
			t.Fatalf("TOML = %q", s.Update.TOML)
		}
		if reflect.DeepEqual(s.Update.Config, config.Config{}) {
			t.Fatalf("Config not set")
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "update.toml"), []byte(s.Update.TOML), 0o644); err != nil {
			t.Fatal(err)
		}
		c, read, err := config.Load(config.Paths{Vendor: filepath.Join(dir, "none"), Admin: dir})
		if err != nil || len(read) != 1 {
			t.Fatalf("loading\n%s: %v (read %v)", s.Update.TOML, err, read)
		}
		if !reflect.DeepEqual(c, s.Update.Config) {
			t.Errorf("from\n%s\nloaded %+v\nspec has %+v", tail, c, s.Update.Config)
		}
	}
	// The values really come through, not only the defaults.
	s := parse(t, head+tests[3])
	if w := s.Update.Config.Reboot.Schedule.Windows; len(w) != 2 || w[0].Length != 90*time.Minute {
		t.Errorf("windows = %+v", w)
	}
	if s := parse(t, head+tests[2]); s.Update.Config.Check.Interval != 12*time.Hour || s.Update.Config.Containers.Enabled {
		t.Errorf("config = %+v", s.Update.Config)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing spec: %v, want fs.ErrNotExist", err)
	}

	write("fb.sh", "echo hi\n")
	s, err := Load(write("ok.toml", head+"[firstboot]\nscript = \"fb.sh\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Firstboot.Script != filepath.Join(dir, "fb.sh") || string(s.Firstboot.ScriptBody) != "echo hi\n" || s.File != filepath.Join(dir, "ok.toml") {
		t.Errorf("spec = %+v", s)
	}

	if err := os.Mkdir(filepath.Join(dir, "d.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("big.sh", strings.Repeat("#", MaxScriptSize))
	write("edge.sh", strings.Repeat("#", MaxScriptSize-1))
	for script, want := range map[string]string{
		"d.sh":         "not a regular file",
		"big.sh":       "1048576 bytes or larger",
		"nope.sh":      "no such file or directory",
		"edge.sh":      "",
		dir + "/fb.sh": "",
	} {
		_, err := Load(write("s.toml", head+"[firstboot]\nscript = \""+script+"\"\n"))
		switch {
		case want == "" && err != nil:
			t.Errorf("script %s: %v", script, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("script %s: error %v, want one with %q", script, err, want)
		}
	}
}

func TestExamples(t *testing.T) {
	needTZ(t)
	paths, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(paths) < 2 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	for _, p := range paths {
		s, err := Load(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if len(s.Users) == 0 || len(s.Users[0].SSHKeys) == 0 {
			t.Errorf("%s: no user with a key", p)
		}
		switch filepath.Base(p) {
		case "debian-web.toml":
			if s.Base != BaseDebian || !reflect.DeepEqual(s.Formats, []Format{FormatQcow2, FormatISO}) || len(s.Firstboot.ScriptBody) == 0 {
				t.Errorf("%s: %+v", p, s)
			}
			if w := s.Update.Config.Reboot.Schedule.Windows; len(w) != 1 || !w[0].Days[time.Sunday] {
				t.Errorf("%s: windows %+v, want one on Sunday", p, w)
			}
		case "microos.toml":
			if s.Base != BaseMicroOS || len(s.Source.Repositories) == 0 {
				t.Errorf("%s: %+v", p, s)
			}
		}
	}
}
