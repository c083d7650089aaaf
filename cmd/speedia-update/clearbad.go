package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// clearBadCmd is "speedia-update clear-bad [ID]".
func (a *app) clearBadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "clear-bad [ID]",
		Short: "Allow an update marked bad to be staged again",
		Long: `An update whose snapshot failed its health checks after boot is marked bad and
never staged again, so the host does not loop. Once the cause is fixed (or a
newer package fixes it), clear the mark. Without ID, every mark is cleared.
The IDs are listed by 'speedia-update status'.`,
		Example: `  speedia-update clear-bad 3f9c2a
  speedia-update clear-bad           # all of them`,
		Args:              usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeBad(a.env),
		RunE: a.withClient(checkClearBad, func(cmd *cobra.Command, c *client.Client, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if err := c.ClearBad(cmd.Context(), id); err != nil {
				return err
			}
			if id == "" {
				a.say("Every bad-update mark cleared.")
			} else {
				a.say("Bad-update mark %s cleared.", id)
			}
			return nil
		}),
	}
}

// checkClearBad refuses an empty ID: to the daemon it means every mark.
func checkClearBad(_ *cobra.Command, args []string) error {
	if len(args) == 1 && strings.TrimSpace(args[0]) == "" {
		return badArg("ID", args[0], usagef("empty; to clear every mark, give no ID"))
	}
	return nil
}

// completeBad offers the bad-update IDs with their summaries.
func completeBad(e *env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return completeFirst(e, func(ctx context.Context, c *client.Client) ([]string, error) {
		st, err := c.Status(ctx)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, b := range st.BadUpdates {
			out = append(out, b.ID+"\t"+strings.ReplaceAll(b.Summary, "\t", " "))
		}
		return out, nil
	})
}
