package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// statusCmd is "speedia-update status [--follow]".
func (a *app) statusCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
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
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
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
			if err := a.out(inZone(st, a.loc), func() { writeStatus(a.stdout, st, stagedAt(ctx, c, st), a.loc) }); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			if !a.asJSON {
				fmt.Fprintln(a.stdout, "\nFollowing phase changes (Ctrl-C to stop):")
			}
			for ev := range events {
				now := a.now()
				if a.asJSON {
					if err := writeJSON(a.stdout, struct {
						Time time.Time `json:"time"`
						client.PhaseEvent
					}{now, ev}); err != nil {
						return err
					}
					continue
				}
				line := now.In(a.loc).Format("15:04:05") + "  " + ev.Phase
				if ev.Detail != "" {
					line += ": " + ev.Detail
				}
				fmt.Fprintln(a.stdout, line)
			}
			return nil // interrupted: following ends that way
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep running and print each phase change")
	return cmd
}
