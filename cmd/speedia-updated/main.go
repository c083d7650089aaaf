// Command speedia-updated is Speedia host's update daemon. Until the daemon
// loop lands, it offers the engine's one-shot operations, which also serve as
// the rescue path when the bus is down.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/speedia/host/updater/snapshot"
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

// Exit codes (documented in docs/engine.md).
const (
	exitFailure  = 1
	exitUsage    = 2
	exitNothing  = 3 // no updates available
	exitBusy     = 4 // another transaction is running
	exitNotFound = 5
	exitRefused  = 6
)

func exitCode(err error) int {
	switch {
	case errors.Is(err, snapshot.ErrNothingToDo):
		return exitNothing
	case errors.Is(err, snapshot.ErrBusy):
		return exitBusy
	case errors.Is(err, snapshot.ErrNotFound):
		return exitNotFound
	case errors.Is(err, snapshot.ErrRefused):
		return exitRefused
	case errors.Is(err, errUsage):
		return exitUsage
	}
	return exitFailure
}
