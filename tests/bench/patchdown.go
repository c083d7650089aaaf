package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/speedia/host/podman"
	"github.com/speedia/host/podman/patch"
	"github.com/speedia/host/podman/podmantest"
	"github.com/speedia/host/tests/testhost"
)

// patchDowntime measures how long a container does not serve while it is
// patched (rollback point, upgrade inside, restart, readiness) against a
// plain `podman restart` of the same container in the same run: a Debian
// container with a web server installed by hand from a local apt
// repository, whose next version the repository then publishes. A client
// polls it every 10 ms; the downtime is the longest run of failed requests.
// Rounds alternate the two sides (goal: patch / restart at most 1.2).
func patchDowntime(ctx context.Context, rounds int) error {
	cache := "/var/cache/speedia-test"
	tarball, err := testhost.RootfsTarball(ctx, cache)
	if err != nil {
		return err
	}
	repos, err := testhost.TestRepos(ctx, cache)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sbp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	svc, err := podmantest.Start(ctx, dir)
	if err != nil {
		return err
	}
	defer svc.Close()
	pm := func(args ...string) error {
		if out, err := svc.Podman(ctx, args...); err != nil {
			return fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	repo := filepath.Join(dir, "repo")
	publish := func(name string) error {
		return exec.Command("sh", "-c", `mkdir -p "$1" && rm -rf "$1"/* && cp -a "$2"/. "$1"/`, "-", repo, filepath.Join(repos, name)).Run()
	}
	if err := publish("web1"); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"import", "--change", `CMD ["/usr/bin/speedia-testweb"]`, tarball, "localhost/debian-base:12"},
		{"run", "-d", "--name", "setup", "-v", repo + ":/srv/repo:ro", "localhost/debian-base:12", "sleep", "600"},
		{"cp", podmantest.BusyboxBin, "setup:/usr/local/bin/busybox"},
		{"exec", "setup", "sh", "-c", `rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* &&
			echo "deb [trusted=yes] file:/srv/repo ./" > /etc/apt/sources.list.d/test.list &&
			apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y speedia-testweb >/dev/null &&
			mkdir -p /srv/www && echo up > /srv/www/index.html`},
		{"commit", "-q", "--change", `CMD ["/usr/bin/speedia-testweb"]`, "setup", "localhost/debian-web:1"},
		{"rm", "-f", "-t", "1", "setup"},
		{"run", "-d", "--name", "web", "--stop-timeout", "2", "-p", "18092:8080", "-v", repo + ":/srv/repo:ro", "localhost/debian-web:1"},
	} {
		if err := pm(args...); err != nil {
			return err
		}
	}
	m := &podman.Manager{Socket: svc.Socket, Dir: filepath.Join(dir, "manager"), Dial: svc.DialContext}
	// A new connection per request (HTTPClient keeps none), and a short
	// timeout: a request to a container that is going away hangs rather
	// than fails, and the timeout is the measurement's resolution; loopback
	// answers take a few milliseconds.
	client := svc.HTTPClient()
	client.Timeout = 100 * time.Millisecond
	// downtime runs fn while polling the container and returns the longest
	// time it did not answer.
	downtime := func(fn func() error) (time.Duration, error) {
		stop := make(chan struct{})
		var longest time.Duration
		var up atomic.Bool // the poller's last answer was good
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var downSince time.Time
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				ok := false
				if resp, err := client.Get("http://127.0.0.1:18092/index.html"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == 200 && strings.TrimSpace(string(b)) == "up"
				}
				switch {
				case !ok && downSince.IsZero():
					downSince = sent // a request that hung was down from when it was sent
				case ok && !downSince.IsZero():
					longest = max(longest, time.Since(downSince))
					downSince = time.Time{}
				}
				up.Store(ok)
				time.Sleep(10 * time.Millisecond)
			}
		}()
		err := fn()
		// The last gap ends when the poller itself is answered again.
		for deadline := time.Now().Add(30 * time.Second); !up.Load() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		return longest, err
	}
	var ours, theirs []time.Duration
	for r := 0; r < rounds; r++ {
		// Each round's patch needs something new: 1.0 is installed, the
		// repository offers 2.0; after the patch the container is put
		// back on 1.0 by restoring its rollback point (not measured).
		if err := publish("web2"); err != nil {
			return err
		}
		d, err := downtime(func() error {
			_, err := m.Patch(ctx, "web", podman.PatchOptions{Driver: patch.AptDriver{}, LockTimeout: time.Minute, Keep: 2})
			return err
		})
		if err != nil {
			return fmt.Errorf("patch: %w", err)
		}
		ours = append(ours, d)
		if _, err := m.RollbackPatch(ctx, "web", false); err != nil {
			return fmt.Errorf("putting 1.0 back: %w", err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "manager", "patches", "web", "bad.json")); err != nil {
			return err
		}
		d, err = downtime(func() error { return pm("restart", "-t", "2", "web") })
		if err != nil {
			return err
		}
		theirs = append(theirs, d)
	}
	o, t := median(ours), median(theirs)
	fmt.Printf("container patch downtime: a Debian web container patched from a local apt repository (1 package), medians of %d rounds\n", rounds)
	fmt.Printf("  theirs: podman restart                                   %8v  %v\n", t.Round(time.Millisecond), round(theirs))
	fmt.Printf("  ours:   Manager.Patch (rollback point, upgrade, restart) %8v  %v  ours/theirs = %.2f (goal <= 1.20)\n",
		o.Round(time.Millisecond), round(ours), o.Seconds()/t.Seconds())
	return nil
}
