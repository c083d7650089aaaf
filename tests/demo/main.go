// Command demo shows Speedia host's whole update cycle with the real daemon
// on the built-in test host: a booted Debian (systemd, D-Bus, logind,
// snapper) on btrfs, where speedia-updated runs as a systemd service and
// the admin talks to it with speedia-update. It stages an update, waits for
// the maintenance window, reboots through logind, verifies the health gate,
// and rolls a bad update back by itself. Run it with `make demo` (root).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/tests/vmhost"
	"github.com/speedia/host/units"
	"github.com/speedia/host/updater/run"
)

// Bounds of the waits; on this machine each takes a few seconds at most.
const (
	firstCheckWait = 60 * time.Second
	stageWait      = 90 * time.Second
	verifyWait     = 90 * time.Second
	rollbackWait   = 120 * time.Second
	quietWait      = 2 * time.Second // proof that nothing reboots outside the window
)

const cli = "/usr/bin/speedia-update"

// healthCheck is the admin's own gate check: this site does not allow the
// test kernel 2.0 (the stand-in for an update that breaks the host).
const healthCheck = `#!/bin/sh
# Site policy: speedia-testkernel 2.0 breaks our hardware.
v=$(dpkg-query -W -f='${Version}' speedia-testkernel)
[ "$v" = 1.0 ] || { echo "speedia-testkernel $v is not allowed on this site"; exit 1; }
`

func main() {
	vmCycle := flag.Bool("vm", false, "run the cycle on a VM booted from the host image (QEMU) instead of the test host")
	flag.Parse()
	if *vmCycle {
		os.Exit(vmDemo())
	}
	if !testhost.PrivateMountNS() {
		// Ctrl-C reaches the whole process group: the re-executed child
		// cleans up and exits, and this parent waits for it.
		signal.Ignore(os.Interrupt)
	}
	testhost.Reexec()
	// Caught until the end, so that a second Ctrl-C does not cut the
	// teardown short (which would leave a loop device behind).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{start: time.Now()}
	err := d.run(ctx)
	d.summary()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "demo interrupted; the test host was removed")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// status is the part of `speedia-update status --json` the demo reads.
type status = vmhost.Status

type stepTime struct {
	title      string
	start, end time.Time
}

type demo struct {
	ctx   context.Context
	h     *testhost.Host
	start time.Time
	steps []stepTime
}

// step starts a numbered step of the narrative (and ends the previous one).
func (d *demo) step(title string) {
	now := time.Now()
	d.endStep(now)
	d.steps = append(d.steps, stepTime{title: title, start: now})
	fmt.Printf("\n== %d. %s\n", len(d.steps), title)
}

func (d *demo) endStep(now time.Time) {
	if n := len(d.steps); n > 0 && d.steps[n-1].end.IsZero() {
		d.steps[n-1].end = now
	}
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// show runs speedia-update inside the host and prints the command and its
// output, as an admin would see them.
func (d *demo) show(args ...string) (int, error) {
	out, code, err := d.cli(args...)
	if err != nil {
		return code, err
	}
	fmt.Printf("  # speedia-update %s", strings.Join(args, " "))
	if code != 0 {
		fmt.Printf("   (exit %d)", code)
	}
	fmt.Println()
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Println("  " + l)
	}
	return code, nil
}

// cli runs speedia-update inside the host as a client of the real daemon;
// a non-zero exit is a code, not an error.
func (d *demo) cli(args ...string) (string, int, error) {
	out, err := d.h.Run(d.ctx, nil, nil, append([]string{cli}, args...)...)
	var ee *run.ExitError
	if errors.As(err, &ee) && ee.Code > 0 {
		return out + ee.Stderr, ee.Code, nil
	}
	if err != nil {
		return out, -1, fmt.Errorf("speedia-update %s: %w", strings.Join(args, " "), err)
	}
	return out, 0, nil
}

// must runs speedia-update and fails unless it exits with want.
func (d *demo) must(want int, args ...string) error {
	code, err := d.show(args...)
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("speedia-update %s: exit %d, want %d", strings.Join(args, " "), code, want)
	}
	return nil
}

func (d *demo) status() (status, error) {
	out, code, err := d.cli("status", "--json")
	if err != nil {
		return status{}, err
	}
	if code != 0 {
		return status{}, fmt.Errorf("speedia-update status: exit %d: %s", code, strings.TrimSpace(out))
	}
	var s status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return status{}, fmt.Errorf("speedia-update status --json: %w", err)
	}
	return s, nil
}

// waitStatus polls the daemon until cond holds. Errors on the way (the
// daemon restarting, the host rebooting) are retried until the deadline.
func (d *demo) waitStatus(what string, limit time.Duration, cond func(status) bool) (status, error) {
	deadline := time.Now().Add(limit)
	var last status
	var lastErr error
	for {
		s, err := d.status()
		if err == nil && cond(s) {
			return s, nil
		}
		if err == nil {
			last, lastErr = s, nil
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return s, fmt.Errorf("no %s after %v: %w", what, limit, lastErr)
			}
			return s, fmt.Errorf("no %s after %v; daemon status: %v", what, limit, last)
		}
		if err := sleep(d.ctx, 300*time.Millisecond); err != nil {
			return s, err
		}
	}
}

// waitBoots waits until the host has booted n times and runs again.
func (d *demo) waitBoots(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for d.h.Boots() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the host booted %d times in all, want %d within %v", d.h.Boots(), n, limit)
		}
		if err := sleep(d.ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return d.h.WaitRunning(d.ctx)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// config writes /etc/speedia/update.toml with one 3-hour maintenance window
// that opens at start, with the test host's short delays, and reloads the
// daemon.
func (d *demo) config(start time.Time) error {
	toml := testhost.WindowConfig(start)
	if err := d.h.WriteFile("/etc/speedia/update.toml", toml); err != nil {
		return err
	}
	return d.must(0, "reload")
}

// span names a 3-hour window opening at start, as the config means it.
func span(start time.Time) string {
	start = start.UTC()
	return fmt.Sprintf("%s-%s UTC", start.Format("Mon 15:04"), start.Add(3*time.Hour).Format("15:04"))
}

func (d *demo) bootID() (string, error) { return d.h.BootID() }

// versions says what runs: the test app's version and the kernel.
func (d *demo) versions() string {
	app, _ := d.h.ReadFile("/usr/share/speedia-testapp/version")
	kernel, _ := d.h.Direct(d.ctx, "ls", "/usr/lib/modules")
	return fmt.Sprintf("testapp %s, kernel %s", strings.TrimSpace(app), strings.Join(strings.Fields(kernel), " "))
}

func (d *demo) run(ctx context.Context) (err error) {
	d.ctx = ctx
	fmt.Println("Speedia host: the update daemon's whole cycle on a real booted test host")
	fmt.Println("(Debian bookworm in systemd-nspawn on btrfs; systemd, D-Bus and logind are real).")

	d.step("Boot the test host: snapshot 1, app 1.0, speedia-updated running")
	d.say("Building speedia-updated and speedia-update")
	bin, err := os.MkdirTemp("", "speedia-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	product, err := testhost.BuildProduct(ctx, bin)
	if err != nil {
		return err
	}
	d.say("Preparing the host's disk: snapshot 1 with both binaries and their units (the first run ever builds the root filesystem, ~30 s)")
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-demo", Prepare: product.Prepare("")})
	if err != nil {
		return err
	}
	d.h = h
	defer func() {
		if err != nil && ctx.Err() == nil {
			d.diagnose()
		}
		d.endStep(time.Now())
		d.say("Stopping the test host and removing its disk")
		if cerr := h.Close(); cerr != nil {
			fmt.Fprintln(os.Stderr, "teardown:", cerr)
		}
	}()
	d.say("Booting it with systemd-nspawn")
	if err := h.Boot(ctx); err != nil {
		return err
	}
	if out, _ := h.Direct(ctx, "systemctl", "is-active", units.Service); strings.TrimSpace(out) != "active" {
		return fmt.Errorf("%s is %q after boot", units.Service, strings.TrimSpace(out))
	}
	d.say("Up: %s; %s is active", d.versions(), units.Service)
	if _, err := d.waitStatus("first check of the daemon", firstCheckWait, func(s status) bool {
		return s.Phase == "idle" && s.LastCheckResult != ""
	}); err != nil {
		return err
	}
	d.say("The daemon checked for updates at start: none")
	if err := d.must(0, "status"); err != nil {
		return err
	}

	d.step("New packages, maintenance window in two days: staged, no reboot")
	window := time.Now().Add(48 * time.Hour).Truncate(time.Hour)
	d.say("The admin sets the maintenance window in /etc/speedia/update.toml: %s, in two days", span(window))
	if err := d.config(window); err != nil {
		return err
	}
	if err := h.SetRepo("app2"); err != nil {
		return err
	}
	d.say("The mirror publishes speedia-testapp 2.0; the admin asks for a check now")
	boots := h.Boots()
	if err := d.must(0, "check"); err != nil {
		return err
	}
	s, err := d.waitStatus("pending update with a reboot planned", stageWait, func(s status) bool {
		return s.Phase == "pending" && s.NextReboot != nil
	})
	if err != nil {
		return err
	}
	if s.Pending != 2 || s.NextReboot.Before(time.Now().Add(24*time.Hour)) {
		return fmt.Errorf("after the check: %v, next reboot %v; want snapshot 2 pending until the window", s, s.NextReboot)
	}
	if err := d.must(0, "status"); err != nil {
		return err
	}
	if err := sleep(ctx, quietWait); err != nil {
		return err
	}
	if h.Boots() != boots {
		return errors.New("the host rebooted outside its maintenance window")
	}
	d.say("%v later: no reboot; still running %s", quietWait, d.versions())

	d.step("The window opens: reboot through logind, health gate, snapshot 2 good")
	before, err := d.bootID()
	if err != nil {
		return err
	}
	boots = h.Boots()
	window = time.Now().Add(-30 * time.Minute)
	d.say("Two days pass (simulated): the admin moves the window to %s, open now", span(window))
	if err := d.config(window); err != nil {
		return err
	}
	d.say("Nobody touches the host: the daemon schedules the reboot with logind (1 s warning)")
	if err := h.WaitReboot(ctx, before, boots); err != nil {
		return fmt.Errorf("the daemon did not reboot the host in its window: %w", err)
	}
	d.say("Rebooted (boot %d); the daemon runs the health gate", h.Boots())
	s, err = d.waitStatus("verified snapshot 2", verifyWait, func(s status) bool {
		return s.Phase == "idle" && s.LastGood == s.Booted
	})
	if err != nil {
		return err
	}
	if s.Booted != 2 {
		return fmt.Errorf("after the update: %v; want snapshot 2 booted", s)
	}
	d.say("Snapshot 2 passed the gate and is marked good; running %s", d.versions())
	if err := d.must(0, "status"); err != nil {
		return err
	}

	d.step("A bad update: the health gate fails and the daemon rolls back by itself")
	if err := os.MkdirAll(fmt.Sprintf("/proc/%d/root/etc/speedia/health.d", h.PID()), 0o755); err != nil {
		return err
	}
	if err := h.WriteFile("/etc/speedia/health.d/10-kernel", healthCheck); err != nil {
		return err
	}
	if _, err := h.Direct(ctx, "chmod", "755", "/etc/speedia/health.d/10-kernel"); err != nil {
		return err
	}
	d.say("The admin adds /etc/speedia/health.d/10-kernel: fails on speedia-testkernel 2.0")
	if err := h.SetRepo("kernel2"); err != nil {
		return err
	}
	d.say("The mirror publishes speedia-testkernel 2.0 (a new kernel); the admin asks for a check")
	if before, err = d.bootID(); err != nil {
		return err
	}
	boots = h.Boots()
	if err := d.must(0, "check"); err != nil {
		return err
	}
	d.say("The window is open: the daemon reboots into snapshot 3 at once")
	if err := h.WaitReboot(ctx, before, boots); err != nil {
		return fmt.Errorf("the daemon did not reboot into the new update: %w", err)
	}
	d.say("Rebooted (boot %d); the daemon runs the health gate", h.Boots())
	if err := d.waitBoots(boots+2, rollbackWait); err != nil {
		return fmt.Errorf("no rollback reboot: %w", err)
	}
	d.say("Rebooted again (boot %d)", h.Boots())
	s, err = d.waitStatus("rollback to snapshot 2", rollbackWait, func(s status) bool {
		return s.Phase == "idle" && s.Booted == 2
	})
	if err != nil {
		return err
	}
	if len(s.BadUpdates) != 1 || s.LastError == "" {
		return fmt.Errorf("after the rollback: %v; want one bad update and the reason", s)
	}
	hist, _, err := d.cli("history", "--json")
	if err != nil {
		return err
	}
	for _, ev := range []string{`"health-failed"`, `"rolled-back"`} {
		if !strings.Contains(hist, ev) {
			return fmt.Errorf("the daemon's history lacks %s:\n%s", ev, hist)
		}
	}
	d.say("The gate failed, the daemon rolled back to snapshot 2 and rebooted: %s", d.versions())
	if err := d.must(0, "status"); err != nil {
		return err
	}
	d.say("The update is marked bad: a new check refuses to stage it again (exit 6)")
	if err := d.must(6, "check"); err != nil {
		return err
	}
	if err := d.must(0, "snapshots"); err != nil {
		return err
	}
	if err := d.must(0, "history"); err != nil {
		return err
	}
	d.endStep(time.Now())
	return nil
}

// diagnose prints what explains a failure: the daemon's journal (all boots;
// /var/log/journal is shared by the snapshots) and the console's tail.
func (d *demo) diagnose() {
	if d.h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Fprintln(os.Stderr, "\n--- journal of speedia-updated (last 80 lines) ---")
	if out, err := d.h.Direct(ctx, "journalctl", "-u", units.Service, "--no-pager", "-n", "80"); err != nil {
		fmt.Fprintf(os.Stderr, "(journalctl: %v)\n", err)
	} else {
		fmt.Fprint(os.Stderr, out)
	}
	fmt.Fprintln(os.Stderr, "--- console (last 20 lines) ---")
	fmt.Fprintln(os.Stderr, consoleTail(d.h, 20))
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// consoleTail is the console's last n lines without colour codes, one a
// line (Host.ConsoleTail joins them into one for error messages).
func consoleTail(h *testhost.Host, n int) string {
	b, _ := io.ReadAll(h.Console())
	lines := strings.Split(strings.TrimRight(ansi.ReplaceAllString(string(b), ""), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// summary prints the wall time of each step.
func (d *demo) summary() {
	if len(d.steps) == 0 {
		return
	}
	width := len("total (build and teardown included)")
	for i, s := range d.steps {
		width = max(width, len(fmt.Sprintf("%d. %s", i+1, s.title)))
	}
	fmt.Println("\nElapsed:")
	for i, s := range d.steps {
		end := s.end
		if end.IsZero() {
			end = time.Now()
		}
		fmt.Printf("  %-*s %6.1fs\n", width, fmt.Sprintf("%d. %s", i+1, s.title), end.Sub(s.start).Seconds())
	}
	fmt.Printf("  %-*s %6.1fs\n", width, "total (build and teardown included)", time.Since(d.start).Seconds())
}

// vmDemo runs the whole cycle on a VM booted from the host image: real
// firmware, bootloader, kernel and disk (make demo VM=1).
func vmDemo() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("Speedia host: the whole promise on a virtual machine booted from the host image")
	fmt.Println("(QEMU with UEFI firmware, systemd-boot, the Debian kernel, a btrfs disk; about 20 minutes under emulation).")
	dir, err := os.MkdirTemp("", "speedia-demo-vm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	log, err := os.Create(dir + "/log")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer log.Close()
	fmt.Printf("QEMU's and the image build's output: %s\n", log.Name())
	err = vmhost.Cycle(ctx, vmhost.CycleOptions{Root: ".", Dir: dir, Out: os.Stdout, Log: log})
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "demo interrupted; the VM was stopped")
		os.RemoveAll(dir)
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		return 1
	}
	os.RemoveAll(dir)
	return 0
}
