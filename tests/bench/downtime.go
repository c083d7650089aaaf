package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/speedia/host/tests/vmhost"
)

// downtime measures patch downtime on a VM booted from the host image: from
// the moment the reboot starts (the command is sent) until every container
// answers HTTP again from a fresh start, seen from outside the VM. Three
// kinds of reboot of the same VM, interleaved: (a) Speedia's update reboot
// (`speedia-update reboot --now` into a freshly staged snapshot: the
// daemon stops the containers in order, reboots through logind, the
// firmware and systemd-boot pick the new entry); (b) a plain `systemctl
// reboot`, the containers brought back by podman-restart.service; (c) the
// same with kexec, which skips the firmware and the boot loader.
func downtime(ctx context.Context, root string, rounds int) error {
	dir, err := os.MkdirTemp("", "speedia-bench-vm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Println("patch downtime: building (or reusing) the host image and booting it in QEMU (TCG)")
	im, err := vmhost.BuildImage(ctx, root, vmhost.DefaultCache, log)
	if err != nil {
		return err
	}
	htop, ok := im.Package("htop")
	if !ok {
		return fmt.Errorf("the image has no htop to offer updates of")
	}
	a := &vmhost.Archive{Cache: vmhost.DefaultCache, Log: log}
	repo, err := vmhost.NewRepo(filepath.Join(dir, "repo")) // empty until the first Publish
	if err != nil {
		return err
	}
	port, err := repo.Serve("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer repo.Close()
	h, err := vmhost.Boot(ctx, vmhost.Options{Image: im, Dir: filepath.Join(dir, "vm"), RepoPort: port, Root: root, Log: log})
	if err != nil {
		return err
	}
	defer h.Close()
	fail := func(err error) error {
		return fmt.Errorf("%w\n%s", err, h.Diagnose(ctx))
	}
	// The admin reboots into each staged update: a manual strategy.
	manual := strings.Replace(vmhost.Policy(time.Now()), `strategy = "periodic"`, `strategy = "manual"`, 1)
	if _, err := h.Run(ctx, "cat > /etc/speedia/update.toml <<'EOF'\n"+manual+"EOF\nspeedia-update reload"); err != nil {
		return fail(err)
	}
	if err := h.LoadImage(ctx); err != nil {
		return fail(err)
	}
	if err := h.RunApps(ctx); err != nil {
		return fail(err)
	}
	const token = "bench"
	if err := h.WriteToken(ctx, token); err != nil {
		return fail(err)
	}
	kinds := []struct {
		name, cmd string
		prepare   func(round int) error
	}{
		{"a", "speedia-update reboot --now", func(round int) error {
			deb, err := vmhost.Bump(ctx, a, "htop", htop, round)
			if err != nil {
				return err
			}
			if err := repo.Publish(ctx, deb); err != nil {
				return err
			}
			out, err := h.Run(ctx, "speedia-update apply")
			if err != nil {
				return fmt.Errorf("speedia-update apply: %w: %s", err, out)
			}
			return nil
		}},
		{"b", "systemctl reboot", nil},
		{"c", `k=$(uname -r) && kexec -l /boot/vmlinuz-$k --initrd=/boot/initrd.img-$k --reuse-cmdline && systemctl kexec`, nil},
	}
	took := map[string][]time.Duration{}
	for round := 1; round <= rounds; round++ {
		for _, k := range kinds {
			if k.prepare != nil {
				if err := k.prepare(round); err != nil {
					return fail(err)
				}
			}
			d, boot, err := measure(ctx, h, token, k.cmd)
			if err != nil {
				return fail(fmt.Errorf("(%s) %s: %w", k.name, k.cmd, err))
			}
			took[k.name] = append(took[k.name], d)
			fmt.Printf("  round %d (%s) %-30.30s %6.1fs  %s\n", round, k.name, k.cmd, d.Seconds(), boot)
			// Let the daemon finish verifying before the next reboot, so
			// no round starts while the last one is still settling.
			if _, err := h.WaitStatus(ctx, "a verified snapshot", 10*time.Minute, func(s vmhost.Status) bool {
				return s.Phase == "idle" && s.Booted == s.LastGood
			}); err != nil {
				return fail(err)
			}
		}
	}
	ma, mb, mc := median(took["a"]), median(took["b"]), median(took["c"])
	fmt.Printf("patch downtime: (a) speedia update reboot %.1fs / (b) plain reboot + podman-restart %.1fs = %.2f (goal <= 1.15)\n",
		ma.Seconds(), mb.Seconds(), ma.Seconds()/mb.Seconds())
	fmt.Printf("                (c) kexec %.1fs / (b) plain reboot %.1fs = %.2f (medians of %d rounds, QEMU TCG)\n",
		mc.Seconds(), mb.Seconds(), mc.Seconds()/mb.Seconds(), rounds)
	return nil
}

// measure sends cmd and returns the time until every container serves the
// token again from a start newer than before, and systemd-analyze's view of
// the boot.
func measure(ctx context.Context, h *vmhost.Host, token, cmd string) (time.Duration, string, error) {
	before, err := h.Serving(ctx, token)
	if err != nil {
		return 0, "", fmt.Errorf("not serving before the reboot: %w", err)
	}
	t0 := time.Now()
	// The command's own connection ends with the reboot; its error says nothing.
	go h.Run(context.WithoutCancel(ctx), "nohup sh -c '"+strings.ReplaceAll(cmd, "'", `'\''`)+"' >/dev/null 2>&1 &")
	deadline := t0.Add(15 * time.Minute)
	for {
		now, err := h.Serving(ctx, token)
		if err == nil && newer(now, before) {
			d := time.Since(t0)
			out, _ := h.Run(ctx, "systemd-analyze | head -1")
			return d, strings.TrimSpace(out), nil
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("containers not back within 15 minutes (last: %v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func newer(now, before map[string]int) bool {
	for name, n := range before {
		if now[name] <= n {
			return false
		}
	}
	return true
}
