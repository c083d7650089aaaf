package config

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	good := "[check]\ninterval = \"12h\"\n"
	bad := "[check]\n\nintervall = \"1h\"\n"
	_, root := tree(t, map[string]string{
		"good/update.toml":            good,
		"good/update.d/10-a.toml":     "[reboot]\nstrategy = \"manual\"\n",
		"good/update.d/20-b.toml":     "[snapshots]\nkeep = 5\n",
		"good/update.d/.hidden.toml":  "garbage",
		"good/update.d/README":        "not a drop-in",
		"bad/update.toml":             good,
		"bad/update.d/50-site.toml":   bad,
		"bad/update.d/60-syntax.toml": "[check]\ninterval = 24h\n",
		"dropin-only/update.d/1.toml": good,
		"alone.toml":                  "[reboot]\nstrategy = \"nightly\"\n",
		"empty/.keep":                 "",
	})
	tests := []struct {
		target   string
		files    []string
		problems []string
	}{
		{"good", []string{"good/update.toml", "good/update.d/10-a.toml", "good/update.d/20-b.toml"}, nil},
		{"good/update.toml", []string{"good/update.toml", "good/update.d/10-a.toml", "good/update.d/20-b.toml"}, nil},
		{"good/update.d", []string{"good/update.d/10-a.toml", "good/update.d/20-b.toml"}, nil},
		{"good/update.d/20-b.toml", []string{"good/update.d/20-b.toml"}, nil},
		{"dropin-only", []string{"dropin-only/update.d/1.toml"}, nil},
		{"bad", []string{"bad/update.toml", "bad/update.d/50-site.toml", "bad/update.d/60-syntax.toml"}, []string{
			`bad/update.d/50-site.toml:3: check.intervall: unknown key; did you mean "check.interval"?`,
			`bad/update.d/60-syntax.toml:2:14: expected a top-level item to end with a newline, comment, or EOF, but got 'h' instead`,
		}},
		{"alone.toml", []string{"alone.toml"}, []string{`alone.toml:2: reboot.strategy: "nightly" is not a strategy (use "periodic", "immediate", "manual")`}},
		{"empty", nil, []string{"empty: no update.toml or update.d/*.toml to read"}},
		{"missing", nil, []string{"missing: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			r := Verify(filepath.Join(root, tt.target))
			var files []string
			for _, f := range r.Files {
				files = append(files, strings.TrimPrefix(f, root+"/"))
			}
			if !reflect.DeepEqual(files, tt.files) {
				t.Errorf("files %q, want %q", files, tt.files)
			}
			var got []string
			for _, p := range r.Problems {
				got = append(got, strings.ReplaceAll(p.Error(), root+"/", ""))
			}
			if !reflect.DeepEqual(got, tt.problems) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.problems, "\n"))
			}
			if r.OK() != (len(tt.problems) == 0) {
				t.Errorf("OK() = %v", r.OK())
			}
		})
	}
}

// With no target, Verify reads exactly what the daemon's Load reads.
func TestVerifyDefaultPaths(t *testing.T) {
	r := Verify("")
	_, read, err := Load(DefaultPaths)
	if !reflect.DeepEqual(r.Files, read) || len(r.Problems) != len(Problems(err)) {
		t.Errorf("Verify(\"\") read %q with %v; Load read %q with %v", r.Files, r.Problems, read, err)
	}
}

func TestReportWrite(t *testing.T) {
	_, root := tree(t, map[string]string{
		"etc/update.toml":          "[check]\ninterval = \"12h\"\n",
		"etc/update.d/50-x.toml":   "[check]\nintervall = \"1h\"\n",
		"ok/update.toml":           "[check]\ninterval = \"12h\"\n",
		"ok/update.d/10-late.toml": "[check]\njitter = \"1m\"\n",
	})
	var out, errOut strings.Builder
	if err := Verify(root+"/ok").Write(&out, &errOut, false); err != nil {
		t.Fatal(err)
	}
	want := "OK: " + root + "/ok/update.toml, " + root + "/ok/update.d/10-late.toml\n"
	if out.String() != want || errOut.String() != "" {
		t.Errorf("stdout %q, stderr %q; want stdout %q", out.String(), errOut.String(), want)
	}

	out.Reset()
	r := Verify(root + "/etc")
	if err := r.Write(&out, &errOut, false); err != nil {
		t.Fatal(err)
	}
	if want := root + `/etc/update.d/50-x.toml:2: check.intervall: unknown key; did you mean "check.interval"?` + "\n"; out.String() != "" || errOut.String() != want {
		t.Errorf("stdout %q, stderr %q; want stderr %q", out.String(), errOut.String(), want)
	}

	out.Reset()
	if err := r.Write(&out, &errOut, true); err != nil {
		t.Fatal(err)
	}
	var v struct {
		OK     bool     `json:"ok"`
		Files  []string `json:"files"`
		Errors []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Key     string `json:"key"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out.String()), &v); err != nil {
		t.Fatal(err, out.String())
	}
	if v.OK || len(v.Files) != 2 || len(v.Errors) != 1 || v.Errors[0].Line != 2 || v.Errors[0].Key != "check.intervall" ||
		v.Errors[0].File != root+"/etc/update.d/50-x.toml" || !strings.HasPrefix(v.Errors[0].Message, "unknown key") {
		t.Errorf("json: %s", out.String())
	}
}
