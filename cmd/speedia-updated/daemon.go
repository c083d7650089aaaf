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
	"github.com/speedia/host/updater/version"
)

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

// settingsFrom is the one place the whole configuration becomes the
// settings in force. They reach the daemon through daemon.New and
// SetSettings only; the adapters get theirs from the daemon (as arguments
// or from its View). The keys that need a restart are config.RestartKeys.
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
		Presence:      daemon.PresenceSettings{Inhibitors: c.Reboot.RespectInhibitors, Users: c.Reboot.RespectUsers},
		Health:        daemon.GateSettings{CriticalUnits: c.Health.CriticalUnits, Dir: c.Health.Dir, Timeout: c.Health.Timeout},
		Containers: daemon.ContainerSettings{
			Socket: c.Containers.Socket, Settle: c.Containers.Settle, Timeout: c.Containers.Timeout,
			Parallel: c.Containers.Parallel, Keep: c.Containers.Keep, AutoUpgrade: c.Containers.AutoUpgrade,
			Patch: c.Containers.Patch, PatchKeep: c.Containers.PatchKeep, PatchLockTimeout: c.Containers.PatchLockTimeout,
		},
		ConfigError: cfgErr,
	}
}

func runDaemon(ctx context.Context, esp string) error {
	log := system.NewLogger(slog.LevelInfo)
	slog.SetDefault(log)
	cfg, cfgErr := loadConfig(log, nil)
	started := cfg // what the restart-only keys were read from

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
		Presence: presence{logind: logind},
		Gate:     gate{},
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

	inForce := cfg
	reload := func(ctx context.Context) error {
		cfg, cfgErr := loadConfig(log, &inForce)
		inForce = cfg
		s := settingsFrom(cfg, cfgErr)
		s.RestartNeeded = config.NeedRestart(started, cfg)
		if err := d.SetSettings(ctx, s); err != nil {
			return err
		}
		if cfgErr != "" {
			return fmt.Errorf("%w: %s", errkind.Invalid, cfgErr)
		}
		if len(s.RestartNeeded) > 0 {
			log.Warn("configuration reloaded; some keys take effect only after 'systemctl restart speedia-updated'",
				"keys", strings.Join(s.RestartNeeded, ", "))
			return nil
		}
		log.Info("configuration reloaded")
		return nil
	}
	srv, err := dbusapi.Export(ctx, conn, d, reload)
	if err != nil {
		return err
	}
	m := metrics.New(version.Version)
	obs := observers{srv: srv, m: m}
	if cfg.Containers.Enabled {
		ct := newContainers(d.View, log)
		ct.Record = d.Record
		ct.Metrics = m
		d.Workload = ct
		srv.SetContainers(ct)
		obs.after = func(v daemon.View) { ct.Observe(ctx, v) }
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
	checks, track := st.Checks(), st.Track()
	o.m.SetPhase(string(st.Phase()))
	o.m.SetPending(uint32(st.PendingSnapshot()))
	if !checks.Last.IsZero() {
		o.m.SetLastCheck(checks.Last, !strings.HasPrefix(checks.Result, "failed"))
	}
	o.m.SetLastSuccess(track.LastSuccess)
	o.m.SetNextReboot(st.Plan().At)
	o.m.SetTotals(track.Reboots, track.Rollbacks)
	if phaseChanged {
		_ = system.Status(statusLine(v))
	}
}

func (o observers) Progress(line string) { o.srv.Progress(line) }

func statusLine(v daemon.View) string {
	st, plan := v.State, v.State.Plan()
	switch n := st.PendingSnapshot(); {
	case n != 0 && !plan.At.IsZero():
		return fmt.Sprintf("%s: snapshot %d, reboot %s", st.Phase(), n, plan.At.Format(time.RFC3339))
	case n != 0:
		return fmt.Sprintf("%s: snapshot %d (%s)", st.Phase(), n, plan.Reason)
	}
	return fmt.Sprintf("%s on snapshot %d", st.Phase(), v.Booted)
}

// presence reports block inhibitors and logged-in users, as configured.
type presence struct {
	logind system.Logind
}

func (p presence) RebootBlockers(ctx context.Context, s daemon.PresenceSettings) ([]string, error) {
	var out []string
	var errs []error
	if s.Inhibitors {
		bs, err := p.logind.Blockers(ctx)
		errs = append(errs, err)
		for _, b := range bs {
			out = append(out, fmt.Sprintf("%s inhibits shutdown (%s)", b.Who, b.Why))
		}
	}
	if s.Users {
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

// gate runs the health gate with the settings in force.
type gate struct{}

func (gate) Verify(ctx context.Context, h daemon.GateSettings) ([]string, error) {
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
