package kiwi

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/speedia/host/image/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// examples are the specs every test renders: the repository's own.
var examples = []string{"debian-web", "microos"}

func load(t *testing.T, name string) *spec.Spec {
	t.Helper()
	s, err := spec.Load(filepath.Join("..", "examples", name+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRenderMatchesGolden(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			s := load(t, name)
			dir := filepath.Join(t.TempDir(), "desc")
			d, err := Render(s, dir, func(root string) error {
				return os.WriteFile(filepath.Join(root, "marker"), []byte("overlay"), 0o644)
			})
			if err != nil {
				t.Fatal(err)
			}
			if data, err := os.ReadFile(filepath.Join(dir, "root/marker")); err != nil || string(data) != "overlay" {
				t.Errorf("overlay not in root/: %q, %v", data, err)
			}
			for _, p := range s.Packages {
				if !contains(d.Packages, p) {
					t.Errorf("spec package %s not in the description", p)
				}
			}
			for _, f := range []string{"config.xml", "config.sh"} {
				got, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", name, f)
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./kiwi/ -update to create it)", err)
				}
				if string(got) != string(want) {
					t.Errorf("%s differs from %s (go test ./kiwi/ -update rewrites it after a deliberate change):\n%s", f, golden, diffLines(string(want), string(got)))
				}
			}
		})
	}
}

func TestRenderQuotesForTheShell(t *testing.T) {
	s := load(t, "debian-web")
	s.Hostname = "it's"
	dir := filepath.Join(t.TempDir(), "desc")
	if _, err := Render(s, dir, nil); err != nil {
		t.Fatal(err)
	}
	sh, _ := os.ReadFile(filepath.Join(dir, "config.sh"))
	if !strings.Contains(string(sh), `echo 'it'\''s' > /etc/hostname`) {
		t.Errorf("hostname not quoted:\n%s", sh)
	}
}

func TestRenderFailsCleanly(t *testing.T) {
	s := load(t, "debian-web")
	s.Base = "gentoo"
	dir := filepath.Join(t.TempDir(), "desc")
	if _, err := Render(s, dir, nil); err == nil {
		t.Fatal("unknown base rendered")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("a failed render left its directory")
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("- " + a + "\n+ " + c + "\n")
		}
	}
	return b.String()
}
