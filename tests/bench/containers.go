package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/speedia/host/podman"
	"github.com/speedia/host/podman/podmantest"
)

// containerStart measures bringing back n restart=always containers after a
// (simulated) reboot of an isolated Podman service: Speedia's Manager.Start
// of the inventory taken before, against what podman-restart.service does
// at boot, `podman start --all --filter restart-policy=always`. Each side
// starts from the same freshly rebooted state; rounds rotate the order so
// machine noise hits all alike, and medians are compared.
//
// The two do not promise the same thing: Podman's command returns once
// each container was started, one after the other; Manager.Start starts
// them in parallel and returns once each has also kept running for its
// settle time (no health checks here). So ours is measured at several
// settle times, the product's default first.
func containerStart(ctx context.Context, n, rounds int) error {
	// Short: Podman refuses a runroot path longer than 50 characters.
	dir, err := os.MkdirTemp("", "sbc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	svc, err := podmantest.Start(ctx, dir)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := podmantest.BuildImages(ctx, svc); err != nil {
		return err
	}
	// Half of them publish their web port, as hosted sites do: they are
	// ready once they accept a connection; the others once they have run
	// for the settle time.
	for i := 0; i < n; i++ {
		args := []string{"run", "-d", "--name", fmt.Sprintf("c%02d", i), "--restart=always"}
		if i%2 == 0 {
			args = append(args, "-p", fmt.Sprintf("%d:8080", 19000+i))
		}
		if _, err := svc.Podman(ctx, append(args, podmantest.ImageV1)...); err != nil {
			return err
		}
	}
	m := &podman.Manager{Socket: svc.Socket, Dir: filepath.Join(dir, "manager"), Dial: svc.DialContext}
	inv, err := m.Take(ctx)
	if err != nil {
		return err
	}
	if len(inv.Containers) != n {
		return fmt.Errorf("inventory has %d containers, want %d", len(inv.Containers), n)
	}
	runningCount := func() (int, error) {
		out, err := svc.Podman(ctx, "ps", "-q")
		return len(strings.Fields(out)), err
	}

	type side struct {
		name string
		run  func() error
		took []time.Duration
	}
	theirs := &side{name: "podman start --all --filter restart-policy=always", run: func() error {
		return svc.RestartPolicyAlways(ctx)
	}}
	ours := func(settle time.Duration, name string) *side {
		return &side{name: name, run: func() error {
			m.Settle = settle
			rep, err := m.Start(ctx, inv)
			if err != nil {
				return err
			}
			if f := rep.Failed(); len(f) > 0 {
				return fmt.Errorf("%d containers failed, e.g. %s: %s", len(f), f[0].Name, f[0].Error)
			}
			return nil
		}}
	}
	sides := []*side{
		theirs,
		ours(0, fmt.Sprintf("Manager.Start, default readiness (port, settle %v)", podman.DefaultSettle)),
		ours(100*time.Millisecond, "Manager.Start, settle 100ms"),
		ours(time.Nanosecond, "Manager.Start, settle 1ns (up once running)"),
	}
	for r := 0; r < rounds; r++ {
		for i := range sides {
			s := sides[(i+r)%len(sides)]
			if err := svc.Reboot(ctx); err != nil {
				return err
			}
			if up, err := runningCount(); err != nil || up != 0 {
				return fmt.Errorf("%d containers running right after the reboot (%v)", up, err)
			}
			t0 := time.Now()
			if err := s.run(); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.took = append(s.took, time.Since(t0))
			if up, err := runningCount(); err != nil || up != n {
				return fmt.Errorf("%s: %d of %d containers running (%v)", s.name, up, n, err)
			}
		}
	}

	base := median(theirs.took)
	fmt.Printf("container start after reboot: %d restart=always containers (httpd, no health check, half with a published port), Parallel %d (default), medians of %d rounds\n",
		n, podman.DefaultParallel, rounds)
	fmt.Printf("  theirs: %-46s %8v  %v\n", theirs.name, base.Round(time.Millisecond), round(theirs.took))
	for _, s := range sides[1:] {
		d := median(s.took)
		fmt.Printf("  ours:   %-52s %8v  %v  ours/theirs = %.2f (goal <= 0.80 for the default)\n",
			s.name, d.Round(time.Millisecond), round(s.took), d.Seconds()/base.Seconds())
	}
	fmt.Printf("  fastest: theirs %v, ours (1ns settle) %v\n",
		slices.Min(theirs.took).Round(time.Millisecond), slices.Min(sides[3].took).Round(time.Millisecond))
	return nil
}
