package main

import (
	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// snapshotsCmd is "speedia-update snapshots".
func (a *app) snapshotsCmd() *cobra.Command {
	return &cobra.Command{
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
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			list, err := c.Snapshots(cmd.Context())
			if err != nil {
				return err
			}
			return a.out(list, func() { writeSnapshots(a.stdout, list, a.loc) })
		}),
	}
}
