package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/window"
)

func TestGoodRoundTrip(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	custom := Default()
	custom.Check.Interval = 90 * time.Minute
	custom.Reboot.Schedule = window.Schedule{
		Windows: []window.Window{
			{Days: [7]bool{false, true, true, true, true, true, false}, Start: 22*60 + 30, Length: 90 * time.Minute},
			sunday(0, 7*24*time.Hour),
		},
		Location:  berlin,
		Blackouts: []window.Date{{Year: 2026, Month: 12, Day: 24}, {Year: 2026, Month: 12, Day: 31}, {Year: 2027, Month: 1, Day: 1}},
	}
	custom.Reboot.WallMessage = "multi\nline \"quoted\""
	custom.Health.CriticalUnits = nil
	custom.Metrics.Listen = "[::1]:9846"

	manual := Default()
	manual.Reboot.Strategy = StrategyManual
	manual.Reboot.Schedule.Windows = nil
	manual.Reboot.Schedule.Location = time.UTC

	for name, c := range map[string]Config{"default": Default(), "custom": custom, "manual without windows": manual} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.good")
			if err := SaveGood(path, c); err != nil {
				t.Fatal(err)
			}
			got, err := LoadGood(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestSaveGoodReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.good")
	first := Default()
	first.Snapshots.Keep = 7
	if err := SaveGood(path, first); err != nil {
		t.Fatal(err)
	}
	if err := SaveGood(path, Default()); err != nil {
		t.Fatal(err)
	}
	got, err := LoadGood(path)
	if err != nil || got.Snapshots.Keep != Default().Snapshots.Keep {
		t.Errorf("second save did not replace the first: %v, keep %d", err, got.Snapshots.Keep)
	}
}

func TestSaveGoodRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.good")
	c := Default()
	c.Health.MaxAttempts = 0
	if err := SaveGood(path, c); err == nil {
		t.Fatal("saved an invalid config")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file written anyway: %v", err)
	}
}

func TestLoadGoodErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadGood(filepath.Join(dir, "none"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("[health]\nmax_attempts = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadGood(bad)
	if got := Problems(err); len(got) != 1 || got[0].File != bad || got[0].Line != 2 || got[0].Key != "health.max_attempts" {
		t.Errorf("invalid good file: %v", err)
	}
}

func TestSaveGoodUnwritable(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := SaveGood(filepath.Join(notDir, "f"), Default())
	if err == nil || !strings.HasPrefix(err.Error(), "save good config: ") {
		t.Errorf("got %v", err)
	}
}
