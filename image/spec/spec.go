// Package spec reads a host spec: the one TOML file a hoster writes to
// describe a Speedia host image (see docs/image.md).
package spec

import (
	"time"

	"github.com/speedia/host/updater/config"
)

// Base is the distribution an image is built from.
type Base string

const (
	BaseDebian  Base = "debian"  // Debian bookworm: built and booted on our machines
	BaseMicroOS Base = "microos" // openSUSE MicroOS: production; KIWI builds the whole disk
)

// Format is an output image format.
type Format string

const (
	FormatQcow2 Format = "qcow2"
	FormatRaw   Format = "raw"
	FormatISO   Format = "iso" // self-install ISO
)

// Spec is a loaded and validated host spec.
type Spec struct {
	File string // path it was read from
	Hash string // sha256 (hex) of the file's bytes and of the first-boot script's

	Name       string    // image name: lower-case letters, digits, '-'
	Version    string    // MAJOR.MINOR.PATCH, digits only (KIWI's format)
	Base       Base      //
	Date       time.Time // release date, UTC: SOURCE_DATE_EPOCH of the build
	Hostname   string    // "" = keep the base's default
	Timezone   string    // IANA name; default "UTC"
	KernelArgs []string  // extra kernel command line; default serial + VGA console
	Packages   []string  // extra packages on top of the base's
	DiskSize   int64     // bytes
	Formats    []Format  // default [qcow2]

	Users     []User
	Update    Update
	Source    Source
	Firstboot Firstboot
}

// User is an account with SSH keys. Name "root" sets root's keys.
type User struct {
	Name    string
	Groups  []string
	Shell   string // default /bin/bash
	SSHKeys []string
}

// Update is the host's update policy: the spec's [update] table, which has
// the schema of /etc/speedia/update.toml.
type Update struct {
	TOML   string        // the table re-encoded as a standalone update.toml; "" = shipped defaults
	Config config.Config // defaults merged with the table, validated
}

// Source is where the host gets its packages, at build time and for updates.
type Source struct {
	// Debian: one apt repository line each, deb822-free one-line form
	// ("http://deb.debian.org/debian bookworm main").
	Apt []string
	// MicroOS: repository URLs.
	Repositories []string
}

// Firstboot is what the config drive carries besides keys, hostname and policy.
type Firstboot struct {
	Script     string // path of an optional shell script (resolved against the spec's directory)
	ScriptBody []byte // its content, read at load time
}
