package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
)

// reloadCmd is "speedia-update reload".
func (a *app) reloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon read its configuration again",
		Long: `Makes the daemon read its configuration files again (as SIGHUP does). When the
files are invalid the daemon keeps the configuration in force, and this
command fails with the reason.`,
		Example: `  speedia-update reload`,
		Args:    cobra.NoArgs,
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if err := c.Reload(cmd.Context()); err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if st.ConfigError != "" {
				return fmt.Errorf("the configuration on disk is not in force: %s", st.ConfigError)
			}
			a.say("Configuration reloaded.")
			return nil
		}),
	}
}
