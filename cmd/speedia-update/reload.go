package main

import (
	"fmt"
	"strings"

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
command fails with the reason. Every key takes effect on reload except the
few that need a restart of the daemon (containers.enabled, metrics.listen,
metrics.socket); the command names those it found changed.`,
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
			if len(st.RestartNeeded) > 0 {
				a.say("These keys take effect only after 'systemctl restart speedia-updated': %s", strings.Join(st.RestartNeeded, ", "))
			}
			return nil
		}),
	}
}
