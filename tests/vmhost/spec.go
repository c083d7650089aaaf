package vmhost

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// ExampleSpec is the example host spec the VM tests build, relative to the
// repository's root.
const ExampleSpec = "examples/debian-web.toml"

// Spec returns the text of the host spec the VM tests build:
// ExampleSpec with kexec-tools added (for the benchmark's kexec reboot),
// a 3 GiB disk (small enough for the self-install test's target disk), the
// given formats and the first-boot script by absolute path, so the text can
// be written anywhere.
func Spec(root string, formats ...string) (string, error) {
	path := filepath.Join(root, ExampleSpec)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("vmhost: %w", err)
	}
	s := string(data)
	fs := ""
	for i, f := range formats {
		if i > 0 {
			fs += ", "
		}
		fs += fmt.Sprintf("%q", f)
	}
	script, err := filepath.Abs(filepath.Join(filepath.Dir(path), "firstboot.sh"))
	if err != nil {
		return "", err
	}
	edits := []struct{ re, repl string }{
		{`(?m)^packages = \[(.*)\]$`, `packages = [$1, "kexec-tools"]`},
		{`(?m)^disk_size = .*$`, `disk_size = "3GiB"`},
		{`(?m)^formats = .*$`, `formats = [` + fs + `]`},
		{`(?m)^script = "firstboot.sh"$`, fmt.Sprintf("script = %q", script)},
	}
	for _, e := range edits {
		re := regexp.MustCompile(e.re)
		if !re.MatchString(s) {
			return "", fmt.Errorf("vmhost: %s has no line matching %s: update Spec with the example", path, e.re)
		}
		s = re.ReplaceAllString(s, e.repl)
	}
	return s, nil
}
