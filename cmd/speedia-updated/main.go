// Command speedia-updated is Speedia host's update daemon. Until the daemon
// loop lands, it offers the engine's one-shot operations, which also serve as
// the rescue path when the bus is down.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/speedia/host/updater/errkind"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "speedia-updated:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is the error's kind's exit code (updater/errkind, documented in
// docs/engine.md), 1 for an error of no kind.
func exitCode(err error) int { return errkind.ExitCode(err) }
