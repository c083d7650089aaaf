package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// rollbackCmd is "speedia-update rollback [SNAPSHOT] [--reboot WHEN]".
func (a *app) rollbackCmd() *cobra.Command {
	var reboot string
	var n uint32    // 0: the last good snapshot
	var when string // the API's "when", from --reboot
	cmd := &cobra.Command{
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
		ValidArgsFunction: completeSnapshots(a.env),
	}
	check := func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			var err error
			if n, err = snapshotNumber(args[0]); err != nil {
				return err
			}
		}
		if cmd.Flags().Changed("reboot") && reboot == "" {
			return badArg("--reboot", reboot, usagef("use now, next-window or a TIME"))
		}
		var err error
		if when, err = rebootWhen(reboot, a.now(), a.loc); err != nil {
			return badArg("--reboot", reboot, err)
		}
		return nil
	}
	cmd.RunE = a.withClient(check, func(cmd *cobra.Command, c *client.Client, _ []string) error {
		chosen, err := c.Rollback(cmd.Context(), n, when)
		if err != nil {
			return err
		}
		return a.out(map[string]uint32{"snapshot": chosen}, func() {
			fmt.Fprintf(a.stdout, "Snapshot %d is the next boot.\n", chosen)
			switch when {
			case "":
				fmt.Fprintln(a.stdout, "It takes effect at the next reboot: speedia-update reboot")
			case "now":
				fmt.Fprintln(a.stdout, "Rebooting now.")
			default:
				if st, err := c.Status(cmd.Context()); err == nil && !st.NextReboot.IsZero() {
					fmt.Fprintf(a.stdout, "Reboot scheduled for %s.\n", future(st.NextReboot, a.loc))
				}
			}
		})
	})
	cmd.Flags().StringVar(&reboot, "reboot", "", "reboot into it: now, next-window, or at `WHEN` (a TIME)")
	return cmd
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

// completeSnapshots offers the snapshot numbers, described.
func completeSnapshots(e *env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return completeFirst(e, func(ctx context.Context, c *client.Client) ([]string, error) {
		list, err := c.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range list {
			if s.State == "ready" && !s.Booted {
				out = append(out, fmt.Sprintf("%d\t%s %s", s.Number, past(s.Date, e.loc), s.Description))
			}
		}
		return out, nil
	})
}

// completeFirst completes the first argument with what list asks the
// daemon for; nothing (and no file names) when it cannot be reached.
func completeFirst(e *env, list func(context.Context, *client.Client) ([]string, error)) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := e.client(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out, err := list(cmd.Context(), c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
