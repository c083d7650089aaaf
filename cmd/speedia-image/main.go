// Command speedia-image builds Speedia host images from a host spec: see
// docs/image.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/speedia/host/image/build"
	"github.com/speedia/host/image/configdrive"
	"github.com/speedia/host/image/inspect"
	"github.com/speedia/host/image/mountns"
	"github.com/speedia/host/image/spec"
	"github.com/speedia/host/kiwi"
	"github.com/speedia/host/updater/version"
)

// binaries are the speedia programs an image carries.
var binaries = []string{"speedia-updated", "speedia-update", "speedia-containers"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "speedia-image:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "speedia-image",
		Short:         "Build Speedia host images from a host spec",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errUsage, err) })
	root.AddCommand(newBuild(), newConfigDrive(), newInspect(), newValidate(), newRender())
	return root
}

func args1(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: want one %s", errUsage, what)
		}
		return nil
	}
}

func newBuild() *cobra.Command {
	var out, formats, cache, bins string
	c := &cobra.Command{
		Use:   "build SPEC",
		Short: "Build the images a spec describes (root; Debian base)",
		Args:  args1("spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := spec.Load(args[0])
			if err != nil {
				return err
			}
			fs, err := parseFormats(formats)
			if err != nil {
				return err
			}
			b, err := findBinaries(bins)
			if err != nil {
				return err
			}
			if os.Geteuid() == 0 {
				// Every mount of the build (KIWI's and ours) dies with it.
				if err := mountns.Reexec(); err != nil {
					return err
				}
			}
			m, err := build.Build(cmd.Context(), build.Options{Spec: s, Out: out, Formats: fs, Binaries: b, Cache: cache, Progress: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			for _, o := range m.Outputs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", o.SHA256, filepath.Join(out, o.File))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "manifest:", filepath.Join(out, "manifest.json"))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "out", "output directory")
	c.Flags().StringVar(&formats, "format", "", "output formats, comma-separated: qcow2, raw, iso (default: the spec's)")
	c.Flags().StringVar(&cache, "cache", build.DefaultCache, "cache of prepared root trees")
	c.Flags().StringVar(&bins, "binaries", "", "directory with "+strings.Join(binaries, ", ")+" (default: beside speedia-image)")
	return c
}

func parseFormats(s string) ([]spec.Format, error) {
	if s == "" {
		return nil, nil
	}
	var out []spec.Format
	for _, f := range strings.Split(s, ",") {
		switch spec.Format(f) {
		case spec.FormatQcow2, spec.FormatRaw, spec.FormatISO:
			out = append(out, spec.Format(f))
		default:
			return nil, fmt.Errorf("%w: --format %q: not qcow2, raw or iso", errUsage, f)
		}
	}
	return out, nil
}

func findBinaries(dir string) (map[string]string, error) {
	if dir == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		dir = filepath.Dir(self)
	}
	out := map[string]string{}
	for _, b := range binaries {
		p := filepath.Join(dir, b)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s not found in %s: build them first (make build) or pass --binaries DIR", b, dir)
		}
		out[b] = p
	}
	return out, nil
}

func newConfigDrive() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "config-drive SPEC",
		Short: "Write a first-boot drive (combustion + ignition) from a spec, without root",
		Args:  args1("spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("%w: --out FILE is required", errUsage)
			}
			s, err := spec.Load(args[0])
			if err != nil {
				return err
			}
			if err := configdrive.Write(s, out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "drive image to write")
	return c
}

func newValidate() *cobra.Command {
	return &cobra.Command{
		Use:   "validate SPEC",
		Short: "Check a spec and its rendered KIWI description, offline",
		Args:  args1("spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := spec.Load(args[0])
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "speedia-validate-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if _, err := kiwi.Render(s, filepath.Join(dir, "desc"), nil); err != nil {
				return err
			}
			if err := kiwi.Info(cmd.Context(), filepath.Join(dir, "desc")); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%s %s, base %s; KIWI description checked with kiwi-ng image info)\n", args[0], s.Name, s.Version, s.Base)
			return nil
		},
	}
}

func newRender() *cobra.Command {
	var out, bins string
	c := &cobra.Command{
		Use:   "render SPEC --out DIR",
		Short: "Write the KIWI description of a spec (MicroOS: build it with kiwi-ng system build)",
		Args:  args1("spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("%w: --out DIR is required", errUsage)
			}
			s, err := spec.Load(args[0])
			if err != nil {
				return err
			}
			b, err := findBinaries(bins)
			if err != nil {
				return err
			}
			if _, err := kiwi.Render(s, out, func(root string) error { return build.Overlay(root, b) }); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "description directory to create")
	c.Flags().StringVar(&bins, "binaries", "", "directory with the speedia binaries (default: beside speedia-image)")
	return c
}

func newInspect() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show what is inside an image (raw or qcow2) and check it against its manifest",
		Args:  args1("image file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			readRoot := os.Geteuid() == 0
			if readRoot {
				if err := mountns.Reexec(); err != nil {
					return err
				}
			}
			r, err := inspect.Inspect(cmd.Context(), args[0], inspect.Options{ReadRoot: readRoot})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), r)
			}
			if r.Failed() {
				return errors.New("the image does not match its manifest (see the checks above)")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print machine-readable JSON")
	return c
}

func printReport(w io.Writer, r *inspect.Report) {
	fmt.Fprintf(w, "image      %s (%s, %d MiB)\n", r.Image, r.Format, r.Size>>20)
	fmt.Fprintf(w, "disk GUID  %s\n", r.DiskGUID)
	for _, p := range r.Partitions {
		fmt.Fprintf(w, "partition  %d %-6s %-18s %s  at %d MiB, %d MiB\n", p.Index, p.Name, p.Type, p.GUID, p.Start>>20, p.Size>>20)
	}
	if r.ESP != nil {
		fmt.Fprintf(w, "ESP files  %s\n", strings.Join(r.ESP.Files, " "))
		for _, e := range r.ESP.Entries {
			fmt.Fprintf(w, "boot entry %s  %q state=%s tries-left=%d\n           linux %s initrd %s\n           options %s\n", e.File, e.Title, e.State, e.TriesLeft, e.Kernel, e.Initrd, e.Options)
		}
	}
	if r.Root != nil {
		fmt.Fprintf(w, "root       %s uuid=%s label=%s\n", r.Root.FSType, r.Root.UUID, r.Root.Label)
		if r.Root.Image != nil {
			fmt.Fprintf(w, "image      %s %s (base %s), speedia %s\n", r.Root.Image.Name, r.Root.Image.Version, r.Root.Image.Base, r.Root.Image.SpeediaVersion)
			if r.Root.UpdatePolicy == "" {
				fmt.Fprintln(w, "policy     shipped defaults (/usr/lib/speedia/update.toml)")
			} else {
				fmt.Fprintf(w, "policy     /etc/speedia/update.toml:\n%s", indent(r.Root.UpdatePolicy))
			}
		}
		if r.Root.Unread != "" {
			fmt.Fprintf(w, "inside     not read: %s\n", r.Root.Unread)
		}
	}
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "check %s %s", mark, c.What)
		if !c.OK {
			fmt.Fprintf(w, ": got %s, want %s", c.Got, c.Want)
		}
		fmt.Fprintln(w)
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("           " + l + "\n")
	}
	return b.String()
}
