package vmhost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CycleOptions configure Cycle.
type CycleOptions struct {
	Root  string    // the repository's root: examples/ and bin/ (make build)
	Cache string    // default DefaultCache
	Dir   string    // work dir; default a temporary one, removed unless the cycle fails
	Out   io.Writer // the narrative: each step and what it checked
	Log   io.Writer // QEMU's, the build's and the repository's own output; default discarded
}

// Bounds of the waits under TCG on 2 cores; the timings in the README say
// how long each usually takes.
const (
	stageAndReboot = 30 * time.Minute // staging a kernel (dpkg + initramfs under emulation) and rebooting
	rollbackWait   = 30 * time.Minute // a reboot into the bad snapshot, the gate, the reboot back
	bootFallback   = 30 * time.Minute // three failed boots of the broken entry, then the good one
)

// cycle holds one run's state.
type cycle struct {
	o      CycleOptions
	start  time.Time
	stepAt time.Time
	n      int
	h      *Host
	token  string
}

func (c *cycle) step(title string) {
	c.n++
	c.stepAt = time.Now()
	fmt.Fprintf(c.o.Out, "\n== %d. %s\n", c.n, title)
}

func (c *cycle) say(format string, args ...any) {
	fmt.Fprintf(c.o.Out, "[%6.1fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

func (c *cycle) checked(format string, args ...any) {
	fmt.Fprintf(c.o.Out, "         checked: %s\n", fmt.Sprintf(format, args...))
}

// Cycle runs the whole promise on a VM: build (or reuse) the image, boot it
// with a config drive, run containers with data, then (4) a kernel update
// staged, rebooted into inside the open window, verified and marked good;
// (5) an update that breaks the health gate, rolled back by the VM itself
// and refused afterwards; (6) an update whose initrd cannot mount the root,
// undone by boot counting with nobody at the console. Each step prints what
// it checked; a failure prints the serial console's tail and the daemon's
// journal.
func Cycle(ctx context.Context, o CycleOptions) (err error) {
	if o.Cache == "" {
		o.Cache = DefaultCache
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	tmp := o.Dir == ""
	if tmp {
		if o.Dir, err = os.MkdirTemp("", "speedia-vm-cycle-"); err != nil {
			return err
		}
	}
	c := &cycle{o: o, start: time.Now()}
	defer func() {
		if c.h != nil {
			if err != nil && ctx.Err() == nil {
				fmt.Fprintf(o.Out, "\nFAILED in step %d: %v\n%s", c.n, err, c.h.Diagnose(context.WithoutCancel(ctx)))
			}
			c.h.Close()
		}
		if err == nil && tmp {
			os.RemoveAll(o.Dir)
		} else if err != nil {
			fmt.Fprintf(o.Out, "work dir kept: %s\n", o.Dir)
		}
	}()
	return c.run(ctx)
}

func (c *cycle) run(ctx context.Context) error {
	o := c.o
	c.step("Build the host image from " + ExampleSpec)
	t := time.Now()
	im, err := BuildImage(ctx, o.Root, o.Cache, o.Log)
	if err != nil {
		return err
	}
	how := "built"
	if im.Reused {
		how = "reused from " + filepath.Dir(filepath.Dir(im.Path)) + " (spec and binaries unchanged)"
	}
	c.say("Image %s %s: %s, %s", im.Manifest.Name, im.Manifest.Version, how, time.Since(t).Round(time.Second))
	kernel := im.Kernel()
	crun, ok1 := im.Package("crun")
	itools, ok2 := im.Package("initramfs-tools")
	if kernel == "" || !ok1 || !ok2 {
		return fmt.Errorf("the image's manifest lacks a kernel, crun or initramfs-tools: %s", filepath.Dir(im.Path))
	}
	c.checked("kernel %s, crun %s, initramfs-tools %s installed (manifest)", kernel, crun, itools)

	c.say("Preparing the updates the test will offer (downloaded once into %s)", o.Cache)
	a := &Archive{Cache: o.Cache, Log: o.Log}
	kdebs, release, err := KernelUpdate(ctx, a)
	if err != nil {
		return err
	}
	badRuntime, err := BrokenRuntime(ctx, a, crun)
	if err != nil {
		return err
	}
	badInitrd, err := BrokenInitrd(ctx, a, itools)
	if err != nil {
		return err
	}
	c.say("Kernel update: %s (Debian bookworm-backports); bad updates: crun %s+speedia1, initramfs-tools %s+speedia1", release, crun, itools)
	repo, err := NewRepo(filepath.Join(o.Dir, "repo")) // empty until the first Publish
	if err != nil {
		return err
	}
	repo.Log = o.Log
	port, err := repo.Serve("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer repo.Close()
	c.say("Local apt repository on 127.0.0.1:%d (the VM's 10.0.2.2:%d), empty for now", port, port)

	c.step("Boot it in QEMU (TCG, OVMF) with a config drive")
	t = time.Now()
	c.h, err = Boot(ctx, Options{Image: im, Dir: filepath.Join(o.Dir, "vm"), RepoPort: port, Root: o.Root, Log: o.Log})
	if err != nil {
		return err
	}
	h := c.h
	c.say("SSH up after %s (serial log %s)", time.Since(t).Round(time.Second), h.VM.SerialLog())
	if err := c.expectRunning(ctx, 1, kernel); err != nil {
		return err
	}
	if out, err := h.Run(ctx, "cat /proc/cmdline"); err != nil || !strings.Contains(out, "panic=") {
		return fmt.Errorf("kernel command line %q lacks panic= (the initrd would wait at a shell): %v", strings.TrimSpace(out), err)
	}
	c.checked("the kernel command line has panic= (a failed initrd reboots by itself)")
	if out, err := h.Run(ctx, "systemctl is-active speedia-firstboot.service && grep -h '^deb ' /etc/apt/sources.list"); err != nil || !strings.Contains(out, fmt.Sprintf("10.0.2.2:%d", port)) {
		return fmt.Errorf("the config drive's first-boot script did not run (speedia-firstboot: %q): %v", strings.TrimSpace(out), err)
	}
	c.checked("the config drive ran: SSH key, hostname, update policy, and apt points at the test's repository")
	// The image's entry starts counted (speedia-1+3); the daemon blesses
	// the last good snapshot it runs on, so reboots cannot count it down.
	if out, err := h.Run(ctx, "ls /efi/loader/entries"); err != nil || !slices.Contains(strings.Fields(out), "speedia-1.conf") {
		return fmt.Errorf("snapshot 1's boot entry is not blessed (/efi/loader/entries: %q): %v", strings.TrimSpace(out), err)
	}
	c.checked("the daemon blessed snapshot 1's boot entry (speedia-1.conf, no counter left)")

	c.step("Load a container image and run stateful containers")
	if err := h.LoadImage(ctx); err != nil {
		return err
	}
	c.say("Copied a busybox image over SSH and imported it as %s (no registry)", AppImage)
	if err := h.RunApps(ctx); err != nil {
		return err
	}
	c.token = newToken()
	if err := h.WriteToken(ctx, c.token); err != nil {
		return err
	}
	starts, err := c.serving(ctx)
	if err != nil {
		return err
	}
	c.checked("db and web serve their volumes' token %s over HTTP from the host; starts so far %v", c.token, starts)

	c.step("A kernel update: staged, rebooted in the open window, verified, marked good")
	if err := repo.Publish(ctx, kdebs...); err != nil {
		return err
	}
	c.say("The repository now offers %s; the admin asks for a check", strings.Join(base(kdebs), ", "))
	s, err := c.update(ctx, stageAndReboot, func(s Status) bool {
		return s.Phase == "idle" && s.Booted > 1 && s.Booted == s.LastGood
	})
	if err != nil {
		return err
	}
	good := s.Booted
	if err := c.expectRunning(ctx, good, release); err != nil {
		return err
	}
	if err := c.servingAgain(ctx, starts); err != nil {
		return err
	}
	if err := c.expectHistory(ctx, good, "staged", "rebooting", "verified"); err != nil {
		return err
	}
	if out, err := h.Run(ctx, "speedia-update history --limit 6"); err == nil {
		c.indent("# speedia-update history --limit 6", out)
	}

	c.step("An update that breaks the health gate: rolled back by the VM itself")
	if err := repo.Publish(ctx, append(kdebs, badRuntime)...); err != nil {
		return err
	}
	c.say("The repository now also offers %s, whose runtime fails every container start", filepath.Base(badRuntime))
	s, err = c.update(ctx, rollbackWait, func(s Status) bool {
		return s.Phase == "idle" && s.Booted == good && len(s.BadUpdates) == 1
	})
	if err != nil {
		return err
	}
	c.checked("the daemon marked the update bad: %s", s.BadUpdates[0].Summary)
	if err := c.expectRunning(ctx, good, release); err != nil {
		return err
	}
	if err := c.servingAgain(ctx, starts); err != nil {
		return err
	}
	if err := c.expectHistory(ctx, 0, "health-failed", "rolled-back"); err != nil {
		return err
	}
	if err := c.refused(ctx, good); err != nil {
		return err
	}

	c.step("An update whose initrd cannot mount the root: boot counting falls back")
	if err := repo.Publish(ctx, append(kdebs, badInitrd)...); err != nil {
		return err
	}
	c.say("The repository now offers %s instead, whose initramfs hook drops btrfs", filepath.Base(badInitrd))
	panicked := regexp.MustCompile(`Rebooting automatically due to panic= boot argument`)
	countPanics := func() int {
		log, _ := os.ReadFile(h.VM.SerialLog()) // the whole log: SerialTail is bounded
		return len(panicked.FindAll(log, -1))
	}
	before := countPanics()
	s, err = c.update(ctx, bootFallback, func(s Status) bool {
		return s.Phase == "idle" && s.Booted == good && len(s.BadUpdates) == 2
	})
	if err != nil {
		return err
	}
	fails := countPanics() - before
	if fails == 0 {
		return errors.New("the serial console shows no initrd that gave up and rebooted")
	}
	c.checked("the serial console shows %d boots that could not mount the root and rebooted on their own (panic=)", fails)
	c.checked("the daemon marked the update bad: %s", s.BadUpdates[1].Summary)
	if err := c.expectRunning(ctx, good, release); err != nil {
		return err
	}
	if out, err := h.Run(ctx, "ls /efi/loader/entries"); err == nil {
		c.indent("# ls /efi/loader/entries", out)
	}
	if err := c.servingAgain(ctx, starts); err != nil {
		return err
	}
	if err := c.refused(ctx, good); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nThe whole cycle passed in %s.\n", time.Since(c.start).Round(time.Second))
	return nil
}

// update asks the daemon for a check (which stages what it finds; the
// daemon then reboots by itself in the open window) and waits until done
// holds after at least one reboot.
func (c *cycle) update(ctx context.Context, limit time.Duration, done func(Status) bool) (Status, error) {
	h := c.h
	boot, err := h.BootID(ctx)
	if err != nil {
		return Status{}, err
	}
	t := time.Now()
	out, code, err := h.Code(ctx, "speedia-update check")
	switch {
	case err != nil:
		return Status{}, fmt.Errorf("speedia-update check: %w", err)
	case code == 255:
		c.say("The host went down for its reboot while the check still ran")
	case code != 0:
		return Status{}, fmt.Errorf("speedia-update check: exit %d: %s", code, out)
	default:
		c.indent("# speedia-update check", out)
	}
	c.say("Staged in %s; waiting for the daemon's reboot and its verdict", time.Since(t).Round(time.Second))
	if _, err := h.WaitBoot(ctx, boot, limit); err != nil {
		return Status{}, err
	}
	c.say("The VM rebooted %s after the check", time.Since(t).Round(time.Second))
	s, err := h.WaitStatus(ctx, "verdict", limit-time.Since(t), done)
	if err != nil {
		return s, err
	}
	c.say("Done after %s: %v", time.Since(t).Round(time.Second), s)
	return s, nil
}

// expectRunning checks the booted snapshot and kernel.
func (c *cycle) expectRunning(ctx context.Context, snap uint32, kernel string) error {
	h := c.h
	src, err := h.Run(ctx, "findmnt -no SOURCE /")
	if err != nil {
		return err
	}
	want := fmt.Sprintf("/.snapshots/%d/snapshot", snap)
	if !strings.Contains(src, want) {
		return fmt.Errorf("root is %q, want snapshot %d", strings.TrimSpace(src), snap)
	}
	uname, err := h.Run(ctx, "uname -r")
	if err != nil {
		return err
	}
	if strings.TrimSpace(uname) != kernel {
		return fmt.Errorf("running kernel %s, want %s", strings.TrimSpace(uname), kernel)
	}
	if out, err := h.Run(ctx, "systemctl is-active speedia-updated.service"); err != nil {
		return fmt.Errorf("speedia-updated is %s: %w", strings.TrimSpace(out), err)
	}
	c.checked("booted snapshot %d (read-only btrfs root %s), kernel %s, speedia-updated active", snap, strings.TrimSpace(src), kernel)
	return nil
}

func (c *cycle) serving(ctx context.Context) (map[string]int, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		starts, err := c.h.Serving(ctx, c.token)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return starts, err
		}
		time.Sleep(2 * time.Second)
	}
}

// servingAgain checks that every container serves its data again and has
// started once more since before.
func (c *cycle) servingAgain(ctx context.Context, before map[string]int) error {
	starts, err := c.serving(ctx)
	if err != nil {
		return err
	}
	for name, n := range starts {
		if n <= before[name] {
			return fmt.Errorf("%s has started %d times, as before the reboot: the check ran against the old instance?", name, n)
		}
		before[name] = n
	}
	c.checked("db and web serve their volumes' token %s again (starts %v)", c.token, starts)
	return nil
}

// expectHistory checks that the history has the events, in order, for
// snapshot snap (0: any).
func (c *cycle) expectHistory(ctx context.Context, snap uint32, events ...string) error {
	recs, err := c.h.History(ctx)
	if err != nil {
		return err
	}
	i := 0
	for _, r := range recs {
		if i < len(events) && r.Event == events[i] && (snap == 0 || r.Snapshot == snap || r.Event == "rebooting") {
			i++
		}
	}
	if i < len(events) {
		return fmt.Errorf("history lacks %q (in order %v) for snapshot %d: %d records", events[i], events, snap, len(recs))
	}
	c.checked("speedia-update history shows %s", strings.Join(events, ", "))
	return nil
}

// refused checks that a new check does not stage the bad update again.
func (c *cycle) refused(ctx context.Context, good uint32) error {
	out, code, err := c.h.Code(ctx, "speedia-update check")
	if err != nil {
		return err
	}
	if code != 6 {
		return fmt.Errorf("a new check: exit %d, want 6 (bad update refused): %s", code, out)
	}
	s, err := c.h.Status(ctx)
	if err != nil {
		return err
	}
	if s.Pending != 0 || s.Booted != good {
		return fmt.Errorf("after the refused check: %v", s)
	}
	c.checked("a new check refuses the bad update (exit 6) and stages nothing: %s", strings.TrimSpace(lastLine(out)))
	return nil
}

func (c *cycle) indent(cmd, out string) {
	fmt.Fprintf(c.o.Out, "  %s\n", cmd)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintf(c.o.Out, "  %s\n", l)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

func base(paths []string) []string {
	var b []string
	for _, p := range paths {
		b = append(b, filepath.Base(p))
	}
	return b
}

func newToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
