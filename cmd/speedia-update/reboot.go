package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// rebootCmd is "speedia-update reboot [--now | --at TIME | --next-window]".
func (a *app) rebootCmd() *cobra.Command {
	var now, nextWindow bool
	var at string
	when := "next-window" // the API's "when", from the flags
	cmd := &cobra.Command{
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
	}
	check := func(cmd *cobra.Command, _ []string) error {
		switch {
		case now:
			when = "now"
		case cmd.Flags().Changed("at"):
			t, err := parseTime(at, a.now(), a.loc)
			if err != nil {
				return badArg("--at", at, err)
			}
			when = t.Format(time.RFC3339)
		}
		return nil
	}
	cmd.RunE = a.withClient(check, func(cmd *cobra.Command, c *client.Client, _ []string) error {
		t, err := c.Reboot(cmd.Context(), when)
		if err != nil {
			return err
		}
		return a.out(map[string]time.Time{"at": t.In(a.loc)}, func() {
			if now {
				fmt.Fprintln(a.stdout, "Rebooting now.")
				return
			}
			fmt.Fprintf(a.stdout, "Reboot scheduled for %s.\n", future(t, a.loc))
		})
	})
	cmd.Flags().BoolVar(&now, "now", false, "reboot now")
	cmd.Flags().StringVar(&at, "at", "", "reboot at `TIME`")
	cmd.Flags().BoolVar(&nextWindow, "next-window", false, "reboot in the next maintenance window (the default)")
	cmd.MarkFlagsMutuallyExclusive("now", "at", "next-window")
	return cmd
}

// cancelCmd is "speedia-update cancel".
func (a *app) cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel",
		Short: "Cancel the scheduled reboot",
		Long: `Cancels the scheduled reboot. The staged snapshot stays the next boot; the
daemon schedules no reboot for it again until a newer update is staged or an
admin runs 'speedia-update reboot'.`,
		Example: `  speedia-update cancel`,
		Args:    cobra.NoArgs,
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if err := c.CancelReboot(cmd.Context()); err != nil {
				return err
			}
			a.say("Scheduled reboot cancelled.")
			return nil
		}),
	}
}
