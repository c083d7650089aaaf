package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// config check needs no bus: the address leads nowhere.
func TestCLIConfigCheck(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
	root := writeTree(t, map[string]string{
		"good/update.toml":          "[check]\ninterval = \"12h\"\n",
		"good/update.d/10-a.toml":   "[reboot]\nstrategy = \"manual\"\n",
		"bad/update.toml":           "[check]\ninterval = \"12h\"\n\n[reboot]\nstrategy = \"nightly\"\n",
		"bad/update.d/50-site.toml": "[check]\nintervall = \"1h\"\n",
	})

	r := runCLI(t, "config", "check", root+"/good")
	if want := "OK: " + root + "/good/update.toml, " + root + "/good/update.d/10-a.toml\n"; r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("good: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	r = runCLI(t, "config", "check", root+"/good/update.d/10-a.toml")
	if r.code != 0 || r.stdout != "OK: "+root+"/good/update.d/10-a.toml\n" {
		t.Errorf("drop-in: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	r = runCLI(t, "config", "check", root+"/bad/update.toml")
	want := root + `/bad/update.toml:5: reboot.strategy: "nightly" is not a strategy (use "periodic", "immediate", "manual")` + "\n" +
		root + `/bad/update.d/50-site.toml:2: check.intervall: unknown key; did you mean "check.interval"?` + "\n" +
		"speedia-update: the configuration is invalid\n"
	if r.code != 1 || r.stdout != "" || r.stderr != want {
		t.Errorf("bad: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", r.code, r.stdout, r.stderr, want)
	}

	r = runCLI(t, "--json", "config", "check", root+"/bad")
	var v struct {
		OK     bool
		Files  []string
		Errors []struct {
			File, Key, Message string
			Line               int
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 1 {
		t.Fatalf("json: exit %d, %v: %s", r.code, err, r.stdout)
	}
	if v.OK || len(v.Files) != 2 || len(v.Errors) != 2 || v.Errors[0].Line != 5 || v.Errors[1].Key != "check.intervall" {
		t.Errorf("json: %+v", v)
	}

	r = runCLI(t, "config", "check", root+"/nowhere")
	if r.code != 1 || !strings.HasPrefix(r.stderr, root+"/nowhere: no such file or directory\n") {
		t.Errorf("missing: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"config", "check", "a", "b"}, {"config", "check", ""}} {
		if r := runCLI(t, args...); r.code != 2 {
			t.Errorf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
