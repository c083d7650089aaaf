package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// holdCmd is "speedia-update hold [--until TIME|DURATION] [--reason TEXT]".
func (a *app) holdCmd() *cobra.Command {
	var until, reason string
	var t time.Time // zero: until unhold
	cmd := &cobra.Command{
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
	}
	check := func(cmd *cobra.Command, _ []string) error {
		if !cmd.Flags().Changed("until") {
			return nil
		}
		var err error
		if t, err = parseUntil(until, a.now(), a.loc); err != nil {
			return badArg("--until", until, err)
		}
		return nil
	}
	cmd.RunE = a.withClient(check, func(cmd *cobra.Command, c *client.Client, _ []string) error {
		if err := c.Hold(cmd.Context(), reason, t); err != nil {
			return err
		}
		v := "until speedia-update unhold"
		if !t.IsZero() {
			v = "until " + future(t, a.loc)
		}
		if reason != "" {
			v += ": " + reason
		}
		a.say("Updates held %s.", v)
		return nil
	})
	cmd.Flags().StringVar(&until, "until", "", "hold until `TIME` or for a DURATION (default: until unhold)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown in status and history")
	return cmd
}

// unholdCmd is "speedia-update unhold".
func (a *app) unholdCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "unhold",
		Short:   "End a hold: automatic updates and reboots resume",
		Example: `  speedia-update unhold`,
		Args:    cobra.NoArgs,
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if err := c.Unhold(cmd.Context()); err != nil {
				return err
			}
			a.say("Updates resumed.")
			return nil
		}),
	}
}
