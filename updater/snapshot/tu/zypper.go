package tu

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	"github.com/speedia/host/updater/pkgver"
)

// dryRunArgs mirrors the dry run t-u itself uses to decide whether there is
// anything to update (sbin/transactional-update.in: `zypper --xmlout
// ${ZYPPER_ARG} -y --auto-agree-with-product-licenses --dry-run`, with
// ZYPPER_ARG "--no-cd dup" or "up"), run on the live root: zypper's
// NeedsWritableRoot guard lets dry runs through on a read-only root.
func dryRunArgs(method string) []string {
	args := []string{"--non-interactive", "--xmlout"}
	if method == "dup" {
		args = append(args, "--no-cd")
	}
	return append(args, method, "--dry-run", "--auto-agree-with-product-licenses")
}

type zypperStream struct {
	Messages []zypperMessage `xml:"message"`
	Summary  *struct {
		Sections []struct {
			XMLName   xml.Name
			Solvables []zypperSolvable `xml:"solvable"`
		} `xml:",any"`
	} `xml:"install-summary"`
}

type zypperMessage struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type zypperSolvable struct {
	Type       string `xml:"type,attr"`
	Name       string `xml:"name,attr"`
	Edition    string `xml:"edition,attr"`
	EditionOld string `xml:"edition-old,attr"`
}

// sectionKind maps install-summary sections (zypper src/Summary.cc,
// dumpAsXmlTo) to pkgver.Change kinds.
var sectionKind = map[string]string{
	"to-upgrade":   "upgrade",
	"to-downgrade": "downgrade",
	"to-install":   "install",
	"to-reinstall": "reinstall",
	"to-remove":    "remove",
	// Mostly repeat entries of the sections above; kept only for packages
	// not listed there (same version, new arch or vendor).
	"to-change-arch":   "reinstall",
	"to-change-vendor": "reinstall",
}

// parseInstallSummary lists the package changes in a `zypper --xmlout`
// install summary. No summary (zypper had nothing to do) means no changes.
func parseInstallSummary(data []byte) ([]pkgver.Change, error) {
	var st zypperStream
	if err := xml.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parse zypper xml: %w", err)
	}
	if st.Summary == nil {
		return nil, nil
	}
	byName := map[string]pkgver.Change{}
	secondary := map[string]bool{"to-change-arch": true, "to-change-vendor": true}
	for _, pass := range []bool{false, true} {
		for _, sec := range st.Summary.Sections {
			kind, ok := sectionKind[sec.XMLName.Local]
			if !ok || secondary[sec.XMLName.Local] != pass {
				continue
			}
			for _, s := range sec.Solvables {
				if s.Type != "package" {
					continue
				}
				if _, seen := byName[s.Name]; pass && seen {
					continue
				}
				byName[s.Name] = merge(byName[s.Name], change(kind, s))
			}
		}
	}
	out := make([]pkgver.Change, 0, len(byName))
	for _, c := range byName {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func change(kind string, s zypperSolvable) pkgver.Change {
	c := pkgver.Change{Name: s.Name, Kind: kind}
	switch kind {
	case "install":
		c.New = s.Edition
	case "remove":
		c.Old = s.Edition
	default:
		c.Old, c.New = s.EditionOld, s.Edition
		if c.Old == "" {
			c.Old = s.Edition
		}
	}
	return c
}

// merge joins an install and a remove of the same name, which zypper reports
// for multiversion packages such as kernels, into one upgrade or downgrade.
func merge(prev, next pkgver.Change) pkgver.Change {
	if prev.Name == "" {
		return next
	}
	inst, rm := prev, next
	if prev.Kind == "remove" {
		inst, rm = next, prev
	}
	if inst.Kind != "install" || rm.Kind != "remove" {
		return next
	}
	c := pkgver.Change{Name: inst.Name, Old: rm.Old, New: inst.New, Kind: "upgrade"}
	if pkgver.Compare(c.Old, c.New) > 0 {
		c.Kind = "downgrade"
	}
	return c
}

// zypperErrors returns the error messages zypper printed in XML mode, where
// they go to stdout rather than stderr.
func zypperErrors(data []byte) string {
	var st zypperStream
	if xml.Unmarshal(data, &st) != nil {
		return ""
	}
	var msgs []string
	for _, m := range st.Messages {
		if m.Type == "error" {
			msgs = append(msgs, strings.TrimSpace(m.Text))
		}
	}
	return strings.Join(msgs, "; ")
}
