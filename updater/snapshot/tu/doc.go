// Package tu implements snapshot.Engine on openSUSE MicroOS with
// transactional-update (t-u), snapper, zypper and rpm.
//
// How it maps the engine onto MicroOS:
//
//   - Stage runs `transactional-update --non-interactive --no-selfupdate dup`
//     (or `up`) as a transient oneshot systemd unit, so its output lands in the
//     journal, and then reads what t-u left behind: the new default snapshot in
//     `snapper --jsonout list`, /run/reboot-needed, and the package lists of the
//     old and new snapshot (`rpm --root /.snapshots/N/snapshot -qa`).
//     t-u exits 0 without a new snapshot when zypper has nothing to update; the
//     engine sees the default snapshot unchanged and returns errkind.NothingToDo.
//   - Check runs `zypper refresh` and `zypper --xmlout dup --dry-run` on the
//     running system: t-u has no check verb, but zypper skips its read-only
//     root guard for dry runs, and t-u itself decides "nothing to update" from
//     the same dry-run summary.
//   - Rollback runs `transactional-update rollback N` as a unit; 0 picks the
//     newest ready snapshot older than the booted one (not t-u's `rollback
//     last`, which follows t-u's own state file).
//   - MarkGood stores `speedia.good=yes` in the snapshot's snapper userdata.
//   - Cleanup deletes with `snapper delete`; never the booted, default or last
//     good snapshot, nor snapshots made by others (State foreign).
//
// What is verified here: command lines (against run.Fake), the unit name and
// argv handed to the UnitStarter, and parsing of snapper, zypper, rpm and
// /run/reboot-needed output, on recorded upstream samples where they exist
// (testdata/README.md says which files are real and which are synthesized).
// What is not: nothing here has run on a MicroOS host. The D-Bus code in
// Systemd (unit.go) is exercised only through its pure helpers, and the flags
// were checked against upstream sources, not a live system. The Debian test
// machines (Debian) have no transactional-update, zypper or rpm; the transient-unit runner in unit.go is also run against real systemd in the integration tier.
package tu
