// Command systemprobe runs updater/system from inside the integration test
// host, where the daemon runs: the journal socket, logind's view of our own
// PID and the boot ID are only real there. It prints JSON.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/speedia/host/updater/system"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "systemprobe:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx := context.Background()
	if len(args) == 0 {
		return fmt.Errorf("usage: systemprobe journal ID | blockers | inhibit DURATION | users | bootid")
	}
	var out any
	switch args[0] {
	case "journal":
		if len(args) != 2 {
			return fmt.Errorf("journal needs a MESSAGE_ID")
		}
		log := system.NewLogger(slog.LevelDebug)
		log.With("component", "probe").Info("journal probe", "message_id", args[1], "snapshot", 2,
			slog.Group("old", "snapshot", 1), "note", "two words")
		log.Debug("journal probe debug", "message_id", args[1])
		out = map[string]bool{"journal": journal.Enabled()}
	case "blockers":
		// Our own lock must not count as a blocker.
		release, err := system.Logind{}.Inhibit(ctx, "probe")
		if err != nil {
			return err
		}
		defer release()
		b, err := system.Logind{}.Blockers(ctx)
		if err != nil {
			return err
		}
		out = map[string]any{"pid": os.Getpid(), "blockers": b}
	case "inhibit":
		// Hold the lock for a while, release it, and live on: the test sees
		// it come and go while the process still runs.
		hold, err := time.ParseDuration(args[1])
		if err != nil {
			return err
		}
		release, err := system.Logind{}.Inhibit(ctx, "probe holding")
		if err != nil {
			return err
		}
		time.Sleep(hold)
		release()
		time.Sleep(time.Minute)
		return nil
	case "users":
		u, err := system.Logind{}.Users(ctx)
		if err != nil {
			return err
		}
		out = u
	case "bootid":
		id, err := system.BootID()
		if err != nil {
			return err
		}
		out = id
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
