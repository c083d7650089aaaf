package main

import (
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
)

var cet = time.FixedZone("CET", 3600)

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, cet)
	if err != nil {
		panic(err)
	}
	return t
}

func pendingStatus() client.Status {
	return client.Status{
		Phase: "pending", Strategy: "periodic", Booted: 4, Pending: 5, LastGood: 4,
		PendingChanges: []pkgver.Change{
			{Name: "linux-image-amd64", Old: "6.1.115-1", New: "6.1.119-1", Kind: "upgrade"},
			{Name: "openssl", Old: "3.0.14-1~deb12u2", New: "3.0.15-1~deb12u1", Kind: "upgrade"},
			{Name: "tzdata-legacy", New: "2024b-0+deb12u1", Kind: "install"},
		},
		KernelChanged:    true,
		NextReboot:       at("2026-11-29 03:17"),
		NextRebootReason: "maintenance window Sun 03:00-05:00",
		LastCheck:        at("2026-11-22 03:05"),
		LastCheckResult:  "3 updates staged",
		NextCheck:        at("2026-11-23 03:05"),
		LastSuccess:      at("2026-11-15 03:20"),
		BadUpdates:       []client.Bad{{ID: "3f9c2a", Summary: "curl 8.11.0-1 (snapshot 3, 2026-11-08): health check podman.service failed"}},
		ConfigError:      "/etc/speedia/update.toml: line 4: unknown strategy \"nightly\"",
		RestartNeeded:    []string{"metrics.listen"},
	}
}

func TestWriteStatus(t *testing.T) {
	tests := []struct {
		name   string
		st     client.Status
		staged time.Time
		want   string
	}{
		{"pending", pendingStatus(), at("2026-11-22 03:10"), `
Phase:       pending — snapshot 5 staged 2026-11-22 03:10, reboots Sun 2026-11-29 03:17 CET (maintenance window Sun 03:00-05:00)
Strategy:    periodic
Snapshots:   booted 4, last good 4, next boot 5
Last check:  2026-11-22 03:05: 3 updates staged
Next check:  Mon 2026-11-23 03:05 CET
Last update: 2026-11-15 03:20 (booted and verified)

Changes in snapshot 5 (new kernel):
  PACKAGE            OLD               NEW               KIND
  linux-image-amd64  6.1.115-1         6.1.119-1         upgrade
  openssl            3.0.14-1~deb12u2  3.0.15-1~deb12u1  upgrade
  tzdata-legacy      -                 2024b-0+deb12u1   install

Bad updates (never staged again until speedia-update clear-bad ID):
  3f9c2a  curl 8.11.0-1 (snapshot 3, 2026-11-08): health check podman.service failed

Warning: the configuration on disk is not in force: /etc/speedia/update.toml: line 4: unknown strategy "nightly"

Warning: changed keys take effect only after 'systemctl restart speedia-updated': metrics.listen
`},
		{"idle and held", client.Status{
			Phase: "idle", Strategy: "manual", Booted: 4, LastGood: 4,
			LastCheck: at("2026-11-22 03:05"), LastCheckResult: "failed: apt-get update: exit status 100",
			Held: true, HoldReason: "release week", HoldUntil: at("2026-11-25 08:00"),
			LastError: "cannot reach the mirror",
		}, time.Time{}, `
Phase:       idle — nothing staged
Strategy:    manual
Snapshots:   booted 4, last good 4
Last check:  2026-11-22 03:05: failed: apt-get update: exit status 100
Held:        until Wed 2026-11-25 08:00 CET: release week
Last error:  cannot reach the mirror
`},
		{"held until unhold, never checked", client.Status{Phase: "idle", Held: true}, time.Time{}, `
Phase:       idle — nothing staged
Snapshots:   booted none
Held:        until speedia-update unhold
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeStatus(&b, tt.st, tt.staged, cet)
			if got, want := b.String(), strings.TrimPrefix(tt.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestPhaseLine(t *testing.T) {
	next := at("2026-11-29 03:17")
	tests := []struct {
		st     client.Status
		staged time.Time
		want   string
	}{
		{client.Status{Phase: "pending", Pending: 5, NextReboot: next}, time.Time{}, "pending — snapshot 5 staged, reboots Sun 2026-11-29 03:17 CET"},
		{client.Status{Phase: "pending", Pending: 5, NextRebootReason: "strategy manual: speedia-update reboot"}, at("2026-11-22 03:10"),
			"pending — snapshot 5 staged 2026-11-22 03:10, no reboot scheduled: strategy manual: speedia-update reboot"},
		{client.Status{Phase: "pending", Pending: 5}, time.Time{}, "pending — snapshot 5 staged, no reboot scheduled"},
		{client.Status{Phase: "rebooting", Pending: 5, NextReboot: next, NextRebootReason: "asked by admin"}, time.Time{}, "rebooting — into snapshot 5, reboots Sun 2026-11-29 03:17 CET (asked by admin)"},
		{client.Status{Phase: "verifying", Booted: 5}, time.Time{}, "verifying — checking the health of snapshot 5 after boot"},
		{client.Status{Phase: "rolling-back", LastGood: 4}, time.Time{}, "rolling-back — going back to snapshot 4"},
		{client.Status{Phase: "checking"}, time.Time{}, "checking — looking for updates"},
		{client.Status{Phase: "staging"}, time.Time{}, "staging — writing an update into a new snapshot"},
		{client.Status{Phase: "new-phase"}, time.Time{}, "new-phase"},
	}
	for _, tt := range tests {
		if got := phaseLine(tt.st, tt.staged, cet); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestWriteHistory(t *testing.T) {
	reboot := at("2026-11-29 03:17")
	recs := []history.Record{
		{Time: at("2026-11-22 03:10"), Event: history.Staged, Snapshot: 5, Update: "ab12", Changes: pendingStatus().PendingChanges},
		{Time: at("2026-11-22 03:10"), Event: history.RebootScheduled, Snapshot: 5, At: &reboot, Detail: "maintenance window"},
		{Time: at("2026-11-29 03:25"), Event: history.RolledBack, Snapshot: 5, To: 4, Detail: "podman.service failed"},
		{Time: at("2026-11-29 09:00"), Event: history.Held, Detail: "release week"},
		{Time: at("2026-11-29 09:01"), Event: history.Staged, Snapshot: 6, Changes: []pkgver.Change{
			{Name: "a", Old: "1", New: "2"}, {Name: "b", Old: "1"}, {Name: "c", New: "1"}, {Name: "d", Old: "1", New: "2"}, {Name: "e", Old: "1", New: "2"}}},
		{Time: at("2026-11-29 09:02"), Event: history.Staged, Snapshot: 7, Changes: []pkgver.Change{{Name: "a", Old: "2", New: "3"}}},
	}
	want := `TIME              EVENT             SNAPSHOT  DETAIL
2026-11-22 03:10  staged            5         3 packages: linux-image-amd64 6.1.115-1 → 6.1.119-1, openssl 3.0.14-1~deb12u2 → 3.0.15-1~deb12u1, tzdata-legacy 2024b-0+deb12u1 (new)
2026-11-22 03:10  reboot-scheduled  5         for Sun 2026-11-29 03:17 CET; maintenance window
2026-11-29 03:25  rolled-back       5         to snapshot 4; podman.service failed
2026-11-29 09:00  held              -         release week
2026-11-29 09:01  staged            6         5 packages: a 1 → 2, b (removed), c 1 (new), +2 more
2026-11-29 09:02  staged            7         1 package: a 2 → 3
`
	var b strings.Builder
	writeHistory(&b, recs, cet)
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writeHistory(&b, nil, cet)
	if b.String() != "No history yet.\n" {
		t.Errorf("empty: %q", b.String())
	}
}

func TestWriteSnapshots(t *testing.T) {
	list := []snapshot.Snapshot{
		{Number: 1, Date: at("2026-11-01 10:00"), Description: "first root filesystem", State: snapshot.StateReady, Good: true},
		{Number: 4, Date: at("2026-11-15 03:12"), Description: "update: 12 packages", State: snapshot.StateReady, Parent: 1, Booted: true, Good: true},
		{Number: 5, Date: at("2026-11-22 03:10"), Description: "update: 3 packages", State: snapshot.StateReady, Parent: 4, Default: true, KernelChanged: true},
		{Number: 12, Date: at("2026-11-22 04:00"), Description: "boot", State: snapshot.StateForeign},
	}
	want := `#   DATE              STATE    FLAGS                 DESCRIPTION
1   2026-11-01 10:00  ready    good                  first root filesystem
4   2026-11-15 03:12  ready    booted,good           update: 12 packages
5   2026-11-22 03:10  ready    next-boot,new-kernel  update: 3 packages
12  2026-11-22 04:00  foreign  -                     boot
`
	var b strings.Builder
	writeSnapshots(&b, list, cet)
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRenderProgress(t *testing.T) {
	tests := []struct {
		frame   int
		elapsed time.Duration
		line    string
		width   int
		want    string
	}{
		{0, 0, "Staging updates…", 80, "⠋ 0s  Staging updates…"},
		{11, 83*time.Second + 400*time.Millisecond, "Unpacking openssl (3.0.15-1~deb12u1) over (3.0.14-1~deb12u2) ...", 80,
			"⠙ 1m23s  Unpacking openssl (3.0.15-1~deb12u1) over (3.0.14-1~deb12u2) ..."},
		{2, time.Second, "Get:1 http://deb.debian.org/debian bookworm/main amd64 openssl 3.0.15", 40, "⠹ 1s  Get:1 http://deb.debian.org/debi…"},
		{3, 0, "tabs\tand\r carriage returns", 80, "⠸ 0s  tabs and carriage returns"},
	}
	for _, tt := range tests {
		got := renderProgress(tt.frame, tt.elapsed, tt.line, tt.width)
		if got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
		if n := len([]rune(got)); n >= tt.width {
			t.Errorf("%q is %d columns, terminal %d", got, n, tt.width)
		}
	}
}

func TestWriteUpgradeWarnsOfLayerFiles(t *testing.T) {
	u := client.ContainerUpgrade{
		Name: "legacy", OldImage: "localhost/legacy:1", NewImage: "localhost/legacy:2", Kept: "legacy-speedia-old-1",
		KeepUntil:     time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		WritableLayer: &client.WritableLayer{User: 12, Paths: []string{"A /srv/site/index.php", "C /etc/php.ini"}, Churn: 0},
	}
	var b strings.Builder
	writeUpgrade(&b, "Upgraded", u, time.UTC)
	want := "Upgraded legacy: localhost/legacy:1 -> localhost/legacy:2\n" +
		"Kept until 2026-11-25 09:00 for 'speedia-update container rollback legacy': container legacy-speedia-old-1 (stopped)\n" +
		"Warning: 12 files in the old container's writable layer were not carried over (A /srv/site/index.php, C /etc/php.ini and 10 more); " +
		"the kept container legacy-speedia-old-1 holds them until 'speedia-update container prune legacy'\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
