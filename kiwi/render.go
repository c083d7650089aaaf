package kiwi

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/speedia/host/image/spec"
)

//go:embed templates
var templates embed.FS

// DebianPackages are the Debian base's packages; the spec adds its own.
var DebianPackages = []string{
	"systemd", "systemd-sysv", "systemd-resolved", "dbus", "libpam-systemd", "udev", "kmod",
	"linux-image-amd64", "initramfs-tools", "btrfs-progs", "snapper", "systemd-boot-efi",
	"openssh-server", "podman", "catatonit", "busybox-static", "apt", "ca-certificates",
	"iproute2", "sudo", "less", "procps", "util-linux", "e2fsprogs", "dosfstools",
}

// MicroOSPackages are the MicroOS base's packages (see ANCHORS: openSUSE's
// MicroOS description); the spec adds its own.
var MicroOSPackages = []string{
	"patterns-microos-base-zypper", "patterns-microos-defaults", "patterns-base-bootloader",
	"patterns-containers-container_runtime", "kernel-default", "transactional-update",
	"health-checker", "snapper", "podman", "combustion", "ignition-dracut", "openssh",
}

// Description is a rendered KIWI image description directory.
type Description struct {
	Dir      string
	Packages []string // every package named in it
}

// Render writes the KIWI description for s into dir (created; must not
// exist): config.xml, config.sh and the overlay root/, which overlay fills
// (binaries, units, files). dir is removed again if anything fails.
func Render(s *spec.Spec, dir string, overlay func(root string) error) (d *Description, err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("render KIWI description: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	data, err := newData(s)
	if err != nil {
		return nil, err
	}
	base := string(s.Base)
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"config.xml", 0o644}, {"config.sh", 0o755}, {"kiwi.yml", 0o644}} {
		if _, err := fs.Stat(templates, "templates/"+base+"/"+f.name); err != nil {
			continue // not every base has every file
		}
		var b bytes.Buffer
		t, err := template.New(f.name).ParseFS(templates, "templates/"+base+"/"+f.name)
		if err != nil {
			return nil, fmt.Errorf("render KIWI description: %w", err)
		}
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("render KIWI description %s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b.Bytes(), f.mode); err != nil {
			return nil, fmt.Errorf("render KIWI description: %w", err)
		}
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, fmt.Errorf("render KIWI description: %w", err)
	}
	if overlay != nil {
		if err := overlay(root); err != nil {
			return nil, fmt.Errorf("render KIWI description overlay: %w", err)
		}
	}
	return &Description{Dir: dir, Packages: data.Packages}, nil
}

type userData struct {
	Name, NameQ, Home, HomeQ, Shell, Groups, Keys string
}

type aptData struct {
	Alias, URL, Suite, Components string
}

type tmplData struct {
	Name          string
	Version       string
	Timezone      string
	KernelCmdline string
	HostnameQ     string
	Packages      []string
	Users         []userData
	Apt           []aptData
	AptSources    string
	Repositories  []string
	DiskMiB       int64
	InstallISO    bool
}

func newData(s *spec.Spec) (*tmplData, error) {
	d := &tmplData{
		Name:          s.Name,
		Version:       s.Version,
		Timezone:      s.Timezone,
		KernelCmdline: strings.Join(s.KernelArgs, " "),
		HostnameQ:     shellQuote(s.Hostname),
		Repositories:  s.Source.Repositories,
		DiskMiB:       s.DiskSize >> 20,
		InstallISO:    slices.Contains(s.Formats, spec.FormatISO),
	}
	if d.Timezone == "" {
		d.Timezone = "UTC"
	}
	if s.Hostname == "" {
		d.HostnameQ = shellQuote(s.Name)
	}
	switch s.Base {
	case spec.BaseDebian:
		d.Packages = append(slices.Clone(DebianPackages), s.Packages...)
	case spec.BaseMicroOS:
		d.Packages = append(slices.Clone(MicroOSPackages), s.Packages...)
	default:
		return nil, fmt.Errorf("render KIWI description: base %q: not debian or microos", s.Base)
	}
	d.Packages = dedup(d.Packages)
	for i, line := range s.Source.Apt {
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("render KIWI description: apt source %q: want URL SUITE COMPONENT", line)
		}
		d.Apt = append(d.Apt, aptData{Alias: fmt.Sprintf("apt%d-%s", i, f[1]), URL: f[0], Suite: f[1], Components: strings.Join(f[2:], ",")})
		d.AptSources += "deb " + line + "\n"
	}
	for _, u := range s.Users {
		home := "/home/" + u.Name
		if u.Name == "root" {
			home = "/root"
		}
		shell := u.Shell
		if shell == "" {
			shell = "/bin/bash"
		}
		keys := ""
		for _, k := range u.SSHKeys {
			keys += k + "\n"
		}
		d.Users = append(d.Users, userData{
			Name: u.Name, NameQ: shellQuote(u.Name), Home: home, HomeQ: shellQuote(home),
			Shell: shell, Groups: strings.Join(u.Groups, ","), Keys: keys,
		})
	}
	return d, nil
}

func dedup(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
