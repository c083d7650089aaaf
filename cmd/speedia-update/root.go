package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/version"
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

// app is what the verbs share: the outside world and the global flags.
// Each verb is built by a method in its own file and keeps its own flags.
type app struct {
	*env
	asJSON  bool
	timeout time.Duration
}

func newRoot(e *env) *cobra.Command {
	a := &app{env: e}
	root := &cobra.Command{
		Use:           "speedia-update",
		Version:       version.Version,
		Short:         "Control OS updates of this Speedia host",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.timeout < 0 {
				return badArg("--timeout", cmd.Flag("timeout").Value.String(), errors.New("must not be negative"))
			}
			if a.timeout > 0 {
				ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
				e.cancel = cancel
				cmd.SetContext(ctx)
			}
			return nil
		},
	}
	root.PersistentFlags().BoolVar(&a.asJSON, "json", false, "print machine-readable JSON on stdout (commands that only act print nothing)")
	root.PersistentFlags().DurationVar(&a.timeout, "timeout", 0, "give up waiting for the daemon after this long, e.g. 30s or 10m (default: wait as long as it takes)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errkind.Usage, err) })

	root.AddCommand(a.statusCmd(), a.checkCmd(), a.applyCmd(), a.rebootCmd(), a.cancelCmd(), a.rollbackCmd(),
		a.holdCmd(), a.unholdCmd(), a.clearBadCmd(), a.historyCmd(), a.snapshotsCmd(), a.reloadCmd(),
		a.containerCmd(), a.configCmd())
	return root
}

// withClient wraps a command body that talks to the daemon. check, when
// not nil, validates the command line first: a bad one is a usage error
// (exit 2) found before any connection to the bus.
func (a *app) withClient(check func(*cobra.Command, []string) error, body func(*cobra.Command, *client.Client, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if check != nil {
			if err := check(cmd, args); err != nil {
				return err
			}
		}
		a.ran = true // the command line is good
		c, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		return body(cmd, c, args)
	}
}

// out prints v as JSON with --json, else calls human.
func (a *app) out(v any, human func()) error {
	if a.asJSON {
		return writeJSON(a.stdout, v)
	}
	human()
	return nil
}

// say prints a line for humans; --json prints nothing.
func (a *app) say(format string, args ...any) {
	if !a.asJSON {
		fmt.Fprintf(a.stdout, format+"\n", args...)
	}
}

// afterwards prints the phase line, best effort: the command itself worked.
func (a *app) afterwards(ctx context.Context, c *client.Client) {
	if a.asJSON {
		return
	}
	if st, err := c.Status(ctx); err == nil {
		fmt.Fprintln(a.stdout, "Phase: "+phaseLine(st, stagedAt(ctx, c, st), a.loc))
	}
}

// nothing ends a command that found nothing to do (exit 3).
func (a *app) nothing() error {
	a.say("No updates available.")
	return exitError{exitNothing}
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

// usageArgs marks argument errors as usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%w: %w", errkind.Usage, err)
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
