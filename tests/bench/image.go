package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// imageBench measures speedia-image in one run:
//
//	rebuild  = build with only the spec's version changed (prepared root tree
//	           from the cache) / cold build (no prepared tree: KIWI prepares
//	           it; KIWI's package cache is warm, as on any build host after
//	           its first build)  (goal: at most 0.5)
//	assembly = the rebuild's disk assembly of a 2 GiB raw image (GPT, btrfs
//	           root with snapshot 1 copied from the tree, ESP; the build
//	           prints it) / dd writing 2 GiB of zeros to a file with fsync
func imageBench(ctx context.Context, bin string) error {
	dir, err := os.MkdirTemp("/var/tmp", "speedia-bench-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	spec := func(version string) string {
		p := filepath.Join(dir, "host-"+version+".toml")
		data := fmt.Sprintf("name = \"bench\"\nversion = %q\nbase = \"debian\"\ndate = 2026-11-22\ndisk_size = \"2GiB\"\nformats = [\"raw\"]\n", version)
		os.WriteFile(p, []byte(data), 0o644)
		return p
	}
	cache := filepath.Join(dir, "cache")
	build := func(version string) (time.Duration, string, error) {
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "speedia-image"), "build", spec(version),
			"--out", filepath.Join(dir, "out-"+version), "--cache", cache).CombinedOutput()
		if err != nil {
			return 0, "", fmt.Errorf("speedia-image build: %w\n%s", err, out)
		}
		return time.Since(t0), string(out), nil
	}
	cold, _, err := build("1.0.0")
	if err != nil {
		return err
	}
	warm, out, err := build("1.0.1")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "root tree from the cache") {
		return fmt.Errorf("the rebuild did not use the cached root tree:\n%s", out)
	}
	fmt.Printf("image rebuild: version-only rebuild %v / cold build %v = %.2f (goal <= 0.50)\n",
		warm.Round(time.Second), cold.Round(time.Second), warm.Seconds()/cold.Seconds())

	os.RemoveAll(filepath.Join(dir, "out-1.0.0"))
	t0 := time.Now()
	dd := exec.CommandContext(ctx, "dd", "if=/dev/zero", "of="+filepath.Join(dir, "dd.img"), "bs=4M", "count=512", "conv=fsync", "status=none")
	if out, err := dd.CombinedOutput(); err != nil {
		return fmt.Errorf("dd: %w\n%s", err, out)
	}
	ddTime := time.Since(t0)
	m := regexp.MustCompile(`assembly took ([0-9.]+)s`).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no assembly time in the build's output:\n%s", out)
	}
	asm, _ := strconv.ParseFloat(m[1], 64)
	fmt.Printf("image assembly: 2 GiB image %.1fs / dd of 2 GiB %v = %.2f (how close assembly is to the disk's own speed)\n",
		asm, ddTime.Round(100*time.Millisecond), asm/ddTime.Seconds())
	return nil
}
