package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
)

// checkCmd is "speedia-update check".
func (a *app) checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Look for updates now, and stage them when found",
		Long: `Refreshes the package sources and looks for updates now, as a scheduled check
would: updates found are staged into a new snapshot (unless updates are held or
marked bad), and the reboot follows the strategy. Exits 3 when there are none.

JSON: {"changes": N}, the number of packages the update changes.`,
		Example: `  speedia-update check && speedia-update status`,
		Args:    cobra.NoArgs,
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			n, err := c.Check(cmd.Context())
			if errors.Is(err, errkind.NothingToDo) || (err == nil && n == 0) {
				if a.asJSON {
					_ = writeJSON(a.stdout, map[string]uint32{"changes": 0})
				}
				return a.nothing()
			}
			if err != nil {
				return err
			}
			err = a.out(map[string]uint32{"changes": n}, func() {
				fmt.Fprintf(a.stdout, "Found updates for %d %s.\n", n, plural(int(n), "package", "packages"))
			})
			a.afterwards(cmd.Context(), c)
			return err
		}),
	}
}
