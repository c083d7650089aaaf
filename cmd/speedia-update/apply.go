package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
)

// applyCmd is "speedia-update apply [--quiet]".
func (a *app) applyCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
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
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			var onLine func(string)
			var p *progress
			if !quiet {
				p = newProgress(a.stderr, a.tty, a.width, a.now)
				p.Start("Staging updates…")
				onLine = p.Line
			}
			n, err := c.Apply(cmd.Context(), onLine)
			if p != nil {
				p.Stop(err != nil && !errors.Is(err, errkind.NothingToDo))
			}
			if errors.Is(err, errkind.NothingToDo) {
				return a.nothing()
			}
			if err != nil {
				return err
			}
			err = a.out(map[string]uint32{"snapshot": n}, func() {
				fmt.Fprintf(a.stdout, "Staged snapshot %d.\n", n)
			})
			a.afterwards(cmd.Context(), c)
			return err
		}),
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show the package manager's output")
	return cmd
}
