package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
)

// Past events print as a date and time; planned ones also name the weekday
// and the zone, since that is what an admin plans around.
func past(t time.Time, loc *time.Location) string { return t.In(loc).Format("2006-01-02 15:04") }
func future(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2006-01-02 15:04 MST")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// phaseLine says where the update cycle is, in one line. staged is when the
// pending snapshot was made (zero: unknown).
func phaseLine(st client.Status, staged time.Time, loc *time.Location) string {
	var b strings.Builder
	b.WriteString(st.Phase)
	reboot := func() {
		switch {
		case !st.NextReboot.IsZero():
			b.WriteString(", reboots " + future(st.NextReboot, loc))
			if st.NextRebootReason != "" {
				b.WriteString(" (" + st.NextRebootReason + ")")
			}
		case st.NextRebootReason != "":
			b.WriteString(", no reboot scheduled: " + st.NextRebootReason)
		default:
			b.WriteString(", no reboot scheduled")
		}
	}
	switch st.Phase {
	case "idle":
		b.WriteString(" — nothing staged")
	case "checking":
		b.WriteString(" — looking for updates")
	case "staging":
		b.WriteString(" — writing an update into a new snapshot")
	case "pending":
		if st.Pending != 0 {
			fmt.Fprintf(&b, " — snapshot %d staged", st.Pending)
			if !staged.IsZero() {
				b.WriteString(" " + past(staged, loc))
			}
		} else {
			b.WriteString(" —")
		}
		reboot()
	case "rebooting":
		fmt.Fprintf(&b, " — into snapshot %d", st.Pending)
		reboot()
	case "verifying":
		fmt.Fprintf(&b, " — checking the health of snapshot %d after boot", st.Booted)
	case "rolling-back":
		fmt.Fprintf(&b, " — going back to snapshot %d", st.LastGood)
	}
	return b.String()
}

// writeStatus prints the status for a person.
func writeStatus(w io.Writer, st client.Status, staged time.Time, loc *time.Location) {
	line := func(label, value string) { fmt.Fprintf(w, "%-13s%s\n", label+":", value) }
	line("Phase", phaseLine(st, staged, loc))
	if st.Strategy != "" {
		line("Strategy", st.Strategy)
	}
	snaps := []string{"booted " + snapNum(st.Booted)}
	if st.LastGood != 0 {
		snaps = append(snaps, "last good "+snapNum(st.LastGood))
	}
	if st.Pending != 0 {
		snaps = append(snaps, "next boot "+snapNum(st.Pending))
	}
	line("Snapshots", strings.Join(snaps, ", "))
	if !st.LastCheck.IsZero() {
		v := past(st.LastCheck, loc)
		if st.LastCheckResult != "" {
			v += ": " + st.LastCheckResult
		}
		line("Last check", v)
	}
	if !st.NextCheck.IsZero() {
		line("Next check", future(st.NextCheck, loc))
	}
	if !st.LastSuccess.IsZero() {
		line("Last update", past(st.LastSuccess, loc)+" (booted and verified)")
	}
	if st.Held {
		v := "until speedia-update unhold"
		if !st.HoldUntil.IsZero() {
			v = "until " + future(st.HoldUntil, loc)
		}
		if st.HoldReason != "" {
			v += ": " + st.HoldReason
		}
		line("Held", v)
	}
	if st.LastError != "" {
		line("Last error", st.LastError)
	}
	if len(st.PendingChanges) > 0 {
		fmt.Fprintf(w, "\nChanges in snapshot %d", st.Pending)
		if st.KernelChanged {
			fmt.Fprint(w, " (new kernel)")
		}
		fmt.Fprintln(w, ":")
		writeChanges(w, st.PendingChanges)
	}
	if len(st.BadUpdates) > 0 {
		fmt.Fprintln(w, "\nBad updates (never staged again until speedia-update clear-bad ID):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, b := range st.BadUpdates {
			fmt.Fprintf(tw, "  %s\t%s\n", b.ID, b.Summary)
		}
		tw.Flush()
	}
	if st.ConfigError != "" {
		fmt.Fprintf(w, "\nWarning: the configuration on disk is not in force: %s\n", st.ConfigError)
	}
	if len(st.RestartNeeded) > 0 {
		fmt.Fprintf(w, "\nWarning: changed keys take effect only after 'systemctl restart speedia-updated': %s\n", strings.Join(st.RestartNeeded, ", "))
	}
}

func snapNum(n uint32) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatUint(uint64(n), 10)
}

func writeChanges(w io.Writer, changes []pkgver.Change) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PACKAGE\tOLD\tNEW\tKIND")
	for _, c := range changes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, dash(c.Old), dash(c.New), c.Kind)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeHistory prints history records as a table, oldest first.
func writeHistory(w io.Writer, recs []history.Record, loc *time.Location) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "No history yet.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tSNAPSHOT\tDETAIL")
	for _, r := range recs {
		snap := "-"
		if r.Snapshot != 0 {
			snap = strconv.Itoa(r.Snapshot)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", past(r.Time, loc), r.Event, snap, describe(r, loc))
	}
	tw.Flush()
}

// describe is the detail column of one history record.
func describe(r history.Record, loc *time.Location) string {
	var parts []string
	if r.Container != "" {
		parts = append(parts, "container "+r.Container)
	}
	if r.To != 0 {
		parts = append(parts, fmt.Sprintf("to snapshot %d", r.To))
	}
	if r.At != nil {
		parts = append(parts, "for "+future(*r.At, loc))
	}
	if len(r.Changes) > 0 {
		parts = append(parts, changeSummary(r.Changes))
	}
	if r.Detail != "" {
		parts = append(parts, r.Detail)
	}
	return strings.Join(parts, "; ")
}

// changeSummary names the first few changes: "3 packages: a 1 → 2, b (new), c (removed)".
func changeSummary(changes []pkgver.Change) string {
	const show = 3
	var names []string
	for i, c := range changes {
		if i == show {
			names = append(names, fmt.Sprintf("+%d more", len(changes)-show))
			break
		}
		switch {
		case c.Old == "":
			names = append(names, c.Name+" "+c.New+" (new)")
		case c.New == "":
			names = append(names, c.Name+" (removed)")
		default:
			names = append(names, c.Name+" "+c.Old+" → "+c.New)
		}
	}
	noun := "packages"
	if len(changes) == 1 {
		noun = "package"
	}
	return fmt.Sprintf("%d %s: %s", len(changes), noun, strings.Join(names, ", "))
}

// writeSnapshots prints the snapshot list as a table.
func writeSnapshots(w io.Writer, list []snapshot.Snapshot, loc *time.Location) {
	if len(list) == 0 {
		fmt.Fprintln(w, "No snapshots.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tDATE\tSTATE\tFLAGS\tDESCRIPTION")
	for _, s := range list {
		var flags []string
		if s.Booted {
			flags = append(flags, "booted")
		}
		if s.Default {
			flags = append(flags, "next-boot")
		}
		if s.Good {
			flags = append(flags, "good")
		}
		if s.KernelChanged {
			flags = append(flags, "new-kernel")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.Number, past(s.Date, loc), s.State, dash(strings.Join(flags, ",")), s.Description)
	}
	tw.Flush()
}
