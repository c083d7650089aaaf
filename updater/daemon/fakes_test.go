package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
)

// The fakes below follow the contracts of the real parts (snapshot.Engine,
// logind, the health gate); the integration tier runs the same daemon
// against the real ones on a booted test host.

// fakeEngine keeps snapshots in memory. Stage makes N+1 the default, like
// the native engine; "booting" is done by the test (booted field).
type fakeEngine struct {
	mu       sync.Mutex
	snaps    []snapshot.Snapshot
	booted   int
	def      int
	updates  []pkgver.Change // what Check reports and Stage applies
	stageErr error
	checkErr error
	stages   int
	rollback []int
	marked   []int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{snaps: []snapshot.Snapshot{{Number: 1, State: snapshot.StateReady}}, booted: 1, def: 1}
}

func (e *fakeEngine) Check(context.Context) ([]pkgver.Change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.checkErr != nil {
		return nil, e.checkErr
	}
	if len(e.updates) == 0 {
		return nil, errkind.NothingToDo
	}
	return append([]pkgver.Change(nil), e.updates...), nil
}

func (e *fakeEngine) Stage(_ context.Context, opt snapshot.StageOptions) (*snapshot.StageResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stages++
	if e.stageErr != nil {
		return nil, e.stageErr
	}
	if len(e.updates) == 0 {
		return nil, errkind.NothingToDo
	}
	if opt.Log != nil {
		io.WriteString(opt.Log, "Unpacking app (2.0-1)\nSetting up app (2.0-1)\n")
	}
	n := e.snaps[len(e.snaps)-1].Number + 1
	s := snapshot.Snapshot{Number: n, State: snapshot.StateReady, Parent: e.booted, Changes: e.updates}
	e.snaps = append(e.snaps, s)
	e.def = n
	return &snapshot.StageResult{Snapshot: s, Changes: e.updates, RebootNeeded: true}, nil
}

func (e *fakeEngine) Rollback(_ context.Context, n int) (*snapshot.Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n == 0 {
		n = e.booted - 1
	}
	for _, s := range e.snaps {
		if s.Number == n {
			e.def = n
			e.rollback = append(e.rollback, n)
			return &s, nil
		}
	}
	return nil, fmt.Errorf("snapshot %d: %w", n, errkind.NotFound)
}

func (e *fakeEngine) MarkGood(_ context.Context, n int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.snaps {
		if e.snaps[i].Number == n {
			e.snaps[i].Good = true
			e.marked = append(e.marked, n)
			return nil
		}
	}
	return errkind.NotFound
}

func (e *fakeEngine) Cleanup(context.Context, int) ([]int, error) { return nil, nil }

func (e *fakeEngine) List(context.Context) ([]snapshot.Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := append([]snapshot.Snapshot(nil), e.snaps...)
	for i := range out {
		out[i].Booted = out[i].Number == e.booted
		out[i].Default = out[i].Number == e.def
	}
	return out, nil
}

// boot makes the default snapshot the booted one, as a reboot does.
func (e *fakeEngine) current() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.booted
}

func (e *fakeEngine) boot() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.booted = e.def
	return e.booted
}

// fakeLogind records scheduled reboots like logind's ScheduleShutdown.
type fakeLogind struct {
	mu        sync.Mutex
	at        time.Time
	scheduled bool
	calls     []time.Time
	err       error
}

func (l *fakeLogind) ScheduleReboot(_ context.Context, at time.Time, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.at, l.scheduled = at, true
	l.calls = append(l.calls, at)
	return nil
}

func (l *fakeLogind) CancelReboot(context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.scheduled
	l.scheduled = false
	return was, nil
}

func (l *fakeLogind) ScheduledReboot(context.Context) (time.Time, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.at, l.scheduled, nil
}

func (l *fakeLogind) reboots() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

type fakeGate struct {
	mu       sync.Mutex
	failures []string
	runs     int
	settings GateSettings // what the last run was given
}

func (g *fakeGate) Verify(_ context.Context, s GateSettings) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs++
	g.settings = s
	return g.failures, nil
}

type fakePresence struct {
	blockers []string
	settings PresenceSettings // what the last call was given
}

func (p *fakePresence) RebootBlockers(_ context.Context, s PresenceSettings) ([]string, error) {
	p.settings = s
	return p.blockers, nil
}

// fakeClock fires At channels when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[chan struct{}]time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, waiters: map[chan struct{}]time.Time{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) At(t time.Time) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{}, 1)
	if !t.After(c.now) {
		ch <- struct{}{}
		return ch, func() {}
	}
	c.waiters[ch] = t
	return ch, func() {
		c.mu.Lock()
		delete(c.waiters, ch)
		c.mu.Unlock()
	}
}

// Set moves the clock (forward or back: a jump) and wakes every waiter, as
// the timerfd does on expiry or on a clock change.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	for ch := range c.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
		delete(c.waiters, ch)
	}
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// host is one simulated machine: state dir, engine, logind, clock. Each
// boot runs a new Daemon on the same dir, as systemd starts a new process.
type host struct {
	t        *testing.T
	dir      string
	eng      *fakeEngine
	logind   *fakeLogind
	gate     *fakeGate
	presence *fakePresence
	clock    *fakeClock
	settings Settings
	bootSeq  int
	workload *fakeWorkload // nil: no containers

	d      *Daemon
	cancel context.CancelFunc
	done   chan error
	events *recorder
}

type recorder struct {
	mu       sync.Mutex
	progress []string
}

func (r *recorder) Changed(View, bool) {}
func (r *recorder) Progress(l string) {
	r.mu.Lock()
	r.progress = append(r.progress, l)
	r.mu.Unlock()
}

func newHost(t *testing.T, s Settings) *host {
	h := &host{
		t: t, dir: t.TempDir(), eng: newFakeEngine(), logind: &fakeLogind{}, gate: &fakeGate{},
		presence: &fakePresence{}, clock: newFakeClock(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)),
		settings: s, events: &recorder{},
	}
	t.Cleanup(h.stop)
	return h
}

// start runs a daemon for the current boot.
func (h *host) start() {
	h.t.Helper()
	h.bootSeq++
	ctx, cancel := context.WithCancel(context.Background())
	d := New(&Daemon{
		Engine: h.eng, Store: Store{Dir: h.dir}, Rebooter: h.logind, Presence: h.presence, Gate: h.gate,
		Clock: h.clock, Rand: func() float64 { return 0.5 }, BootID: fmt.Sprintf("boot-%d", h.bootSeq),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: h.events,
	}, h.settings)
	if h.workload != nil {
		d.Workload = h.workload
	}
	ready := make(chan struct{})
	h.d, h.cancel, h.done = d, cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-h.done:
		h.t.Fatalf("daemon did not start: %v", err)
	}
}

// restart kills the daemon and starts it again in the same boot (what
// systemd does after `systemctl kill -s KILL`): the state file is all that
// carries over.
func (h *host) restart() {
	h.stop()
	h.bootSeq-- // same boot
	h.start()
}

// reboot stops the daemon, boots the default snapshot and starts a new one.
func (h *host) reboot() {
	h.stop()
	h.logind.mu.Lock()
	h.logind.scheduled = false
	h.logind.mu.Unlock()
	h.eng.boot()
	if h.workload != nil {
		h.workload.boot()
	}
	h.clock.Advance(time.Minute)
	h.start()
}

func (h *host) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("daemon: %v", err)
	}
	h.cancel = nil
}

// wait polls the published view until cond holds (no timing assertion:
// the deadline only stops a hung test).
func (h *host) wait(what string, cond func(View) bool) View {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := h.d.View()
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s; phase %s, state %+v", what, v.State.Phase(), v.State)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var errBoom = errors.New("boom")

// fakeWorkload models containers the way the Podman workload behaves: a
// reboot stops them all; Start brings back the inventory and reports the
// critical ones that do not come up.
type fakeWorkload struct {
	mu       sync.Mutex
	running  map[string]bool
	stopErr  error
	failOn   func(name string) bool // a critical container that cannot start
	stops    int
	starts   int
	lastSeen []string
}

func newFakeWorkload(names ...string) *fakeWorkload {
	w := &fakeWorkload{running: map[string]bool{}}
	for _, n := range names {
		w.running[n] = true
	}
	return w
}

func (w *fakeWorkload) Inventory(context.Context) (json.RawMessage, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for n, r := range w.running {
		if r {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return json.Marshal(names)
}

func (w *fakeWorkload) Stop(_ context.Context, inv json.RawMessage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stops++
	if w.stopErr != nil {
		return w.stopErr
	}
	var names []string
	if err := json.Unmarshal(inv, &names); err != nil {
		return err
	}
	for _, n := range names {
		w.running[n] = false
	}
	return nil
}

func (w *fakeWorkload) Start(_ context.Context, inv json.RawMessage) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.starts++
	var names, critical []string
	if err := json.Unmarshal(inv, &names); err != nil {
		return nil, err
	}
	w.lastSeen = names
	for _, n := range names {
		if w.failOn != nil && w.failOn(n) {
			critical = append(critical, "container "+n+": exited")
			continue
		}
		w.running[n] = true
	}
	return critical, nil
}

func (w *fakeWorkload) boot() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for n := range w.running {
		w.running[n] = false
	}
}

func (w *fakeWorkload) isRunning(n string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running[n]
}

type workloadCounts struct {
	stops, starts int
	lastSeen      []string
}

func (w *fakeWorkload) count() workloadCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return workloadCounts{w.stops, w.starts, w.lastSeen}
}

func (l *fakeLogind) history() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// editState changes keys of the state file, as a daemon killed mid-phase
// would have left it.
func editState(t *testing.T, dir string, set map[string]any) {
	t.Helper()
	path := filepath.Join(dir, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	maps.Copy(m, set)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
