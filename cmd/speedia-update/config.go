package main

import (
	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/config"
)

// configCmd is "speedia-update config ...": the daemon's configuration,
// without the daemon.
func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the daemon's configuration files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [FILE|DIR]",
		Short: "Validate update.toml and its drop-ins as the daemon would load them",
		Long: `Reads and validates the configuration exactly as speedia-updated loads it, without
the daemon or the bus (as 'speedia-updated --check-config' does). It prints
"OK:" and the files read, or every problem as FILE:LINE: KEY: WHY on stderr and
exits 1.

Without an argument it checks the daemon's own files: /usr/lib/speedia/update.toml,
/usr/lib/speedia/update.d/*.toml, /etc/speedia/update.toml, /etc/speedia/update.d/*.toml
(an /etc drop-in masks the /usr/lib one of the same name). Otherwise, over the
built-in defaults:
  DIR                 a configuration directory: DIR/update.toml, then DIR/update.d/*.toml
  DIR named update.d  a drop-in directory: its *.toml files
  FILE update.toml    that file, then the update.d/*.toml beside it
  any other FILE      that file alone (e.g. a drop-in before installing it)

JSON: {"ok": BOOL, "files": [...], "errors": [{file, line, column, key, message}]}.`,
		Example: `  speedia-update config check
  speedia-update config check /etc/speedia
  speedia-update config check ./50-site.toml && cp 50-site.toml /etc/speedia/update.d/`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				if target = args[0]; target == "" {
					return badArg("FILE|DIR", target, usagef("empty; give none to check the daemon's own files"))
				}
			}
			a.ran = true // the command line is good
			r := config.Verify(target)
			if err := r.Write(a.stdout, a.stderr, a.asJSON); err != nil {
				return err
			}
			if !r.OK() {
				return config.ErrInvalid
			}
			return nil
		},
	})
	return cmd
}
