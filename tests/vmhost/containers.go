package vmhost

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/speedia/host/podman/podmantest"
)

// The guest's containers: db and web (which requires db), both
// --restart=always and critical (a container that does not come back fails
// the health gate), each serving its named volume's www directory over HTTP
// on the guest port given here. Each start appends a line to its volume's
// www/starts: the data outlives every reboot and rollback.
const (
	WebPort  = 8080
	DBPort   = 8081
	AppImage = "localhost/speedia-web:1"
)

// App is one container of the guest.
type App struct {
	Name, Volume string
	Port         int
}

// Apps are the guest's containers in start order.
var Apps = []App{{"db", "dbdata", DBPort}, {"web", "webdata", WebPort}}

// appCmd traps SIGTERM because busybox as PID 1 would ignore it and every
// stop would wait for Podman's timeout.
const appCmd = `trap 'exit 0' TERM; mkdir -p /data/www; date -u +%Y-%m-%dT%H:%M:%SZ >> /data/www/starts; httpd -f -p 8080 -h /data/www & wait`

// LoadImage builds a small image from this machine's static busybox, copies
// it into the guest over SSH (no registry) and imports it as AppImage.
func (h *Host) LoadImage(ctx context.Context) error {
	applets, err := exec.CommandContext(ctx, podmantest.BusyboxBin, "--list").Output()
	if err != nil {
		return fmt.Errorf("vmhost: %s --list: %w", podmantest.BusyboxBin, err)
	}
	tarball := filepath.Join(h.o.Dir, "speedia-web.tar")
	if err := podmantest.WriteRootfs(tarball, "1", strings.Fields(string(applets))); err != nil {
		return err
	}
	defer os.Remove(tarball)
	if err := h.VM.CopyIn(ctx, h.Key, "root", tarball, "/var/tmp/speedia-web.tar"); err != nil {
		return err
	}
	argv, _ := json.Marshal([]string{"/bin/sh", "-c", appCmd})
	cmd := "podman import --change " + shq("CMD "+string(argv)) + " /var/tmp/speedia-web.tar " + AppImage + " && rm /var/tmp/speedia-web.tar"
	if out, err := h.Run(ctx, cmd); err != nil {
		return fmt.Errorf("vmhost: podman import: %w: %s", err, out)
	}
	return nil
}

// RunApps starts Apps; web has a health check that the daemon runs itself
// when it waits for web after a reboot.
func (h *Host) RunApps(ctx context.Context) error {
	for _, a := range Apps {
		args := []string{"podman", "run", "-d", "--name", a.Name, "--restart=always",
			"--label", "speedia.critical=true", "-v", a.Volume + ":/data", "-p", fmt.Sprintf("%d:8080", a.Port)}
		if a.Name == "web" {
			args = append(args, "--requires", "db",
				"--health-cmd", "wget -q -O /dev/null http://127.0.0.1:8080/starts", "--health-interval", "30s")
		}
		args = append(args, AppImage)
		for i := range args {
			args[i] = shq(args[i])
		}
		if out, err := h.Run(ctx, strings.Join(args, " ")); err != nil {
			return fmt.Errorf("vmhost: podman run %s: %w: %s", a.Name, err, out)
		}
	}
	return nil
}

// WriteToken stores token in each app's volume (www/token).
func (h *Host) WriteToken(ctx context.Context, token string) error {
	for _, a := range Apps {
		if out, err := h.Run(ctx, fmt.Sprintf("podman exec %s sh -c 'echo %s > /data/www/token'", a.Name, token)); err != nil {
			return fmt.Errorf("vmhost: write %s's token: %w: %s", a.Name, err, out)
		}
	}
	return nil
}

// Serving checks that every app answers over HTTP with the token in its
// volume, and returns how often each has started (lines of www/starts).
func (h *Host) Serving(ctx context.Context, token string) (map[string]int, error) {
	starts := map[string]int{}
	for _, a := range Apps {
		got, err := h.Get(ctx, a.Port, "/token")
		if err != nil {
			return nil, fmt.Errorf("%s does not serve: %w", a.Name, err)
		}
		if strings.TrimSpace(got) != token {
			return nil, fmt.Errorf("%s serves token %q, want %q (its volume's data)", a.Name, strings.TrimSpace(got), token)
		}
		s, err := h.Get(ctx, a.Port, "/starts")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		starts[a.Name] = len(strings.Fields(s))
	}
	return starts, nil
}

// shq quotes s as one word for the guest's shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
