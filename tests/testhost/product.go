package testhost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/speedia/host/units"
)

// Product is the product's binaries, built for a test host: name -> file.
type Product map[string]string

// BuildProduct builds speedia-updated and speedia-update into dir.
func BuildProduct(ctx context.Context, dir string) (Product, error) {
	p := Product{}
	for _, cmd := range []string{"speedia-updated", "speedia-update", "speedia-containers"} {
		out := filepath.Join(dir, cmd)
		if err := BuildGo(ctx, "cmd/"+cmd, out); err != nil {
			return nil, err
		}
		p[cmd] = out
	}
	return p, nil
}

// Prepare is an Options.Prepare hook: it installs the binaries and their
// units into snapshot 1 (the daemon starts at boot), and config, when not
// empty, as /etc/speedia/update.toml.
func (p Product) Prepare(config string) func(root string) error {
	return func(root string) error {
		if err := units.Install(root, p); err != nil {
			return err
		}
		if config == "" {
			return nil
		}
		if err := os.MkdirAll(filepath.Join(root, "etc/speedia"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, "etc/speedia/update.toml"), []byte(config), 0o644)
	}
}

// WindowConfig is an update.toml with one three-hour maintenance window
// opening at start (UTC) and short delays that keep tests quick: no check
// jitter, a 1 s warning before a reboot, no minimum gap between reboots.
func WindowConfig(start time.Time) string {
	start = start.UTC()
	return fmt.Sprintf(`[check]
interval = "24h"
jitter = "0s"
[reboot]
strategy = "periodic"
timezone = "UTC"
delay = "1s"
min_gap = "0s"
jitter = "0s"
[[reboot.window]]
days = %q
start = %q
length = "3h"
[health]
timeout = "30s"
max_attempts = 2
`, start.Weekday().String()[:3], start.Format("15:04"))
}
