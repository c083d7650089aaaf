package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
)

// containerCmd is "speedia-update container ...": hard upgrades of
// stateful containers and the containers' picture.
func (a *app) containerCmd() *cobra.Command {
	ct := &cobra.Command{
		Use:   "container",
		Short: "Hard-upgrade containers and see how they came back after a reboot",
		Long: `Containers that run before an update reboot are stopped in dependency order
right before it and brought back after it (see docs/containers.md). These
commands show that and hard-upgrade a stateful container to a new image
without losing its files, databases or configuration.`,
	}
	var image string
	var force bool
	upgrade := &cobra.Command{
		Use:   "upgrade NAME --image IMAGE",
		Short: "Move a container to a new image, keeping its configuration and data",
		Long: `Stops container NAME, snapshots its data (named volumes and writable bind
mounts: a btrfs snapshot or reflink copy on btrfs, a tar archive elsewhere),
creates a container from IMAGE with the same configuration (env, mounts,
ports, labels, command, restart policy, resources, pod), starts it and waits
until it is healthy. If it does not come up, it is removed, the data is
restored exactly and the old container runs again; the command then fails.

The old container is kept, stopped and renamed, with its restart policy
disabled (so nothing starts it at boot), together with the data snapshot, for
containers.keep (72h by default) or until "speedia-update container prune
NAME", for "speedia-update container rollback NAME". IMAGE must be in local
storage (podman pull or load it first).

Files the container wrote into its own writable layer (not in a volume or
bind mount, as "podman diff" shows them) are not carried over to the new
container yet. Package-manager and runtime files there are fine (the new image
brings its own); any other file makes the upgrade refuse, listing them. Move
them to a volume first, or pass --force: the kept old container still holds
them and a rollback brings them back.

JSON: {name, at, keep_until, old_image, new_image, old_id, new_id, kept,
kept_restart: {policy, retries}, writable_layer: {user, paths, churn}, data,
notes}.`,
		Example: `  speedia-update container upgrade shop-db --image localhost/mariadb:10.11.9
  speedia-update container upgrade web --image registry.example.com/site:2 --json
  speedia-update container upgrade legacy --image localhost/legacy:2 --force`,
		Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string) error {
			if err := checkName(args[0]); err != nil {
				return err
			}
			if !cmd.Flags().Changed("image") {
				return fmt.Errorf("%w: --image is required", errkind.Usage)
			}
			if strings.TrimSpace(image) == "" {
				return badArg("--image", image, usagef("empty"))
			}
			return nil
		}, func(cmd *cobra.Command, c *client.Client, args []string) error {
			a.say("Upgrading %s to %s (stop, snapshot data, start, wait until healthy)…", args[0], image)
			u, err := c.ContainerUpgrade(cmd.Context(), args[0], image, force)
			if err != nil {
				return err
			}
			return a.out(u, func() { writeUpgrade(a.stdout, "Upgraded", u, a.loc) })
		}),
	}
	upgrade.Flags().StringVar(&image, "image", "", "the new image (local)")
	upgrade.Flags().BoolVar(&force, "force", false, "upgrade even when the container has files of its own in its writable layer (the kept old container keeps them)")

	rollback := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Undo the last patch or kept upgrade of a container",
		Long: `Undoes what was done to container NAME last: a patch or a hard upgrade.

A patch: the container is stopped, the data written since the patch's
rollback point is kept aside (never deleted; the output says where), and a
container with the same name and configuration runs from the rollback point
(the committed layer from before the patch) with the data as it was then. The
package set is marked bad, so it is not applied again until a newer version.

A hard upgrade: stops the upgraded container NAME, restores the data saved before the upgrade
and runs the old container again, with its writable layer and its restart
policy (recreated from its definition if it was removed by hand). The upgraded
container's current data is saved first, so a rollback that fails puts
everything back. Possible while the upgrade is kept.`,
		Example: `  speedia-update container rollback shop-db`,
		Args:    exactArgs(1),
		RunE: a.withClient(func(_ *cobra.Command, args []string) error { return checkName(args[0]) }, func(cmd *cobra.Command, c *client.Client, args []string) error {
			u, err := c.ContainerRollback(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.out(u, func() {
				if p := u.Patch; p != nil {
					a.say("%s runs its rollback point %s again (the patch of %d packages is undone), with its data from %s.",
						p.Name, p.Image, len(p.Updates), p.At.In(a.loc).Format("2006-01-02 15:04"))
					if p.Aside != nil {
						a.say("The data written since is kept in %s.", p.Aside.Dir)
					}
					return
				}
				if u.ContainerUpgrade != nil {
					a.say("%s runs %s again, with its data from %s.", u.Name, u.OldImage, u.At.In(a.loc).Format("2006-01-02 15:04"))
				}
			})
		}),
	}

	prune := &cobra.Command{
		Use:   "prune NAME",
		Short: "Discard the kept upgrade of a container: its old container and data snapshot",
		Long: `Removes what the last upgrade of NAME kept for a rollback: the stopped old
container (with the files in its writable layer), the data snapshot and the
tag on the old image. The upgraded container is not touched. Without it the
upgrade is discarded when containers.keep has passed.`,
		Example: `  speedia-update container prune shop-db`,
		Args:    exactArgs(1),
		RunE: a.withClient(func(_ *cobra.Command, args []string) error { return checkName(args[0]) }, func(cmd *cobra.Command, c *client.Client, args []string) error {
			u, err := c.ContainerPrune(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.out(u, func() {
				kept := "its data snapshot"
				if u.Kept != "" {
					kept = "old container " + u.Kept + " and its data snapshot"
				}
				a.say("Discarded the upgrade of %s kept since %s: %s.", u.Name, u.At.In(a.loc).Format("2006-01-02 15:04"), kept)
			})
		}),
	}

	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Show the last stop or bring-back and the kept upgrades",
		Long: `Shows the containers stopped for an update reboot that are not back yet, the
last time containers were stopped or brought back (per container: what was
done, whether it came up, how long it took) and the kept upgrades.

JSON: {stopped, last: {what, at, results: [{name, action, ok, critical, error,
took_ns}], notes, error}, upgrades: [...]}.`,
		Example: `  speedia-update container list
  speedia-update container list --json | jq '.last.results[] | select(.ok | not)'`,
		Args: cobra.NoArgs,
		RunE: a.withClient(nil, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			r, err := c.Containers(cmd.Context())
			if err != nil {
				return err
			}
			return a.out(r, func() { writeContainers(a.stdout, r, a.loc) })
		}),
	}
	ct.AddCommand(upgrade, rollback, prune, list, a.containerStatusCmd(), a.containerCheckCmd(), a.containerPatchCmd())
	return ct
}

// checkName refuses an empty container name before asking the daemon.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return badArg("NAME", name, usagef("empty"))
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return fmt.Errorf("%w: %w", errkind.Usage, err)
		}
		return nil
	}
}

func writeUpgrade(w io.Writer, verb string, u client.ContainerUpgrade, loc *time.Location) {
	fmt.Fprintf(w, "%s %s: %s -> %s\n", verb, u.Name, u.OldImage, u.NewImage)
	kept := "its definition"
	if u.Kept != "" {
		kept = "container " + u.Kept + " (stopped"
		if r := u.KeptRestart; r != nil && r.Policy != "" && r.Policy != "no" {
			kept += ", restart policy " + r.Policy + " disabled until a rollback"
		}
		kept += ")"
	}
	fmt.Fprintf(w, "Kept until %s for 'speedia-update container rollback %s': %s", u.KeepUntil.In(loc).Format("2006-01-02 15:04"), u.Name, kept)
	for _, d := range u.Data {
		fmt.Fprintf(w, ", %s %s (%s)", d.Kind, d.Name, d.Method)
	}
	fmt.Fprintln(w)
	if l := u.WritableLayer; l != nil && l.User > 0 {
		fmt.Fprintf(w, "Warning: %d files in the old container's writable layer were not carried over (%s", l.User, strings.Join(l.Paths, ", "))
		if n := l.User - len(l.Paths); n > 0 {
			fmt.Fprintf(w, " and %d more", n)
		}
		fmt.Fprintf(w, "); the kept container %s holds them until 'speedia-update container prune %s'\n", dash(u.Kept), u.Name)
	}
	if l := u.WritableLayer; l != nil && l.Churn > 0 {
		fmt.Fprintf(w, "Note: %d package-manager or runtime files in the old container's writable layer were left behind (the new image brings its own)\n", l.Churn)
	}
	for _, n := range u.Notes {
		fmt.Fprintln(w, "Note: "+n)
	}
}

func writeContainers(w io.Writer, r client.Containers, loc *time.Location) {
	if len(r.Stopped) > 0 {
		fmt.Fprintf(w, "Stopped for the update reboot, not back yet: %s\n", strings.Join(r.Stopped, ", "))
	}
	if r.Last == nil {
		fmt.Fprintln(w, "No containers stopped or brought back since the daemon started.")
	} else {
		verb := map[string]string{"stop": "Stopped", "start": "Brought back"}[r.Last.What]
		fmt.Fprintf(w, "%s at %s:\n", verb, r.Last.At.In(loc).Format("2006-01-02 15:04:05"))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CONTAINER\tRESULT\tACTION\tTOOK\tDETAIL")
		for _, x := range r.Last.Results {
			res := "ok"
			if !x.OK {
				res = "FAILED"
				if x.Critical {
					res = "FAILED (critical)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Name, res, x.Action, x.Took.Round(100*time.Millisecond), dash(x.Error))
		}
		tw.Flush()
		for _, n := range r.Last.Notes {
			fmt.Fprintln(w, "Note: "+n)
		}
		if r.Last.Error != "" {
			fmt.Fprintln(w, "Error: "+r.Last.Error)
		}
	}
	if len(r.Upgrades) == 0 {
		fmt.Fprintln(w, "No kept upgrades.")
		return
	}
	fmt.Fprintln(w, "Kept upgrades (speedia-update container rollback NAME):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tUPGRADED\tFROM\tTO\tKEPT UNTIL")
	for _, u := range r.Upgrades {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.At.In(loc).Format("2006-01-02 15:04"), u.OldImage, u.NewImage, u.KeepUntil.In(loc).Format("2006-01-02 15:04"))
	}
	tw.Flush()
}
