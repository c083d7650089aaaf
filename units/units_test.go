package units

import (
	"bufio"
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func dummyBinary(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "speedia-updated")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkTree(t *testing.T, root, binContent string) {
	t.Helper()
	bin := filepath.Join(root, "usr/bin/speedia-updated")
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("%s: mode %v, want 0755", bin, st.Mode().Perm())
	}
	if b, _ := os.ReadFile(bin); string(b) != binContent {
		t.Errorf("%s = %q, want %q", bin, b, binContent)
	}
	for _, f := range Files() {
		want, err := Content(f.Name)
		dst := filepath.Join(root, f.Path)
		if f.Optional && err != nil {
			if _, err := os.Lstat(dst); err == nil {
				t.Errorf("%s installed, but %s is not embedded", dst, f.Name)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(dst)
		if err != nil {
			t.Errorf("%s: %v", f.Name, err)
			continue
		}
		if st.Mode().Perm() != f.Perm() {
			t.Errorf("%s: mode %v, want %v", dst, st.Mode().Perm(), f.Perm())
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the embedded %s", dst, f.Name)
		}
	}
	for link, want := range map[string]string{
		EnableLink:          "/usr/lib/systemd/system/speedia-updated.service",
		FirstbootEnableLink: "/usr/lib/systemd/system/speedia-firstboot.service",
	} {
		got, err := os.Readlink(filepath.Join(root, link))
		if err != nil || got != want {
			t.Errorf("enablement link %s = %q, %v; want %s", link, got, err, want)
		}
	}
	// Nothing else: no temporary files left behind.
	var extra []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(info.Name(), ".") || strings.HasSuffix(p, ".speedia-tmp") {
			extra = append(extra, p)
		}
		return nil
	})
	if len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

func TestInstall(t *testing.T) {
	root := t.TempDir()
	if err := Install(root, map[string]string{"speedia-updated": dummyBinary(t, "v1")}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, "v1")

	// Again, with a new binary and stale links: same tree, new binary.
	for _, l := range []string{EnableLink, FirstbootEnableLink} {
		link := filepath.Join(root, l)
		os.Remove(link)
		os.Symlink("/dev/null", link)
	}
	if err := Install(root, map[string]string{"speedia-updated": dummyBinary(t, "v2")}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, "v2")
}

func TestUpdateTOMLOnlyWhenPresent(t *testing.T) {
	_, statErr := os.Stat("update.toml")
	_, embedErr := Content("update.toml")
	if (statErr == nil) != (embedErr == nil) {
		t.Fatalf("update.toml on disk: %v, embedded: %v", statErr, embedErr)
	}
	root := t.TempDir()
	if err := Install(root, nil); err != nil {
		t.Fatal(err)
	}
	_, err := os.Stat(filepath.Join(root, "usr/lib/speedia/update.toml"))
	if (err == nil) != (statErr == nil) {
		t.Fatalf("installed update.toml: %v; in units/: %v", err, statErr)
	}
}

func TestInstallErrors(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	for _, tc := range []struct {
		name    string
		root    string
		bins    map[string]string
		is      error
		mention string
	}{
		{"no root", "", nil, ErrNoRoot, ""},
		{"slash in name", t.TempDir(), map[string]string{"../x": "/bin/true"}, ErrBadName, "../x"},
		{"dot name", t.TempDir(), map[string]string{"..": "/bin/true"}, ErrBadName, ".."},
		{"missing binary", t.TempDir(), map[string]string{"speedia-updated": "/nonexistent/speedia-updated"}, os.ErrNotExist, "speedia-updated"},
		{"root is a file", notDir, nil, nil, "speedia-updated.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Install(tc.root, tc.bins)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not name %q", err, tc.mention)
			}
		})
	}
}

// Every file in this directory but Go code is installed somewhere.
func TestEveryFileInstalled(t *testing.T) {
	known := map[string]bool{}
	for _, f := range Files() {
		known[f.Name] = true
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".go") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !known[e.Name()] {
			t.Errorf("%s is not installed by Install (add it to files)", e.Name())
		}
	}
}

type catalogEntry struct {
	id     string
	header map[string]string
	body   string
}

func parseCatalog(t *testing.T, data []byte) []catalogEntry {
	t.Helper()
	var out []catalogEntry
	var cur *catalogEntry
	inHeader := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "-- "):
			out = append(out, catalogEntry{id: strings.TrimPrefix(line, "-- "), header: map[string]string{}})
			cur, inHeader = &out[len(out)-1], true
		case cur == nil:
			if strings.TrimSpace(line) != "" {
				t.Fatalf("text before the first entry: %q", line)
			}
		case inHeader && line == "":
			inHeader = false
		case inHeader:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("entry %s: bad header line %q", cur.id, line)
			}
			cur.header[k] = v
		default:
			cur.body += line + "\n"
		}
	}
	return out
}

// msgIDs reads the MESSAGE_ID constants from updater/msgid's source, so a new
// one without a catalog entry fails here.
func msgIDs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../updater/msgid/msgid.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					v, _ := strconv.Unquote(lit.Value)
					ids[v] = name.Name
				}
			}
		}
		return true
	})
	if len(ids) == 0 {
		t.Fatal("no message ids found in msgid.go")
	}
	return ids
}

// loggedFields reads, from the daemon's source, the journal fields each
// MESSAGE_ID is logged with (slog keys, uppercased by its journald handler):
// a field only some calls pass is left out, as the entry would show its bare
// name when it is missing.
func loggedFields(t *testing.T) map[string]map[string]bool {
	t.Helper()
	keyRe := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	out := map[string]map[string]bool{}
	var files []string
	for _, dir := range []string{"../updater/daemon", "../updater/containers", "../cmd/speedia-updated"} {
		m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		files = append(files, m...)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			id, keys := "", map[string]bool{}
			for _, a := range call.Args {
				switch a := a.(type) {
				case *ast.SelectorExpr:
					if x, ok := a.X.(*ast.Ident); ok && x.Name == "msgid" {
						id = a.Sel.Name
					}
				case *ast.BasicLit:
					if v, err := strconv.Unquote(a.Value); err == nil && keyRe.MatchString(v) && v != "message_id" {
						keys[strings.ToUpper(v)] = true
					}
				}
			}
			if id == "" {
				return true
			}
			if prev, ok := out[id]; ok {
				for k := range prev {
					if !keys[k] {
						delete(prev, k)
					}
				}
			} else {
				out[id] = keys
			}
			return true
		})
	}
	return out
}

func TestCatalogMatchesMsgID(t *testing.T) {
	data, err := Content("speedia-update.catalog")
	if err != nil {
		t.Fatal(err)
	}
	ids := msgIDs(t)
	fieldRe := regexp.MustCompile(`@([A-Z_]+)@`)
	fields := loggedFields(t)
	seen := map[string]bool{}
	idRe := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, e := range parseCatalog(t, data) {
		if !idRe.MatchString(e.id) {
			t.Errorf("bad MESSAGE_ID %q", e.id)
		}
		if seen[e.id] {
			t.Errorf("%s: two entries", e.id)
		}
		seen[e.id] = true
		if _, ok := ids[e.id]; !ok {
			t.Errorf("%s: not in updater/msgid", e.id)
		}
		if _, ok := fields[ids[e.id]]; !ok {
			t.Errorf("%s (%s): the daemon never logs it", e.id, ids[e.id])
		}
		if e.header["Subject"] == "" || e.header["Defined-By"] != "speedia-host" || e.header["Support"] == "" {
			t.Errorf("%s: header %v lacks Subject, Defined-By: speedia-host or Support", e.id, e.header)
		}
		if len(strings.TrimSpace(e.body)) < 40 {
			t.Errorf("%s: body too short: %q", e.id, e.body)
		}
		for _, m := range fieldRe.FindAllStringSubmatch(e.header["Subject"]+e.body, -1) {
			if !fields[ids[e.id]][m[1]] {
				t.Errorf("%s (%s): @%s@ is not a field the daemon logs with it", e.id, ids[e.id], m[1])
			}
		}
	}
	var missing []string
	for id, name := range ids {
		if !seen[id] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no catalog entry for %v", missing)
	}
}

// journalctl itself must accept the catalog (it skips what it cannot parse).
func TestCatalogJournalctl(t *testing.T) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed")
	}
	root := t.TempDir()
	if err := Install(root, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("journalctl", "--root="+root, "--update-catalog").CombinedOutput(); err != nil {
		t.Fatalf("journalctl --update-catalog: %v: %s", err, out)
	}
	out, err := exec.Command("journalctl", "--root="+root, "--list-catalog").CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v: %s", err, out)
	}
	for id := range msgIDs(t) {
		if !strings.Contains(string(out), id+" speedia-host: ") {
			t.Errorf("journalctl does not list %s:\n%s", id, out)
		}
	}
}

// systemd-analyze verify prints problems as warnings and still exits 0, so any
// output fails. ExecStart points at a stand-in binary: the real one is not on
// this machine (the integration test runs the unit itself).
func TestServiceVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	bin := dummyBinary(t, "#!/bin/sh\n")
	os.Chmod(bin, 0o755)
	edit := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	same := func(s string) string { return s }
	for _, tc := range []struct {
		unit, exec string
		name       string
		edit       func(string) string
		clean      bool
	}{
		{Service, "/usr/bin/speedia-updated", "as shipped", same, true},
		{Service, "/usr/bin/speedia-updated", "unknown key", edit("RestartSec=", "RestartSek="), false},
		{Service, "/usr/bin/speedia-updated", "bad value", edit("Restart=on-failure", "Restart=sometimes"), false},
		{Firstboot, "/usr/lib/speedia/speedia-firstboot", "as shipped", same, true},
		{Firstboot, "/usr/lib/speedia/speedia-firstboot", "unknown key", edit("PrivateMounts=", "PrivateMount="), false},
		{Firstboot, "/usr/lib/speedia/speedia-firstboot", "bad value", edit("Type=oneshot", "Type=twoshot"), false},
	} {
		t.Run(tc.unit+" "+tc.name, func(t *testing.T) {
			unit, err := Content(tc.unit)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(unit), "ExecStart="+tc.exec) {
				t.Fatalf("%s does not run %s", tc.unit, tc.exec)
			}
			s := strings.Replace(string(unit), tc.exec, bin, 1)
			p := filepath.Join(t.TempDir(), tc.unit)
			if err := os.WriteFile(p, []byte(tc.edit(s)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
			clean := err == nil && len(bytes.TrimSpace(out)) == 0
			if clean != tc.clean {
				t.Fatalf("systemd-analyze verify: clean=%v, want %v: %v\n%s", clean, tc.clean, err, out)
			}
		})
	}
}

// The first-boot script is POSIX sh: each shell here must parse it (the
// integration test runs it on a booted host).
func TestFirstbootScriptParses(t *testing.T) {
	script, err := Content("speedia-firstboot")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(script, []byte("#!/bin/sh\n")) {
		t.Errorf("speedia-firstboot does not start with #!/bin/sh")
	}
	p := filepath.Join(t.TempDir(), "speedia-firstboot")
	os.WriteFile(p, script, 0o755)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, append(script, []byte("\nif true; then\n")...), 0o755)
	ran := 0
	for _, sh := range [][]string{{"dash"}, {"busybox", "sh"}, {"bash", "--posix"}} {
		if _, err := exec.LookPath(sh[0]); err != nil {
			continue
		}
		ran++
		if out, err := exec.Command(sh[0], append(sh[1:], "-n", p)...).CombinedOutput(); err != nil {
			t.Errorf("%v -n: %v\n%s", sh, err, out)
		}
		if err := exec.Command(sh[0], append(sh[1:], "-n", bad)...).Run(); err == nil {
			t.Errorf("%v -n accepts a broken script: the check checks nothing", sh)
		}
	}
	if ran == 0 {
		t.Skip("no shell to check with")
	}
	if _, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command("shellcheck", "-s", "sh", p).CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
}

// dbus-daemon refuses to start on a policy it cannot parse; the booted-host
// integration test checks what the policy allows.
func TestBusPolicyParses(t *testing.T) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not installed")
	}
	policy, err := Content("org.speedia.Update1.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy string
		ok     bool
	}{
		{"as shipped", string(policy), true},
		{"bad attribute", strings.Replace(string(policy), `send_member="Get"`, `send_membr="Get"`, 1), false},
		{"send and receive mixed", strings.Replace(string(policy), `receive_type="signal"`, `send_type="signal"`, 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pf := filepath.Join(dir, "policy.conf")
			os.WriteFile(pf, []byte(tc.policy), 0o644)
			conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>speedia-test</type>
  <listen>unix:dir=` + dir + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow user="*"/></policy>
  <include>` + pf + `</include>
</busconfig>`
			cf := filepath.Join(dir, "bus.conf")
			os.WriteFile(cf, []byte(conf), 0o644)
			cmd := exec.Command("dbus-daemon", "--config-file="+cf, "--nofork", "--nopidfile", "--print-address")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The address is printed once the configuration is loaded and
			// the bus listens; on a bad configuration, stdout just closes.
			addr, _ := bufio.NewReader(stdout).ReadString('\n')
			cmd.Process.Kill()
			cmd.Wait()
			started := strings.HasPrefix(addr, "unix:")
			if started != tc.ok {
				t.Fatalf("dbus-daemon started=%v, want %v; stderr:\n%s", started, tc.ok, stderr.String())
			}
		})
	}
}
