package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/version"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/speedia/host/updater/boot"
	"github.com/speedia/host/updater/config"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/snapshot/native"
	"github.com/speedia/host/updater/system"
)

// options are the global flags, shared by the commands.
type options struct {
	asJSON bool
	esp    string // the ESP mount point ("" = detect)
}

// newEngine is the one place that picks the engine's parts. With an ESP
// (systemd-boot), each snapshot also gets a boot entry with boot counting;
// esp "" means detect it.
func newEngine(ctx context.Context, esp string) (snapshot.Engine, error) {
	c := native.Config{Inhibitor: system.Logind{}}
	if esp == "" {
		for _, p := range []string{"/efi", "/boot/efi"} {
			if fi, err := os.Stat(filepath.Join(p, "loader")); err == nil && fi.IsDir() {
				esp = p
				break
			}
		}
	}
	if esp != "" {
		uuid, err := rootUUID(ctx)
		if err != nil {
			return nil, err
		}
		c.Loader = native.BootEntries{
			Loader:   &boot.SystemdBoot{ESP: esp},
			RootUUID: uuid,
			Options:  native.KernelOptions("/etc/kernel/cmdline"),
		}
	}
	return native.New(c), nil
}

// withEngine wraps a command body that needs the engine.
func (o *options) withEngine(body func(*cobra.Command, snapshot.Engine, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		eng, err := newEngine(cmd.Context(), o.esp)
		if err != nil {
			return err
		}
		return body(cmd, eng, args)
	}
}

// rootUUID is the UUID of the btrfs filesystem holding the root.
func rootUUID(ctx context.Context) (string, error) {
	out, err := run.Exec{}.Run(ctx, run.Cmd{Name: "btrfs", Args: []string{"filesystem", "show", "/"}})
	if err != nil {
		return "", fmt.Errorf("root filesystem UUID: %w", err)
	}
	for _, f := range strings.Split(string(out), "\n") {
		if _, after, ok := strings.Cut(f, "uuid: "); ok {
			return strings.TrimSpace(after), nil
		}
	}
	return "", fmt.Errorf("root filesystem UUID: not in %q", out)
}

func newRoot() *cobra.Command {
	o := &options{}
	var checkConfig bool
	root := &cobra.Command{
		Use:           "speedia-updated",
		Version:       version.Version,
		Short:         "Speedia host's OS update engine and daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if checkConfig {
				return cobra.MaximumNArgs(1)(cmd, args)
			}
			if len(args) > 0 { // as cobra says it for a root without arguments
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !checkConfig {
				return cmd.Help()
			}
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return verifyConfig(cmd, target, o.asJSON)
		},
	}
	root.Flags().BoolVar(&checkConfig, "check-config", false,
		"validate the configuration as the daemon loads it and exit: its own files, or [FILE|DIR] (see speedia-update config check --help)")
	root.PersistentFlags().BoolVar(&o.asJSON, "json", false, "print machine-readable JSON")
	root.PersistentFlags().StringVar(&o.esp, "esp", "", "EFI system partition for systemd-boot entries (default: /efi or /boot/efi when it has loader/)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errkind.Usage, err) })

	out := func(cmd *cobra.Command, v any, human func(io.Writer)) error {
		if o.asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		human(cmd.OutOrStdout())
		return nil
	}

	root.AddCommand(daemonCmd(o))
	root.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Refresh package sources and list what an update would change",
		Args:  cobra.NoArgs,
		RunE: o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, _ []string) error {
			changes, err := eng.Check(cmd.Context())
			if err != nil {
				return err
			}
			return out(cmd, changes, func(w io.Writer) {
				if len(changes) == 0 {
					fmt.Fprintln(w, "No updates available.")
					return
				}
				printChanges(w, changes)
			})
		}),
	})

	var desc string
	stage := &cobra.Command{
		Use:   "stage",
		Short: "Apply all updates in a new snapshot and make it the next boot",
		Long: "Apply all available updates in a new read-only snapshot of the running root and make\n" +
			"it the next boot. The running system is not changed. Exit code 3: no updates available.",
		Args: cobra.NoArgs,
		RunE: o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, _ []string) error {
			opt := snapshot.StageOptions{Description: desc}
			if !o.asJSON {
				opt.Log = cmd.ErrOrStderr()
			}
			res, err := eng.Stage(cmd.Context(), opt)
			if err != nil {
				return err
			}
			return out(cmd, res, func(w io.Writer) {
				fmt.Fprintf(w, "Staged snapshot %d; it boots next.\n", res.Snapshot.Number)
				printChanges(w, res.Changes)
				if res.KernelChanged {
					fmt.Fprintln(w, "The kernel changed: a full reboot is needed.")
				}
			})
		}),
	}
	stage.Flags().StringVar(&desc, "description", "", "description recorded with the snapshot")
	root.AddCommand(stage)

	root.AddCommand(&cobra.Command{
		Use:   "rollback [N]",
		Short: "Make snapshot N (default: the one before the booted one) the next boot",
		Args:  cobra.MaximumNArgs(1),
		RunE: o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, args []string) error {
			n, err := snapshotArg(args)
			if err != nil {
				return err
			}
			s, err := eng.Rollback(cmd.Context(), n)
			if err != nil {
				return err
			}
			return out(cmd, s, func(w io.Writer) {
				fmt.Fprintf(w, "Snapshot %d boots next.\n", s.Number)
			})
		}),
	})

	root.AddCommand(&cobra.Command{
		Use:   "mark-good N",
		Short: "Record that snapshot N booted and is healthy",
		Args:  cobra.ExactArgs(1),
		RunE: o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, args []string) error {
			n, err := snapshotArg(args)
			if err != nil {
				return err
			}
			return eng.MarkGood(cmd.Context(), n)
		}),
	})

	var keep int
	cleanup := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete old snapshots; never the booted, the next boot or the last known good",
		Args:  cobra.NoArgs,
		RunE: o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, _ []string) error {
			deleted, err := eng.Cleanup(cmd.Context(), keep)
			if err != nil {
				return err
			}
			return out(cmd, deleted, func(w io.Writer) { fmt.Fprintf(w, "Deleted snapshots: %v\n", deleted) })
		}),
	}
	cleanup.Flags().IntVar(&keep, "keep", 3, "how many recent snapshots to keep")
	root.AddCommand(cleanup)

	root.AddCommand(&cobra.Command{
		Use:   "sync-etc",
		Short: "Carry /etc edits made since staging into the pending snapshot (run before rebooting)",
		Args:  cobra.NoArgs,
		RunE:  o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, _ []string) error { return syncEtc(cmd, eng, out) }),
	})

	root.AddCommand(&cobra.Command{
		Use:   "snapshots",
		Short: "List root snapshots",
		Args:  cobra.NoArgs,
		RunE: o.withEngine(func(cmd *cobra.Command, eng snapshot.Engine, _ []string) error {
			list, err := eng.List(cmd.Context())
			if err != nil {
				return err
			}
			return out(cmd, list, func(w io.Writer) { printSnapshots(w, list) })
		}),
	})
	return root
}

// verifyConfig is --check-config: "OK:" and the files read, or every
// problem and exit 1 (the same check as speedia-update config check).
func verifyConfig(cmd *cobra.Command, target string, asJSON bool) error {
	r := config.Verify(target)
	if err := r.Write(cmd.OutOrStdout(), cmd.ErrOrStderr(), asJSON); err != nil {
		return err
	}
	if !r.OK() {
		return config.ErrInvalid
	}
	return nil
}

func syncEtc(cmd *cobra.Command, e snapshot.Engine, out func(*cobra.Command, any, func(io.Writer)) error) error {
	eng, ok := e.(*native.Engine)
	if !ok {
		return fmt.Errorf("this engine carries /etc itself")
	}
	rep, err := eng.SyncEtc(cmd.Context())
	if err != nil {
		return err
	}
	return out(cmd, rep, func(w io.Writer) {
		fmt.Fprintf(w, "Carried %d edits, %d removals, %d conflicts into the pending snapshot.\n",
			len(rep.Applied), len(rep.Removed), len(rep.Conflicts))
	})
}

func snapshotArg(args []string) (int, error) {
	if len(args) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: snapshot number must be a positive integer, got %q", errkind.Usage, args[0])
	}
	return n, nil
}

func printChanges(w io.Writer, changes []pkgver.Change) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tOLD\tNEW\tCHANGE")
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, dash(c.Old), dash(c.New), c.Kind)
	}
	tw.Flush()
}

func printSnapshots(w io.Writer, list []snapshot.Snapshot) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTATE\tFLAGS\tDATE\tCHANGES\tDESCRIPTION")
	for _, s := range list {
		flags := ""
		if s.Booted {
			flags += "booted "
		}
		if s.Default {
			flags += "next "
		}
		if s.Good {
			flags += "good "
		}
		if s.KernelChanged {
			flags += "kernel "
		}
		date := "-"
		if !s.Date.IsZero() {
			date = s.Date.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", s.Number, s.State, dash(flags), date, len(s.Changes), s.Description)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
