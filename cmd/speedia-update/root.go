package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/speedia/host/updater/version"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

const rootLong = `speedia-update controls speedia-updated, the daemon that keeps this host's
operating system up to date. Updates are staged into a new btrfs snapshot that
becomes the next boot; the running system is never changed. The daemon reboots
into it per its strategy (in the maintenance window, at once, or only when
asked), checks the host's health after boot, and rolls back on failure.

Reading (status, history, snapshots) is open to every user; the other commands
need root or membership of the speedia-admin group.

` + timeHelp + `

Exit codes:
  0  success
  1  failure
  2  usage error: bad command line or argument
  3  nothing to do: check or apply found no updates, nothing to clear
  4  busy: another update transaction is running; try again later
  5  not found: no such snapshot, bad-update ID, container, image or kept upgrade
  6  refused: not allowed now, updates are held, or the update is marked bad
  7  access denied: run as root or as a member of speedia-admin
  8  speedia-updated is not running: systemctl start speedia-updated`

const timeHelp = `TIME (--at, --until, rollback --reboot) is one of:
  2026-11-29T03:00:00+01:00   RFC 3339
  "2026-11-29 03:00"          local time
  03:00                       local time, today or else tomorrow
  +30m, +2h, +1d              from now (units: s m h d w)`

const rootExample = `  speedia-update status                 what the host is doing, and what is staged
  speedia-update check                  look for updates now (and stage them)
  speedia-update apply                  stage all updates now, showing progress
  speedia-update reboot --at 03:00      reboot into the staged snapshot at 3 am
  speedia-update hold --until +3d --reason "release week"
  speedia-update rollback --reboot now  go back to the last good snapshot
  speedia-update container upgrade db --image localhost/mariadb:11`

func newRoot(e *env) *cobra.Command {
	var asJSON bool
	var timeout time.Duration
	root := &cobra.Command{
		Use:           "speedia-update",
		Version:       version.Version,
		Short:         "Control OS updates of this Speedia host",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if timeout > 0 {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				e.cancel = cancel
				cmd.SetContext(ctx)
			}
			return nil
		},
	}
	root.PersistentFlags().BoolVar(&asJSON, "json", false, "print machine-readable JSON on stdout (commands that only act print nothing)")
	root.PersistentFlags().DurationVar(&timeout, "timeout", 0, "give up waiting for the daemon after this long, e.g. 30s or 10m (default: wait as long as it takes)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })

	// withClient wraps a command body that talks to the daemon.
	withClient := func(body func(*cobra.Command, *client.Client, []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			e.ran = true // cobra accepted the command line
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			return body(cmd, c, args)
		}
	}
	out := func(v any, human func()) error {
		if asJSON {
			return writeJSON(e.stdout, v)
		}
		human()
		return nil
	}
	say := func(format string, a ...any) {
		if !asJSON {
			fmt.Fprintf(e.stdout, format+"\n", a...)
		}
	}
	// afterwards prints the phase line, best effort: the command itself worked.
	afterwards := func(ctx context.Context, c *client.Client) {
		if asJSON {
			return
		}
		if st, err := c.Status(ctx); err == nil {
			fmt.Fprintln(e.stdout, "Phase: "+phaseLine(st, stagedAt(ctx, c, st), e.loc))
		}
	}
	nothing := func() error {
		say("No updates available.")
		return exitError{exitNothing}
	}

	// status
	var follow bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show what the update daemon is doing and what is staged",
		Long: `Shows the update phase, the booted, pending and last good snapshots, the
next reboot and why it is then, the last and next check, a hold, the package
changes staged for the next boot, updates marked bad, and a warning when the
configuration on disk is not in force.

Phases: idle, checking, staging, pending (staged, waiting to reboot),
rebooting, verifying (health checks after boot), rolling-back.`,
		Example: `  speedia-update status
  speedia-update status --json | jq .next_reboot
  speedia-update status --follow     # then print each phase change`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ctx := cmd.Context()
			var events <-chan client.PhaseEvent
			if follow { // before reading, so no change falls in between
				var err error
				if events, err = c.WatchPhase(ctx); err != nil {
					return err
				}
			}
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if err := out(inZone(st, e.loc), func() { writeStatus(e.stdout, st, stagedAt(ctx, c, st), e.loc) }); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			if !asJSON {
				fmt.Fprintln(e.stdout, "\nFollowing phase changes (Ctrl-C to stop):")
			}
			for ev := range events {
				now := e.now()
				if asJSON {
					if err := writeJSON(e.stdout, struct {
						Time time.Time `json:"time"`
						client.PhaseEvent
					}{now, ev}); err != nil {
						return err
					}
					continue
				}
				line := now.In(e.loc).Format("15:04:05") + "  " + ev.Phase
				if ev.Detail != "" {
					line += ": " + ev.Detail
				}
				fmt.Fprintln(e.stdout, line)
			}
			return nil // interrupted: following ends that way
		}),
	}
	status.Flags().BoolVarP(&follow, "follow", "f", false, "keep running and print each phase change")

	check := &cobra.Command{
		Use:   "check",
		Short: "Look for updates now, and stage them when found",
		Long: `Refreshes the package sources and looks for updates now, as a scheduled check
would: updates found are staged into a new snapshot (unless updates are held or
marked bad), and the reboot follows the strategy. Exits 3 when there are none.

JSON: {"changes": N}, the number of packages the update changes.`,
		Example: `  speedia-update check && speedia-update status`,
		Args:    cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			n, err := c.Check(cmd.Context())
			if errors.Is(err, client.ErrNothingToDo) || (err == nil && n == 0) {
				if asJSON {
					_ = writeJSON(e.stdout, map[string]uint32{"changes": 0})
				}
				return nothing()
			}
			if err != nil {
				return err
			}
			err = out(map[string]uint32{"changes": n}, func() {
				fmt.Fprintf(e.stdout, "Found updates for %d %s.\n", n, plural(int(n), "package", "packages"))
			})
			afterwards(cmd.Context(), c)
			return err
		}),
	}

	var quiet bool
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Stage all available updates now, showing progress",
		Long: `Stages all available updates into a new snapshot now, bypassing a hold and the
check interval (not a bad-update mark). The package manager's output streams to
stderr: line by line, or as one updating line on a terminal. The reboot into
the new snapshot follows the strategy; see 'speedia-update reboot'.

Interrupting (Ctrl-C) stops watching, not the daemon. Exits 3 when there is
nothing to update.

JSON: {"snapshot": N}, the new pending snapshot.`,
		Example: `  speedia-update apply
  speedia-update apply && speedia-update reboot --now
  speedia-update apply --quiet --json`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			var onLine func(string)
			var p *progress
			if !quiet {
				p = newProgress(e.stderr, e.tty, e.width, e.now)
				p.Start("Staging updates…")
				onLine = p.Line
			}
			n, err := c.Apply(cmd.Context(), onLine)
			if p != nil {
				p.Stop(err != nil && !errors.Is(err, client.ErrNothingToDo))
			}
			if errors.Is(err, client.ErrNothingToDo) {
				return nothing()
			}
			if err != nil {
				return err
			}
			err = out(map[string]uint32{"snapshot": n}, func() {
				fmt.Fprintf(e.stdout, "Staged snapshot %d.\n", n)
			})
			afterwards(cmd.Context(), c)
			return err
		}),
	}
	apply.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show the package manager's output")

	var now, nextWindow bool
	var at string
	reboot := &cobra.Command{
		Use:   "reboot [--now | --at TIME | --next-window]",
		Short: "Schedule the reboot into the staged snapshot",
		Long: `Schedules the reboot into the pending snapshot: now, at a time, or in the next
maintenance window (the default). It replaces any reboot already scheduled;
'speedia-update cancel' cancels it.

` + timeHelp + `

JSON: {"at": TIME}, the time the reboot is scheduled for.`,
		Example: `  speedia-update reboot                 # in the next maintenance window
  speedia-update reboot --now
  speedia-update reboot --at 22:30      # today, or tomorrow when past
  speedia-update reboot --at +2h`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			when := "next-window"
			switch {
			case now:
				when = "now"
			case at != "":
				t, err := parseTime(at, e.now(), e.loc)
				if err != nil {
					return err
				}
				when = t.Format(time.RFC3339)
			}
			t, err := c.Reboot(cmd.Context(), when)
			if err != nil {
				return err
			}
			return out(map[string]time.Time{"at": t.In(e.loc)}, func() {
				if now {
					fmt.Fprintln(e.stdout, "Rebooting now.")
					return
				}
				fmt.Fprintf(e.stdout, "Reboot scheduled for %s.\n", future(t, e.loc))
			})
		}),
	}
	reboot.Flags().BoolVar(&now, "now", false, "reboot now")
	reboot.Flags().StringVar(&at, "at", "", "reboot at `TIME`")
	reboot.Flags().BoolVar(&nextWindow, "next-window", false, "reboot in the next maintenance window (the default)")
	reboot.MarkFlagsMutuallyExclusive("now", "at", "next-window")

	cancel := &cobra.Command{
		Use:   "cancel",
		Short: "Cancel the scheduled reboot",
		Long: `Cancels the scheduled reboot. The staged snapshot stays the next boot; the
daemon schedules no reboot for it again until a newer update is staged or an
admin runs 'speedia-update reboot'.`,
		Example: `  speedia-update cancel`,
		Args:    cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if err := c.CancelReboot(cmd.Context()); err != nil {
				return err
			}
			say("Scheduled reboot cancelled.")
			return nil
		}),
	}

	var rollbackReboot string
	rollback := &cobra.Command{
		Use:   "rollback [SNAPSHOT] [--reboot now|next-window|TIME]",
		Short: "Make an earlier snapshot the next boot",
		Long: `Makes SNAPSHOT (default: the last known good one) the next boot. Without
--reboot nothing reboots: it takes effect at the next reboot, which
'speedia-update reboot' schedules. See 'speedia-update snapshots' for the list.

` + timeHelp + `

JSON: {"snapshot": N}, the snapshot chosen.`,
		Example: `  speedia-update rollback --reboot now      # back to the last good snapshot
  speedia-update rollback 4
  speedia-update rollback 4 --reboot next-window`,
		Args:              usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeSnapshots(e),
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var n uint64
			if len(args) == 1 {
				var err error
				if n, err = strconv.ParseUint(args[0], 10, 32); err != nil {
					return fmt.Errorf("%w: %q is not a snapshot number", errUsage, args[0])
				}
			}
			when, err := rebootWhen(rollbackReboot, e.now(), e.loc)
			if err != nil {
				return err
			}
			chosen, err := c.Rollback(cmd.Context(), uint32(n), when)
			if err != nil {
				return err
			}
			return out(map[string]uint32{"snapshot": chosen}, func() {
				fmt.Fprintf(e.stdout, "Snapshot %d is the next boot.\n", chosen)
				switch when {
				case "":
					fmt.Fprintln(e.stdout, "It takes effect at the next reboot: speedia-update reboot")
				case "now":
					fmt.Fprintln(e.stdout, "Rebooting now.")
				default:
					if st, err := c.Status(cmd.Context()); err == nil && !st.NextReboot.IsZero() {
						fmt.Fprintf(e.stdout, "Reboot scheduled for %s.\n", future(st.NextReboot, e.loc))
					}
				}
			})
		}),
	}
	rollback.Flags().StringVar(&rollbackReboot, "reboot", "", "reboot into it: now, next-window, or at `WHEN` (a TIME)")

	var until, reason string
	hold := &cobra.Command{
		Use:   "hold [--until TIME|DURATION] [--reason TEXT]",
		Short: "Pause automatic updates and reboots",
		Long: `Pauses automatic staging and reboots until a time, for a duration, or until
'speedia-update unhold'. 'speedia-update apply' still works while held.

DURATION is a number with a unit, combinable: 30m, 12h, 3d, 1w, 1d12h.
` + timeHelp + `

JSON: no output; the exit code tells.`,
		Example: `  speedia-update hold --reason "quarter-end close"
  speedia-update hold --until 3d --reason "release week"
  speedia-update hold --until "2026-12-01 08:00"`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			var t time.Time
			if until != "" {
				var err error
				if t, err = parseUntil(until, e.now(), e.loc); err != nil {
					return err
				}
			}
			if err := c.Hold(cmd.Context(), reason, t); err != nil {
				return err
			}
			v := "until speedia-update unhold"
			if !t.IsZero() {
				v = "until " + future(t, e.loc)
			}
			if reason != "" {
				v += ": " + reason
			}
			say("Updates held %s.", v)
			return nil
		}),
	}
	hold.Flags().StringVar(&until, "until", "", "hold until `TIME` or for a DURATION (default: until unhold)")
	hold.Flags().StringVar(&reason, "reason", "", "why, shown in status and history")

	unhold := &cobra.Command{
		Use:     "unhold",
		Short:   "End a hold: automatic updates and reboots resume",
		Example: `  speedia-update unhold`,
		Args:    cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if err := c.Unhold(cmd.Context()); err != nil {
				return err
			}
			say("Updates resumed.")
			return nil
		}),
	}

	clearBad := &cobra.Command{
		Use:   "clear-bad [ID]",
		Short: "Allow an update marked bad to be staged again",
		Long: `An update whose snapshot failed its health checks after boot is marked bad and
never staged again, so the host does not loop. Once the cause is fixed (or a
newer package fixes it), clear the mark. Without ID, every mark is cleared.
The IDs are listed by 'speedia-update status'.`,
		Example: `  speedia-update clear-bad 3f9c2a
  speedia-update clear-bad           # all of them`,
		Args:              usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeBad(e),
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if err := c.ClearBad(cmd.Context(), id); err != nil {
				return err
			}
			if id == "" {
				say("Every bad-update mark cleared.")
			} else {
				say("Bad-update mark %s cleared.", id)
			}
			return nil
		}),
	}

	var limit uint32
	hist := &cobra.Command{
		Use:   "history [--limit N]",
		Short: "List past update events",
		Long: `Lists the daemon's update history, oldest first: checks, staging, scheduled
reboots, verified boots, rollbacks, holds.

JSON: an array of records {time, event, snapshot, to, at, update, changes,
detail, boot_id}; see docs/cli.md.`,
		Example: `  speedia-update history
  speedia-update history --limit 0 --json`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			recs, err := c.History(cmd.Context(), limit)
			if err != nil {
				return err
			}
			return out(recs, func() { writeHistory(e.stdout, recs, e.loc) })
		}),
	}
	hist.Flags().Uint32VarP(&limit, "limit", "n", 20, "show the newest N records (0: all)")

	snaps := &cobra.Command{
		Use:   "snapshots",
		Short: "List the root snapshots",
		Long: `Lists the root filesystem snapshots, oldest first. Flags: booted (running now),
next-boot (the default subvolume), good (verified healthy after boot),
new-kernel (its kernel differs from its parent's).

JSON: an array of {number, date, description, state, parent, booted, default,
good, kernel_changed, changes}.`,
		Example: `  speedia-update snapshots
  speedia-update snapshots --json | jq '.[] | select(.good) | .number'`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			list, err := c.Snapshots(cmd.Context())
			if err != nil {
				return err
			}
			return out(list, func() { writeSnapshots(e.stdout, list, e.loc) })
		}),
	}

	reload := &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon read its configuration again",
		Long: `Makes the daemon read its configuration files again (as SIGHUP does). When the
files are invalid the daemon keeps the configuration in force, and this
command fails with the reason.`,
		Example: `  speedia-update reload`,
		Args:    cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if err := c.Reload(cmd.Context()); err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if st.ConfigError != "" {
				return fmt.Errorf("the configuration on disk is not in force: %s", st.ConfigError)
			}
			say("Configuration reloaded.")
			return nil
		}),
	}

	root.AddCommand(status, check, apply, reboot, cancel, rollback, hold, unhold, clearBad, hist, snaps, reload,
		newContainerCmd(e, withClient, out, say))
	return root
}

// stagedAt is when the pending snapshot was made, best effort (zero when
// unknown): the properties do not carry it, the snapshot list does.
func stagedAt(ctx context.Context, c *client.Client, st client.Status) time.Time {
	if st.Pending == 0 {
		return time.Time{}
	}
	list, err := c.Snapshots(ctx)
	if err != nil {
		return time.Time{}
	}
	for _, s := range list {
		if s.Number == int(st.Pending) {
			return s.Date
		}
	}
	return time.Time{}
}

// inZone gives the status times in loc, for JSON in the admin's zone.
func inZone(st client.Status, loc *time.Location) client.Status {
	for _, t := range []*time.Time{&st.NextReboot, &st.LastCheck, &st.LastSuccess, &st.NextCheck, &st.HoldUntil} {
		if !t.IsZero() {
			*t = t.In(loc)
		}
	}
	return st
}

// rebootWhen turns rollback's --reboot into the API's "when".
func rebootWhen(s string, now time.Time, loc *time.Location) (string, error) {
	switch s {
	case "", "now", "next-window":
		return s, nil
	}
	t, err := parseTime(s, now, loc)
	if err != nil {
		return "", err
	}
	return t.Format(time.RFC3339), nil
}

// usageArgs marks argument errors as usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// completeSnapshots offers the snapshot numbers, described.
func completeSnapshots(e *env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := e.client(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.Snapshots(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, s := range list {
			if s.State == "ready" && !s.Booted {
				out = append(out, fmt.Sprintf("%d\t%s %s", s.Number, past(s.Date, e.loc), s.Description))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeBad offers the bad-update IDs with their summaries.
func completeBad(e *env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := e.client(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		st, err := c.Status(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, b := range st.BadUpdates {
			out = append(out, b.ID+"\t"+strings.ReplaceAll(b.Summary, "\t", " "))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
