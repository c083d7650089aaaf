package main

import (
	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// historyCmd is "speedia-update history [--limit N]".
func (a *app) historyCmd() *cobra.Command {
	var limit uint32
	cmd := &cobra.Command{
		Use:   "history [--limit N]",
		Short: "List past update events",
		Long: `Lists the daemon's update history, oldest first: checks, staging, scheduled
reboots, verified boots, rollbacks, holds.

JSON: an array of records {time, event, snapshot, to, at, update, changes,
detail, boot_id}; see docs/cli.md.`,
		Example: `  speedia-update history
  speedia-update history --limit 0 --json`,
		Args: cobra.NoArgs,
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			recs, err := c.History(cmd.Context(), limit)
			if err != nil {
				return err
			}
			return a.out(recs, func() { writeHistory(a.stdout, recs, a.loc) })
		}),
	}
	cmd.Flags().Uint32VarP(&limit, "limit", "n", 20, "show the newest N records (0: all)")
	return cmd
}
