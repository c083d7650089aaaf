//go:build integration

package configdrive_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/image/configdrive"
	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/units"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// Stand-ins for the only parts a container cannot give: a block device with
// a label (blkid) and mounting it (mount binds a directory instead: this
// kernel has no vfat either). Everything else is real: the unit, the runner,
// the generated script, useradd, the files it writes.
const (
	stubDir = "/var/lib/speedia-test/stub"
	logDir  = "/run/speedia-test"
	drive   = "/var/lib/speedia-test/drive" // the drive's files, as Read gives them
	empty   = "/var/lib/speedia-test/empty" // a drive labelled COMBUSTION without combustion/
)

var stubs = map[string]string{
	"blkid": `#!/bin/sh
echo "$*" >>` + logDir + `/blkid.log
case "$*" in
*LABEL=COMBUSTION*) echo /dev/speedia-test-empty ;;
*LABEL=ignition*) echo /dev/speedia-test-drive ;;
*) exit 2 ;;
esac
`,
	"mount": `#!/bin/sh
echo "$*" >>` + logDir + `/mount.log
for a; do target=$a; done
case "$*" in
*/dev/speedia-test-drive*) exec /usr/bin/mount --bind -o ro ` + drive + ` "$target" ;;
*/dev/speedia-test-empty*) exec /usr/bin/mount --bind -o ro ` + empty + ` "$target" ;;
esac
exec /usr/bin/mount "$@"
`,
	"ssh-keygen": `#!/bin/sh
echo "$*" >>` + logDir + `/ssh-keygen.log
`,
}

const dropIn = `[Service]
Environment=PATH=` + stubDir + `:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
`

const (
	rootKey  = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK root's "key" $(echo pwned) ` + "`id`" + ` \$HOME`
	aliceKey = "ssh-rsa AAAAB3NzaC1yc2E alice@laptop"
	phoneKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 alice@phone"
	policy   = "[update]\nstrategy = \"manual\"\n"
)

type host struct {
	t *testing.T
	h *testhost.Host
}

func (x host) sh(args ...string) string {
	x.t.Helper()
	out, err := x.h.Direct(context.Background(), args...)
	if err != nil {
		x.t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out)
}

func (x host) file(path string) string {
	x.t.Helper()
	s, err := x.h.ReadFile(path)
	if err != nil {
		x.t.Fatalf("read %s: %v", path, err)
	}
	return s
}

func (x host) exists(path string) bool {
	_, err := x.h.Direct(context.Background(), "test", "-e", path)
	return err == nil
}

// rerun runs the unit again as on a first boot: without the done marker.
func (x host) rerun() error {
	x.sh("rm", "-f", "/var/lib/speedia/firstboot.done")
	x.sh("systemctl", "reset-failed", units.Firstboot)
	_, err := x.h.Direct(context.Background(), "systemctl", "restart", units.Firstboot)
	return err
}

// journal is the output of the unit's last run.
func (x host) journal() string {
	x.t.Helper()
	x.sh("journalctl", "--sync")
	id := x.sh("systemctl", "show", "-P", "InvocationID", units.Firstboot)
	return x.sh("journalctl", "-o", "cat", "--no-pager", "_SYSTEMD_INVOCATION_ID="+id)
}

func TestFirstbootOnBootedHost(t *testing.T) {
	ctx := context.Background()
	s := &spec.Spec{
		Date:     time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Hostname: "speedia-fb",
		Users: []spec.User{
			{Name: "root", SSHKeys: []string{rootKey}},
			{Name: "alice", Groups: []string{"adm", "speedia-admin"}, SSHKeys: []string{aliceKey, phoneKey}},
			{Name: "bob", Shell: "/bin/sh"},
			// Made before, without a home (as Ignition may on MicroOS).
			{Name: "carol", SSHKeys: []string{phoneKey}},
		},
		Update: spec.Update{TOML: policy},
		Firstboot: spec.Firstboot{ScriptBody: []byte("#!/bin/sh\n" +
			"echo \"$(pwd) $#\" >>/var/lib/speedia-test/spec-script.log\n")},
	}
	img := filepath.Join(t.TempDir(), "seed.img")
	if err := configdrive.Write(s, img); err != nil {
		t.Fatal(err)
	}
	c, err := configdrive.Read(img)
	if err != nil {
		t.Fatal(err)
	}

	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-firstboot", Logf: t.Logf, Prepare: func(root string) error {
		if err := units.Install(root, nil); err != nil {
			return err
		}
		// No daemon binary here: keep its unit from restarting forever.
		if err := os.Symlink("/dev/null", filepath.Join(root, "etc/systemd/system", units.Service)); err != nil {
			return err
		}
		return os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// The stubs and the drive's files, in the shared /var.
	varDir := filepath.Join(h.Top, "@", "var")
	for name, body := range stubs {
		p := filepath.Join(varDir, strings.TrimPrefix(stubDir, "/var/"), name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range map[string][]byte{
		filepath.Join(drive, configdrive.ScriptPath):   c.Script,
		filepath.Join(drive, configdrive.IgnitionPath): c.Ignition,
		filepath.Join(empty, "README"):                 []byte("not a config drive\n"),
	} {
		p = filepath.Join(varDir, strings.TrimPrefix(p, "/var/"))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	x := host{t, h}

	t.Run("boot without a drive", func(t *testing.T) {
		x := host{t, h}
		if got := x.sh("systemctl", "is-enabled", units.Firstboot); got != "enabled" {
			t.Errorf("is-enabled = %q", got)
		}
		if got := x.sh("systemctl", "show", "-P", "ActiveState", units.Firstboot); got != "active" {
			t.Errorf("ActiveState = %q; journal:\n%s", got, x.journal())
		}
		if got := x.file("/var/lib/speedia/firstboot.done"); got != "source: none\n" {
			t.Errorf("done marker = %q", got)
		}
		if !strings.Contains(x.journal(), "speedia-firstboot: no config drive") {
			t.Errorf("journal:\n%s", x.journal())
		}
		if out, err := h.Direct(ctx, "systemd-analyze", "verify", units.Firstboot); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	x.sh("mkdir", "-p", logDir, "/run/systemd/system/"+units.Firstboot+".d")
	if err := h.WriteFile("/run/systemd/system/"+units.Firstboot+".d/stub.conf", dropIn); err != nil {
		t.Fatal(err)
	}
	x.sh("systemctl", "daemon-reload")

	t.Run("first boot with the drive", func(t *testing.T) {
		x := host{t, h}
		x.sh("useradd", "-M", "-s", "/bin/bash", "carol")
		if err := x.rerun(); err != nil {
			t.Fatalf("%v; journal:\n%s", err, x.journal())
		}
		journal := x.journal()
		// Combustion's label order; COMBUSTION's drive has no script.
		tried := strings.Split(strings.TrimSpace(x.file(logDir+"/blkid.log")), "\n")
		if len(tried) != 3 || !strings.Contains(tried[0], "LABEL=combustion") || !strings.Contains(tried[2], "LABEL=ignition") {
			t.Errorf("blkid calls: %q", tried)
		}
		if !strings.Contains(journal, "/dev/speedia-test-empty (label COMBUSTION) has no combustion/script") {
			t.Errorf("journal:\n%s", journal)
		}
		if m := x.file(logDir + "/mount.log"); !strings.Contains(m, "-o ro,nosuid,nodev,noexec /dev/speedia-test-drive ") {
			t.Errorf("mount calls: %q", m)
		}
		for _, want := range []string{"speedia-firstboot: hostname set to speedia-fb", "user alice created", "user alice added to group speedia-admin",
			"SSH key added for root", "made the missing home directory /home/carol of carol", "wrote /etc/speedia/update.toml", "running the spec's first-boot script", "speedia-firstboot: combustion/script done"} {
			if !strings.Contains(journal, want) {
				t.Errorf("journal lacks %q:\n%s", want, journal)
			}
		}
		if got := x.file("/etc/hostname"); got != "speedia-fb\n" {
			t.Errorf("/etc/hostname = %q", got)
		}
		if got := x.sh("hostname"); got != "speedia-fb" {
			t.Errorf("the running hostname is %q", got)
		}
		for user, want := range map[string]string{"alice": "/home/alice:/bin/bash", "bob": "/home/bob:/bin/sh"} {
			if got := x.sh("getent", "passwd", user); !strings.HasSuffix(got, want) {
				t.Errorf("getent passwd %s = %q", user, got)
			}
		}
		if got := " " + x.sh("id", "-nG", "alice") + " "; !strings.Contains(got, " adm ") || !strings.Contains(got, " speedia-admin ") {
			t.Errorf("alice's groups: %q", got)
		}
		for _, k := range []struct{ user, home, keys string }{
			{"root", "/root", rootKey + "\n"},
			{"alice", "/home/alice", aliceKey + "\n" + phoneKey + "\n"},
			{"carol", "/home/carol", phoneKey + "\n"},
		} {
			if got := x.file(k.home + "/.ssh/authorized_keys"); got != k.keys {
				t.Errorf("%s's authorized_keys = %q, want %q", k.user, got, k.keys)
			}
			want := "700 " + k.user + " " + k.user + "\n600 " + k.user + " " + k.user
			if got := x.sh("stat", "-c", "%a %U %G", k.home+"/.ssh", k.home+"/.ssh/authorized_keys"); got != want {
				t.Errorf("%s's .ssh: %q, want %q", k.user, got, want)
			}
		}
		if got := x.sh("stat", "-c", "%a %U %G", "/home/carol"); got != "700 carol carol" {
			t.Errorf("carol's home: %q", got)
		}
		if x.exists("/home/bob/.ssh") {
			t.Error("bob got a .ssh without keys")
		}
		if got := x.file("/etc/speedia/update.toml"); got != policy {
			t.Errorf("update.toml = %q", got)
		}
		if got := x.sh("stat", "-c", "%a %U", "/etc/speedia/update.toml"); got != "644 root" {
			t.Errorf("update.toml: %s", got)
		}
		// Run from the copied combustion/ directory, without arguments.
		if got := x.file("/var/lib/speedia-test/spec-script.log"); !strings.HasSuffix(got, "/config 0\n") || strings.Count(got, "\n") != 1 {
			t.Errorf("spec script runs: %q", got)
		}
		if got := x.file("/var/lib/speedia/firstboot.done"); got != "source: /dev/speedia-test-drive (label ignition)\n" {
			t.Errorf("done marker = %q", got)
		}
		// No work directory left (the mount was in the unit's own namespace).
		if out := x.sh("sh", "-c", "ls -d /run/speedia-firstboot.* 2>/dev/null || :"); out != "" {
			t.Errorf("left behind: %s", out)
		}
		if got := x.file(logDir + "/ssh-keygen.log"); got != "-A\n" {
			t.Errorf("ssh-keygen calls: %q", got)
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		x := host{t, h}
		passwd, group, alice := x.file("/etc/passwd"), x.file("/etc/group"), x.file("/home/alice/.ssh/authorized_keys")
		// An admin's key without its final newline stays, on its own line.
		x.sh("sh", "-c", "printf 'ssh-ed25519 OTHER admin@x' >/root/.ssh/authorized_keys")
		if err := x.rerun(); err != nil {
			t.Fatalf("%v; journal:\n%s", err, x.journal())
		}
		if x.file("/etc/passwd") != passwd || x.file("/etc/group") != group || x.file("/home/alice/.ssh/authorized_keys") != alice {
			t.Error("a second run changed users, groups or alice's keys")
		}
		if got, want := x.file("/root/.ssh/authorized_keys"), "ssh-ed25519 OTHER admin@x\n"+rootKey+"\n"; got != want {
			t.Errorf("root's authorized_keys = %q, want %q", got, want)
		}
		journal := x.journal()
		for _, not := range []string{"created", "added to group", "SSH key added for alice", "hostname set"} {
			if strings.Contains(journal, not) {
				t.Errorf("second run: %q in the journal:\n%s", not, journal)
			}
		}
	})

	t.Run("a failing script leaves no marker", func(t *testing.T) {
		x := host{t, h}
		script := filepath.Join(varDir, strings.TrimPrefix(drive, "/var/"), configdrive.ScriptPath)
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho boom\nexit 3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(script, c.Script, 0o644)
		if err := x.rerun(); err == nil {
			t.Fatal("systemctl restart succeeded")
		}
		if got := x.sh("systemctl", "show", "-P", "ActiveState", units.Firstboot); got != "failed" {
			t.Errorf("ActiveState = %q", got)
		}
		if x.exists("/var/lib/speedia/firstboot.done") {
			t.Error("done marker written after a failure")
		}
		if j := x.journal(); !strings.Contains(j, "combustion/script failed (exit 3); it runs again at the next boot") {
			t.Errorf("journal:\n%s", j)
		}
	})

	t.Run("done: no probing, host keys still made", func(t *testing.T) {
		x := host{t, h}
		if err := x.rerun(); err != nil {
			t.Fatal(err)
		}
		x.sh("rm", "-f", logDir+"/blkid.log", logDir+"/ssh-keygen.log")
		x.sh("systemctl", "restart", units.Firstboot)
		if x.exists(logDir + "/blkid.log") {
			t.Errorf("probed for a drive although done: %s", x.file(logDir+"/blkid.log"))
		}
		if got := x.file(logDir + "/ssh-keygen.log"); got != "-A\n" {
			t.Errorf("ssh-keygen calls: %q", got)
		}
	})
}
