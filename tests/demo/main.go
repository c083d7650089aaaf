// Command demo shows Speedia host's update cycle on the built-in test host:
// a real booted Debian (systemd, logind, snapper) on btrfs, updated into a
// new snapshot, rebooted, and checked. Run it with `make demo` (root).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/snapshot"
)

var start = time.Now()

func step(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	testhost.Reexec()
	if err := demo(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func demo(ctx context.Context) error {
	step("Building speedia-updated")
	bin, err := os.MkdirTemp("", "speedia-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if err := testhost.BuildGo(ctx, "cmd/speedia-updated", filepath.Join(bin, "speedia-updated")); err != nil {
		return err
	}
	step("Preparing the test host: Debian bookworm on btrfs, snapshot layout (first run builds the root filesystem, ~30 s)")
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-demo"})
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the test host and removing its disk")
		if err := h.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "teardown:", err)
		}
	}()
	updated, err := h.Install(filepath.Join(bin, "speedia-updated"))
	if err != nil {
		return err
	}
	step("Booting it with systemd-nspawn")
	if err := h.Boot(ctx); err != nil {
		return err
	}
	engine := func(args ...string) (string, error) {
		out, err := h.Run(ctx, nil, nil, append([]string{updated}, args...)...)
		if err != nil {
			return out, fmt.Errorf("speedia-updated %s: %w", strings.Join(args, " "), err)
		}
		return out, nil
	}
	list := func() ([]snapshot.Snapshot, error) {
		out, err := engine("snapshots", "--json")
		if err != nil {
			return nil, err
		}
		var l []snapshot.Snapshot
		return l, json.Unmarshal([]byte(out), &l)
	}
	before, err := list()
	if err != nil {
		return err
	}
	kernel, _ := h.Direct(ctx, "ls", "/usr/lib/modules")
	app, _ := h.ReadFile("/usr/share/speedia-testapp/version")
	step("Running snapshot 1: testapp %s, kernel %s; root is read-only", strings.TrimSpace(app), strings.TrimSpace(kernel))

	step("Publishing an update in the host's apt repository: testapp 2.0 and a new kernel")
	if err := h.SetRepo("kernel2"); err != nil {
		return err
	}
	h.WriteFile("/etc/speedia-testapp.conf", "# edited by the admin\nlisten=9090\n")
	step("The admin edits /etc/speedia-testapp.conf (a config file the update also changes)")

	step("speedia-updated stage: apt runs inside a new snapshot; the running root is not touched")
	out, err := engine("stage", "--json", "--description", "demo update")
	if err != nil {
		return err
	}
	var res snapshot.StageResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return err
	}
	step("Staged snapshot %d (%d packages changed, kernel changed: %v); full log %s", res.Snapshot.Number, len(res.Changes), res.KernelChanged, res.Log)
	app, _ = h.ReadFile("/usr/share/speedia-testapp/version")
	step("Still running the old snapshot: testapp %s", strings.TrimSpace(app))

	if _, err := engine("sync-etc"); err != nil {
		return err
	}
	step("Rebooting (edits to /etc since staging were carried into the new snapshot)")
	if err := h.Reboot(ctx); err != nil {
		return err
	}
	after, err := list()
	if err != nil {
		return err
	}
	b, _ := snapshot.Booted(after)
	kernel, _ = h.Direct(ctx, "ls", "/usr/lib/modules")
	app, _ = h.ReadFile("/usr/share/speedia-testapp/version")
	conf, _ := h.ReadFile("/etc/speedia-testapp.conf")
	_, rwErr := h.Direct(ctx, "touch", "/usr/probe")
	step("Booted snapshot %d: testapp %s, kernel %s, root read-only: %v", b.Number, strings.TrimSpace(app), strings.TrimSpace(kernel), rwErr != nil)
	step("The admin's config survived: %q (the package's version is kept as .dpkg-dist)", strings.SplitN(conf, "\n", 2)[0])
	if _, err := engine("mark-good", fmt.Sprint(b.Number)); err != nil {
		return err
	}
	step("Marked snapshot %d good", b.Number)
	after, _ = list()

	fmt.Println("\nSnapshots before:")
	printSnapshots(before)
	fmt.Println("\nSnapshots after:")
	printSnapshots(after)
	fmt.Println("\nPackage changes:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PACKAGE\tOLD\tNEW\tCHANGE")
	for _, c := range res.Changes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Old, c.New, c.Kind)
	}
	tw.Flush()
	fmt.Println()
	return nil
}

func printSnapshots(list []snapshot.Snapshot) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTATE\tBOOTED\tNEXT\tGOOD\tDESCRIPTION")
	for _, s := range list {
		fmt.Fprintf(tw, "  %d\t%s\t%v\t%v\t%v\t%s\n", s.Number, s.State, s.Booted, s.Default, s.Good, s.Description)
	}
	tw.Flush()
}
