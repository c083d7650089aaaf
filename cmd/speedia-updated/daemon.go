package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/config"
	"github.com/speedia/host/updater/daemon"
	"github.com/speedia/host/updater/dbusapi"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/health"
	"github.com/speedia/host/updater/metrics"
	"github.com/speedia/host/updater/msgid"
	"github.com/speedia/host/updater/snapshot/native"
	"github.com/speedia/host/updater/strategy"
	"github.com/speedia/host/updater/system"
)

// Version is set at build time (-ldflags -X main.Version=...).
var Version = "dev"

// StateDir holds the state file, the history and the last good config.
const StateDir = "/var/lib/speedia"

func daemonCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the update daemon (started by speedia-updated.service)",
		Long: "Run the update daemon: check for updates, stage them into snapshots, reboot in the\n" +
			"maintenance window, verify health after boot and roll back on failure. It serves\n" +
			"org.speedia.Update1 on the system bus; speedia-update is its client.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDaemon(cmd.Context(), o.esp) },
	}
}

// current is the configuration in force, shared with the adapters that
// read it at the moment they act (presence, health gate).
type current struct {
	mu  sync.Mutex
	cfg config.Config
}

func (c *current) get() config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

func (c *current) set(cfg config.Config) {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
}

// loadConfig reads the files; when they are invalid it keeps the last good
// configuration (or the built-in defaults) and says why.
func loadConfig(log *slog.Logger, keep *config.Config) (config.Config, string) {
	good := StateDir + "/config.good.toml"
	cfg, _, err := config.Load(config.DefaultPaths)
	if err == nil {
		if err := config.SaveGood(good, cfg); err != nil {
			log.Warn("cannot save the last good configuration", "err", err)
		}
		return cfg, ""
	}
	msg := err.Error()
	switch {
	case keep != nil:
		cfg = *keep
	default:
		if g, gerr := config.LoadGood(good); gerr == nil {
			cfg = g
		} else {
			cfg = config.Default()
			msg += " (no last good configuration: using the built-in defaults)"
		}
	}
	log.Error("invalid configuration; the last good one stays in force", "message_id", msgid.ConfigInvalid, "reason", msg)
	return cfg, msg
}

func settingsFrom(c config.Config, cfgErr string) daemon.Settings {
	var s strategy.Strategy
	switch c.Reboot.Strategy {
	case config.StrategyImmediate:
		s = strategy.Immediate{}
	case config.StrategyManual:
		s = strategy.Manual{}
	default:
		s = strategy.Periodic{Schedule: c.Reboot.Schedule, MinGap: c.Reboot.MinGap, Jitter: c.Reboot.Jitter}
	}
	return daemon.Settings{
		CheckInterval: c.Check.Interval,
		CheckJitter:   c.Check.Jitter,
		Strategy:      s,
		RebootDelay:   c.Reboot.Delay,
		WallMessage:   c.Reboot.WallMessage,
		Postpone:      c.Reboot.Postpone,
		MaxAttempts:   c.Health.MaxAttempts,
		Keep:          c.Snapshots.Keep,
		ConfigError:   cfgErr,
	}
}

func runDaemon(ctx context.Context, esp string) error {
	log := system.NewLogger(slog.LevelInfo)
	slog.SetDefault(log)
	cfg, cfgErr := loadConfig(log, nil)
	cur := &current{cfg: cfg}

	eng, err := newEngine(ctx, esp)
	if err != nil {
		return err
	}
	bootID, err := system.BootID()
	if err != nil {
		return err
	}
	logind := system.Logind{}
	d := &daemon.Daemon{
		Engine:   eng,
		Store:    daemon.Store{Dir: StateDir},
		Rebooter: logind,
		Presence: presence{logind: logind, cur: cur},
		Gate:     gate{cur: cur},
		Lock:     strategy.LocalLock{Path: StateDir + "/reboot.lock"},
		Markers:  daemon.Markers{Paths: daemon.DefaultMarkers},
		Rand:     rand.Float64,
		BootID:   bootID,
		Log:      log,
	}
	if n, ok := eng.(*native.Engine); ok {
		d.SyncEtc = func(ctx context.Context) error { _, err := n.SyncEtc(ctx); return err }
	}
	daemon.New(d, settingsFrom(cfg, cfgErr))

	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("system bus: %w", err)
	}
	defer conn.Close()

	reload := func(ctx context.Context) error {
		old := cur.get()
		cfg, cfgErr := loadConfig(log, &old)
		cur.set(cfg)
		if err := d.SetSettings(ctx, settingsFrom(cfg, cfgErr)); err != nil {
			return err
		}
		if cfgErr != "" {
			return fmt.Errorf("%w: %s", errkind.Invalid, cfgErr)
		}
		log.Info("configuration reloaded")
		return nil
	}
	srv, err := dbusapi.Export(ctx, conn, d, reload)
	if err != nil {
		return err
	}
	m := metrics.New(Version)
	obs := observers{srv: srv, m: m}
	if cfg.Containers.Enabled {
		ct := newContainers(cfg.Containers, d.View, log)
		d.Workload = ct
		srv.SetContainers(ct)
		obs.after = func(v daemon.View) { ct.Observe(ctx, v, cur.get().Containers.AutoUpgrade) }
	}
	d.Observer = obs

	go func() {
		if err := m.Serve(ctx, cfg.Metrics.Socket, cfg.Metrics.Listen); err != nil && ctx.Err() == nil {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() { _ = system.Watchdog(ctx) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := reload(ctx); err != nil {
					log.Warn("reload", "err", err)
				}
			}
		}
	}()

	err = d.Run(ctx, func() {
		if err := srv.RequestName(); err != nil {
			log.Error("cannot own the bus name", "err", err)
		}
		_ = system.Ready(statusLine(d.View()))
	})
	_ = system.Stopping()
	return err
}

// observers fans each change out to the bus, metrics and systemd's STATUS.
type observers struct {
	srv   *dbusapi.Server
	m     *metrics.Metrics
	after func(daemon.View) // containers: expiry and auto-upgrades after a check
}

func (o observers) Changed(v daemon.View, phaseChanged bool) {
	o.srv.Changed(v, phaseChanged)
	if o.after != nil {
		o.after(v)
	}
	st := v.State
	o.m.SetPhase(string(st.Phase))
	var pending uint32
	if st.Pending != nil {
		pending = uint32(st.Pending.Snapshot)
	}
	o.m.SetPending(pending)
	if !st.LastCheck.IsZero() {
		o.m.SetLastCheck(st.LastCheck, !strings.HasPrefix(st.LastCheckResult, "failed"))
	}
	o.m.SetLastSuccess(st.LastSuccess)
	o.m.SetNextReboot(st.RebootAt)
	o.m.SetTotals(st.Reboots, st.Rollbacks)
	if phaseChanged {
		_ = system.Status(statusLine(v))
	}
}

func (o observers) Progress(line string) { o.srv.Progress(line) }

func statusLine(v daemon.View) string {
	st := v.State
	switch {
	case st.Pending != nil && !st.RebootAt.IsZero():
		return fmt.Sprintf("%s: snapshot %d, reboot %s", st.Phase, st.Pending.Snapshot, st.RebootAt.Format(time.RFC3339))
	case st.Pending != nil:
		return fmt.Sprintf("%s: snapshot %d (%s)", st.Phase, st.Pending.Snapshot, st.RebootReason)
	}
	return fmt.Sprintf("%s on snapshot %d", st.Phase, v.Booted)
}

// presence reports block inhibitors and logged-in users, as configured.
type presence struct {
	logind system.Logind
	cur    *current
}

func (p presence) RebootBlockers(ctx context.Context) ([]string, error) {
	cfg := p.cur.get().Reboot
	var out []string
	var errs []error
	if cfg.RespectInhibitors {
		bs, err := p.logind.Blockers(ctx)
		errs = append(errs, err)
		for _, b := range bs {
			out = append(out, fmt.Sprintf("%s inhibits shutdown (%s)", b.Who, b.Why))
		}
	}
	if cfg.RespectUsers {
		us, err := p.logind.Users(ctx)
		errs = append(errs, err)
		for _, u := range us {
			where := u.TTY
			if u.Remote != "" {
				where = "from " + u.Remote
			}
			out = append(out, fmt.Sprintf("%s is logged in %s", u.User, where))
		}
	}
	return out, errors.Join(errs...)
}

// gate runs the health gate with the configuration in force.
type gate struct{ cur *current }

func (g gate) Verify(ctx context.Context) ([]string, error) {
	h := g.cur.get().Health
	gt := &health.Gate{Cfg: health.Config{CriticalUnits: h.CriticalUnits, Dir: h.Dir, Timeout: h.Timeout}}
	res, err := gt.Run(ctx)
	if err != nil {
		return nil, err
	}
	var failed []string
	for _, c := range res.Checks {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	return failed, nil
}
