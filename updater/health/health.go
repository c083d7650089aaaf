// Package health is the post-boot health gate: once the host has booted a
// new snapshot, Run decides whether that snapshot is good. Every check runs,
// so a failed gate tells the admin everything that is wrong at once.
package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// DefaultDir holds the admin's own checks.
const DefaultDir = "/etc/speedia/health.d"

// DefaultTimeout bounds the whole gate when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// queryTimeout bounds reading unit states. It is separate from the gate's
// deadline so that a gate that timed out still reports what is stuck.
const queryTimeout = 30 * time.Second

// Config says what the gate checks.
type Config struct {
	// CriticalUnits must be loaded and not failed; targets and enabled units
	// among them must also be up.
	CriticalUnits []string
	// Dir holds executables and *.units lists; a missing Dir adds nothing.
	Dir string
	// Timeout bounds the whole gate: waiting for start-up, extras and the
	// executables in Dir.
	Timeout time.Duration
}

// Check is the outcome of one check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Result is the gate's verdict: OK only when every check passed.
type Result struct {
	OK     bool     `json:"ok"`
	Checks []Check  `json:"checks"`
	Notes  []string `json:"notes,omitempty"` // files in Dir that were ignored, and why
}

// Failures returns the checks that failed.
func (r Result) Failures() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// String summarises the failures for a log line.
func (r Result) String() string {
	if r.OK {
		return fmt.Sprintf("healthy (%d checks)", len(r.Checks))
	}
	var parts []string
	for _, c := range r.Failures() {
		parts = append(parts, c.Name+": "+c.Detail)
	}
	return "unhealthy: " + strings.Join(parts, "; ")
}

// Extra is a check added by another part of the updater (e.g. containers).
// Run gets the gate's remaining time; a non-nil error fails the check.
type Extra struct {
	Name string
	Run  func(ctx context.Context) error
}

// Gate runs the checks.
type Gate struct {
	Cfg    Config
	Extras []Extra
	// Dial connects to systemd; nil means the system bus
	// (DBUS_SYSTEM_BUS_ADDRESS is honoured).
	Dial func(ctx context.Context) (*sdbus.Conn, error)

	connect func(ctx context.Context) (systemd, error)       // tests swap in a fake
	sleep   func(ctx context.Context, d time.Duration) error // tests make it instant
	poll    time.Duration
}

// New returns a gate with the given configuration and extra checks.
func New(cfg Config, extras ...Extra) *Gate {
	return &Gate{Cfg: cfg, Extras: extras}
}

// ErrTimeout is the cause named in the Detail of checks that the gate's
// deadline cut off.
var ErrTimeout = errors.New("health gate timed out")

// Run waits for the system to finish starting and runs every check. The
// error is only for a caller that gave up (ctx done): then the result is
// incomplete and says nothing about the snapshot. The gate's own timeout is
// a failed check, not an error.
func (g *Gate) Run(ctx context.Context) (Result, error) {
	timeout := g.Cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	gctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	defer cancel()

	var res Result
	sys, boot := g.waitStarted(gctx, timeout)
	if sys != nil {
		defer sys.Close()
	}
	res.add(boot)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("health gate: %w", err)
	}

	qctx, qcancel := context.WithTimeout(ctx, queryTimeout)
	for _, name := range g.Cfg.CriticalUnits {
		res.add(unitCheck(qctx, sys, "unit "+name, name, critical))
	}
	qcancel()

	for _, e := range g.Extras {
		res.add(runExtra(gctx, e))
	}

	g.runDir(ctx, gctx, sys, &res)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("health gate: %w", err)
	}
	res.OK = len(res.Failures()) == 0
	return res, nil
}

func (r *Result) add(c Check) { r.Checks = append(r.Checks, c) }

// runDir runs the admin's checks in Dir: programs with the gate's remaining
// time (gctx), unit lists with the query bound (from ctx).
func (g *Gate) runDir(ctx, gctx context.Context, sys systemd, res *Result) {
	entries, notes, err := scan(g.Cfg.Dir)
	res.Notes = notes
	if err != nil {
		res.add(Check{Name: "health.d", Detail: err.Error()})
	}
	for _, e := range entries {
		name := "health.d/" + e.name
		if e.kind == executable {
			res.add(runExecutable(gctx, name, e.path))
			continue
		}
		units, bad, err := readUnits(e.path)
		if err != nil {
			res.add(Check{Name: name, Detail: err.Error()})
			continue
		}
		for _, b := range bad {
			res.add(Check{Name: name, Detail: b})
		}
		if len(units) == 0 && len(bad) == 0 {
			res.Notes = append(res.Notes, e.name+": lists no units")
		}
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		for _, u := range units {
			res.add(unitCheck(qctx, sys, name+" "+u, u, listed))
		}
		cancel()
	}
}

// readyStates are the SystemStates in which start-up is over. "degraded"
// means some unit failed; the unit checks decide whether that matters.
var readyStates = map[string]bool{"running": true, "degraded": true}

// finalStates will not turn into a ready state by waiting.
var finalStates = map[string]bool{"maintenance": true, "stopping": true, "offline": true}

// waitStarted connects to systemd and waits until start-up is over, or the
// gate's deadline. It returns the connection (nil if none could be made)
// and the "boot" check.
func (g *Gate) waitStarted(ctx context.Context, timeout time.Duration) (systemd, Check) {
	connect, sleep, poll := g.connect, g.sleep, g.poll
	if connect == nil {
		connect = g.dialSystemd
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	check := Check{Name: "boot"}
	var sys systemd
	var state string
	var lastErr error
	for {
		if sys == nil {
			sys, lastErr = connect(ctx)
		}
		if sys != nil {
			state, lastErr = sys.SystemState(ctx)
			if lastErr == nil && (readyStates[state] || finalStates[state]) {
				break
			}
		}
		if ctx.Err() != nil || sleep(ctx, poll) != nil {
			break
		}
	}
	switch {
	case sys == nil:
		check.Detail = fmt.Sprintf("cannot reach systemd: %v", lastErr)
	case readyStates[state]:
		check.OK = true
		check.Detail = "system " + state
		if state == "degraded" {
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
			if failed, err := sys.FailedUnits(qctx); err == nil && len(failed) > 0 {
				check.Detail += "; failed units: " + strings.Join(failed, ", ")
			}
			cancel()
		}
	case finalStates[state]:
		check.Detail = "system " + state
	case lastErr != nil && ctx.Err() == nil:
		check.Detail = fmt.Sprintf("system state: %v", lastErr)
	default:
		check.Detail = fmt.Sprintf("still %s after %s", orUnknown(state), timeout)
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
		if jobs, err := sys.Jobs(qctx); err == nil && len(jobs) > 0 {
			if len(jobs) > 5 {
				jobs = append(jobs[:5], fmt.Sprintf("and %d more", len(jobs)-5))
			}
			check.Detail += "; waiting for: " + strings.Join(jobs, ", ")
		}
		cancel()
	}
	return sys, check
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// notRun is the Detail of a check the deadline left no time for.
func notRun(ctx context.Context) string {
	return fmt.Sprintf("not run: %v", context.Cause(ctx))
}

func runExtra(ctx context.Context, e Extra) Check {
	c := Check{Name: e.Name}
	if ctx.Err() != nil {
		c.Detail = notRun(ctx)
		return c
	}
	if err := e.Run(ctx); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK = true
	return c
}
