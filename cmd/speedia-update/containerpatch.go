package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
)

// containerStatusCmd is "container status": the patch picture without
// asking any package manager.
func (a *app) containerStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show each container's OS, package manager, patch policy and last patch",
		Long: `Shows, for the named containers (none: all), the OS from the container's
/etc/os-release and its package manager (apt, apk, dnf, yum, zypper), read
through Podman without starting anything; whether it can be patched and why
not (no package manager: distroless, busybox, scratch; a read-only root
filesystem; managed by a systemd unit; stopped); its patch policy (the
org.speedia.patch label, else containers.patch); its last patch and the package
sets that failed before. "container check" also lists pending updates.

JSON: an array of {name, id, image, running, os: {id, version_id, codename,
pretty}, manager, patchable, reason, policy, pending, security, checked, error,
last: {at, step, updates, rollback_point, error}, bad}.`,
		Example: `  speedia-update container status
  speedia-update container status --json | jq '.[] | select(.patchable | not) | .name'`,
		RunE: a.withClient(checkNames, func(cmd *cobra.Command, c *client.Client, args []string) error {
			st, err := c.ContainerCheck(cmd.Context(), args, false)
			if err != nil {
				return err
			}
			return a.out(st, func() { writePatchStatus(a.stdout, st, false, a.loc) })
		}),
	}
}

// containerCheckCmd is "container check": pending updates inside.
func (a *app) containerCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check [NAME...]",
		Short: "List the pending package updates inside running containers",
		Long: `Asks the package manager inside each named running container (none: all)
for its pending updates: it refreshes the package lists and simulates an
upgrade, changing no package. Security updates are marked (Debian and Ubuntu:
from a -security suite; dnf/yum: an advisory; zypper: a security patch; apk has
no such data). Stopped and not patchable containers are listed with the reason.

JSON: as "container status", with pending: [{name, old, new, security, source}].`,
		Example: `  speedia-update container check
  speedia-update container check shop-web --json`,
		RunE: a.withClient(checkNames, func(cmd *cobra.Command, c *client.Client, args []string) error {
			a.say("Asking the package managers inside the containers…")
			st, err := c.ContainerCheck(cmd.Context(), args, true)
			if err != nil {
				return err
			}
			return a.out(st, func() { writePatchStatus(a.stdout, st, true, a.loc) })
		}),
	}
}

// containerPatchCmd is "container patch".
func (a *app) containerPatchCmd() *cobra.Command {
	var all, dryRun, securityOnly bool
	cmd := &cobra.Command{
		Use:   "patch NAME...|--all",
		Short: "Upgrade the packages inside running containers, with a rollback point",
		Long: `Patches each container in turn: a rollback point first (the container is
paused while its writable layer is committed to a local image and its volumes
and bind mounts are snapshotted), then a non-interactive upgrade inside the
running container (configuration files the admin changed are kept; a package
lock held inside is waited for), a restart and a wait until it is ready.

If the upgrade fails, or the container is not ready in time, the rollback
point is put back: a container with the same name and configuration runs from
the committed image with the data as it was; data written since the snapshot
is kept aside (never deleted) and named in the error, and the patched
container's layer is kept as an image. The failed package set is remembered
and not tried again until a newer version appears (exit 6).

--dry-run lists what would be upgraded. --all patches every running
patchable container. The last rollback points (containers.patch_keep) are kept.

JSON: an array of {name, at, step, set_id, updates, image, failed, error,
dry_run}.`,
		Example: `  speedia-update container patch shop-web --dry-run
  speedia-update container patch shop-web shop-db
  speedia-update container patch --all --security-only`,
		RunE: a.withClient(func(_ *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return fmt.Errorf("%w: name containers or pass --all, not both", errkind.Usage)
			}
			return checkNames(nil, args)
		}, func(cmd *cobra.Command, c *client.Client, args []string) error {
			names := args
			if all {
				st, err := c.ContainerCheck(cmd.Context(), nil, false)
				if err != nil {
					return err
				}
				for _, s := range st {
					if s.Patchable && s.Running {
						names = append(names, s.Name)
					}
				}
				if len(names) == 0 {
					a.say("No running container can be patched (see 'speedia-update container status').")
					return a.out([]client.ContainerPatch{}, func() {})
				}
			}
			var done []client.ContainerPatch
			var errs []error
			for _, n := range names {
				if !dryRun {
					a.say("Patching %s (rollback point, upgrade, restart, wait until ready)…", n)
				}
				p, err := c.ContainerPatch(cmd.Context(), n, dryRun, securityOnly)
				switch {
				case errors.Is(err, errkind.NothingToDo):
					a.say("%s: no updates.", n)
					continue
				case err != nil:
					if !a.asJSON && len(names) > 1 { // one container: its error is the command's
						fmt.Fprintf(a.stdout, "%s: %v\n", n, err)
					}
					errs = append(errs, err)
					continue
				}
				done = append(done, p)
				if !a.asJSON {
					writePatch(a.stdout, p)
				}
			}
			if done == nil {
				done = []client.ContainerPatch{}
			}
			if a.asJSON {
				if err := writeJSON(a.stdout, done); err != nil {
					return err
				}
			}
			switch len(errs) {
			case 0:
				return nil
			case 1:
				return errs[0]
			}
			// The first failure's kind is the exit code.
			return fmt.Errorf("%d of %d containers not patched; the first: %w", len(errs), len(names), errs[0])
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "every running container that can be patched")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be upgraded, change nothing")
	cmd.Flags().BoolVar(&securityOnly, "security-only", false, "only security updates")
	return cmd
}

func checkNames(_ *cobra.Command, args []string) error {
	for _, n := range args {
		if err := checkName(n); err != nil {
			return err
		}
	}
	return nil
}

func osName(s client.ContainerPatchStatus) string {
	if s.OS == nil {
		return "-"
	}
	return strings.TrimSpace(s.OS.ID + " " + s.OS.VersionID)
}

func writePatchStatus(w io.Writer, st []client.ContainerPatchStatus, pending bool, loc *time.Location) {
	if len(st) == 0 {
		fmt.Fprintln(w, "No containers.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tOS\tMANAGER\tPOLICY\tPENDING\tLAST PATCH\tNOTE")
	for _, s := range st {
		pend := "-"
		if s.Checked {
			pend = fmt.Sprintf("%d (%d security)", len(s.Pending), s.Security)
		}
		last := "-"
		if s.Last != nil {
			last = s.Last.At.In(loc).Format("2006-01-02 15:04") + " " + s.Last.Step
		}
		note := s.Reason
		if s.Error != "" {
			note = strings.TrimSpace(note + " error: " + s.Error)
		}
		if len(s.Bad) > 0 {
			note = strings.TrimSpace(note + fmt.Sprintf(" %d failed package sets not retried", len(s.Bad)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, osName(s), dash(s.Manager), s.Policy, pend, last, dash(note))
	}
	tw.Flush()
	if !pending {
		return
	}
	for _, s := range st {
		if len(s.Pending) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", s.Name)
		writePackages(w, s.Pending)
	}
}

func writePackages(w io.Writer, ps []client.ContainerPackage) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range ps {
		src := dash(p.Source)
		if p.Security {
			src += " (security)"
		}
		fmt.Fprintf(tw, "  %s\t%s -> %s\t%s\n", p.Name, dash(p.Old), p.New, src)
	}
	tw.Flush()
}

func writePatch(w io.Writer, p client.ContainerPatch) {
	if p.DryRun {
		fmt.Fprintf(w, "%s: %d updates would be installed (package set %s):\n", p.Name, len(p.Updates), p.SetID)
		writePackages(w, p.Updates)
		return
	}
	fmt.Fprintf(w, "%s: patched, %d packages upgraded; rollback point %s\n", p.Name, len(p.Updates), p.Image)
}
