// Command bench measures Speedia host against its targets, each as a ratio
// measured in one run on this machine (`make bench`, root):
//
//	staging overhead = time to stage an upgrade into a new snapshot
//	                   / time to apply the same upgrade in place on a copy
//	                   (goal: at most 1.1)
//	idle daemon       = resident memory of speedia-updated, idle between
//	                   checks, / 20 MiB (goal: at most 1), and its wakeups
//	                   over 60 s (goal: none)
//	container start   = time for Manager.Start to bring back 50 restart=always
//	                   containers after a reboot / podman-restart.service's
//	                   `podman start --all` (goal: at most 0.8; containers.go)
//	patch downtime    = time a container does not serve while it is patched
//	                   / while `podman restart` restarts it (goal: at most
//	                   1.2; patchdown.go)
//	image rebuild     = speedia-image build with only the version changed
//	                   / a cold build (goal: at most 0.5; image.go)
//	image assembly    = assembling a 2 GiB image / dd writing 2 GiB (image.go)
//
// Both sides run inside the same booted test host, as transient services,
// with the same apt-get update + dist-upgrade of a 25 MiB, 400-file package;
// rounds alternate the two so machine noise hits both alike.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/speedia/host/tests/testhost"
	"github.com/speedia/host/updater/snapshot/native"
)

func main() {
	rounds := flag.Int("rounds", 7, "measurements of each side")
	idleFor := flag.Duration("idle", 60*time.Second, "idle daemon measurement window")
	ctrRounds := flag.Int("container-rounds", 3, "measurements of each side of the container start benchmark")
	ctrOnly := flag.Bool("containers-only", false, "run only the container start benchmark")
	patchOnly := flag.Bool("patch-only", false, "run only the container patch downtime benchmark")
	imgOnly := flag.Bool("image-only", false, "run only the image builder benchmarks (needs make build)")
	vmOnly := flag.Bool("downtime-only", false, "run only the patch-downtime benchmark on a VM (needs make build)")
	vmRounds := flag.Int("downtime-rounds", 3, "reboots of each kind in the patch-downtime benchmark")
	bin := flag.String("bin", "bin", "directory with the built speedia binaries (speedia-image)")
	flag.Parse()
	testhost.Reexec()
	binDir, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	run := func() error {
		if err := bench(context.Background(), *rounds, *idleFor, *ctrRounds); err != nil {
			return err
		}
		if err := imageBench(context.Background(), binDir); err != nil {
			return err
		}
		return downtime(context.Background(), filepath.Dir(binDir), *vmRounds)
	}
	if *vmOnly {
		run = func() error { return downtime(context.Background(), filepath.Dir(binDir), *vmRounds) }
	}
	if *ctrOnly {
		run = func() error { return containerStart(context.Background(), 50, *ctrRounds) }
	}
	if *patchOnly {
		run = func() error { return patchDowntime(context.Background(), *ctrRounds) }
	}
	if *imgOnly {
		run = func() error { return imageBench(context.Background(), binDir) }
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func bench(ctx context.Context, rounds int, idleFor time.Duration, ctrRounds int) error {
	bin, err := os.MkdirTemp("", "speedia-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	product, err := testhost.BuildProduct(ctx, bin)
	if err != nil {
		return err
	}
	if err := idle(ctx, product, idleFor); err != nil {
		return fmt.Errorf("idle daemon: %w", err)
	}
	if err := containerStart(ctx, 50, ctrRounds); err != nil {
		return fmt.Errorf("container start: %w", err)
	}
	if err := patchDowntime(ctx, ctrRounds); err != nil {
		return fmt.Errorf("container patch downtime: %w", err)
	}
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-bench"})
	if err != nil {
		return err
	}
	defer h.Close()
	updated, err := h.Install(product["speedia-updated"])
	if err != nil {
		return err
	}
	if err := h.Boot(ctx); err != nil {
		return err
	}
	if err := h.SetRepo("bulk2"); err != nil {
		return err
	}
	in := func(args ...string) error {
		var log strings.Builder
		if _, err := h.Run(ctx, nil, &log, args...); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, log.String())
		}
		return nil
	}
	timed := func(f func() error) (time.Duration, error) {
		t0 := time.Now()
		err := f()
		return time.Since(t0), err
	}
	const copyDir = "/.snapshots/bench-copy"
	var staged, inPlace []time.Duration
	for i := 0; i < rounds; i++ {
		// Staged: the whole transaction, from check to the next boot set.
		d, err := timed(func() error { return in(updated, "stage") })
		if err != nil {
			return err
		}
		staged = append(staged, d)
		if err := in(updated, "rollback", "1"); err != nil {
			return err
		}
		if err := in(updated, "cleanup", "--keep", "0"); err != nil {
			return err
		}

		// In place: the same apt run in a writable copy of the same root.
		if err := in("sh", "-ec", "btrfs -q subvolume snapshot /.snapshots/1/snapshot "+copyDir+
			" && rmdir "+copyDir+"/etc && btrfs -q subvolume snapshot /etc "+copyDir+"/etc"); err != nil {
			return err
		}
		c := native.ChrootCmd(copyDir, "sh", "-ec", "apt-get -q update && "+strings.Join(native.AptUpgrade(), " "))
		args := []string{"env"}
		args = append(args, c.Env...)
		args = append(args, c.Name)
		d, err = timed(func() error { return in(append(args, c.Args...)...) })
		if err != nil {
			return err
		}
		inPlace = append(inPlace, d)
		if err := in("sh", "-ec", "btrfs -q subvolume delete "+copyDir+"/etc "+copyDir); err != nil {
			return err
		}
	}
	ms, mi := median(staged), median(inPlace)
	ns, ni := slices.Min(staged), slices.Min(inPlace)
	fmt.Printf("staging overhead: staged %v / in place %v = %.2f (goal <= 1.10; medians of %d rounds)\n",
		ms.Round(time.Millisecond), mi.Round(time.Millisecond), ms.Seconds()/mi.Seconds(), rounds)
	fmt.Printf("  fastest runs:   staged %v / in place %v = %.2f\n", ns.Round(time.Millisecond), ni.Round(time.Millisecond), ns.Seconds()/ni.Seconds())
	fmt.Printf("  staged:   %v\n  in place: %v\n", round(staged), round(inPlace))
	return nil
}

func round(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x.Round(time.Millisecond)
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
