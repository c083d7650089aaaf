package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/speedia/host/updater/config"
)

func runRoot(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut strings.Builder
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.Execute(); err != nil {
		return out.String(), errOut.String(), exitCode(err)
	}
	return out.String(), errOut.String(), 0
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"etc/update.toml":          "[check]\ninterval = \"12h\"\n",
		"etc/update.d/10-win.toml": "[reboot]\nstrategy = \"manual\"\n",
		"bad/update.toml":          "[check]\ninterval = 24h\n",
		"bad/update.d/20-x.toml":   "[snapshots]\nkeep = -1\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runRoot(t, "--check-config", dir+"/etc")
	if want := "OK: " + dir + "/etc/update.toml, " + dir + "/etc/update.d/10-win.toml\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("good: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	out, errOut, code = runRoot(t, "--check-config", dir+"/bad")
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if code != 1 || out != "" || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], dir+"/bad/update.toml:2:14: ") ||
		!strings.HasPrefix(lines[1], dir+"/bad/update.d/20-x.toml:2: snapshots.keep: ") {
		t.Errorf("bad: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	out, _, code = runRoot(t, "--json", "--check-config", dir+"/bad")
	if code != 1 || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"line": 2`) {
		t.Errorf("json: exit %d, stdout %s", code, out)
	}
	if _, _, code := runRoot(t, "--check-config", "a", "b"); code != 1 {
		t.Errorf("two targets: exit %d", code)
	}
	if _, _, code := runRoot(t, "bogus"); code != 1 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// speedia-updated --check-config and speedia-update config check are one
// function: config.Verify; its error is what both exit 1 with.
func TestCheckConfigError(t *testing.T) {
	root := newRoot()
	root.SetErr(io.Discard)
	if err := verifyConfig(root, t.TempDir()+"/none", false); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("got %v", err)
	}
}
