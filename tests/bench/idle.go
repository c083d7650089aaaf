package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/speedia/host/tests/testhost"
)

// idleConfig: a daily check (the default) and nothing staged, so nothing is
// due during the measurement.
const idleConfig = `[check]
interval = "24h"
jitter = "0s"
[reboot]
strategy = "manual"
`

// idle measures the daemon as a real service on a booted test host, idle
// between two checks: resident memory and wakeups (context switches of all
// its threads) over the given window.
func idle(ctx context.Context, product testhost.Product, window time.Duration) error {
	h, err := testhost.New(ctx, testhost.Options{Name: "speedia-bench-idle", Prepare: product.Prepare(idleConfig)})
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Boot(ctx); err != nil {
		return err
	}
	// Idle: the first check at start has run and nothing is due for a day.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := h.Run(ctx, nil, nil, "/usr/bin/speedia-update", "status", "--json")
		var st struct {
			Phase     string `json:"phase"`
			LastCheck string `json:"last_check"`
		}
		if json.Unmarshal([]byte(out), &st) == nil && st.Phase == "idle" && st.LastCheck != "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not idle: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Baseline: another Go program of the same toolchain, idle on the bus
	// (the CLI waiting for phase changes): what the Go runtime alone costs.
	if _, err := h.Direct(ctx, "systemd-run", "--unit=speedia-bench-follow", "/usr/bin/speedia-update", "status", "--follow"); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the status calls' work settle
	mainPID := func(unit string) (string, error) {
		out, err := h.Direct(ctx, "systemctl", "show", "-P", "MainPID", unit)
		return strings.TrimSpace(out), err
	}
	pid, err := mainPID("speedia-updated")
	if err != nil {
		return err
	}
	basePID, err := mainPID("speedia-bench-follow")
	if err != nil || basePID == "0" {
		return fmt.Errorf("baseline process: %v", err)
	}
	field := func(out, name string) (sum int) {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
				n, _ := strconv.Atoi(f[1])
				sum += n
			}
		}
		return sum
	}
	sample := func(pid string) (rssKiB, switches int, threads int, err error) {
		st, err := h.Direct(ctx, "cat", "/proc/"+pid+"/status")
		if err != nil {
			return 0, 0, 0, err
		}
		tasks, err := h.Direct(ctx, "sh", "-c", "cat /proc/"+pid+"/task/*/status")
		if err != nil {
			return 0, 0, 0, err
		}
		switches = field(tasks, "voluntary_ctxt_switches:") + field(tasks, "nonvoluntary_ctxt_switches:")
		return field(st, "VmRSS:"), switches, field(st, "Threads:"), nil
	}
	rss0, sw0, _, err := sample(pid)
	if err != nil {
		return err
	}
	_, base0, _, err := sample(basePID)
	if err != nil {
		return err
	}
	time.Sleep(window)
	rss1, sw1, threads, err := sample(pid)
	if err != nil {
		return err
	}
	_, base1, _, err := sample(basePID)
	if err != nil {
		return err
	}
	rss := max(rss0, rss1)
	fmt.Printf("idle daemon: RSS %.1f MiB / 20 MiB = %.2f (goal <= 1.00); %d threads\n",
		float64(rss)/1024, float64(rss)/(20*1024), threads)
	fmt.Printf("  wakeups in %v idle (context switches of all threads): %d (goal: 0 between checks);\n", window, sw1-sw0)
	fmt.Printf("  an idle Go program of the same toolchain on the same bus, for comparison: %d\n", base1-base0)
	return nil
}
