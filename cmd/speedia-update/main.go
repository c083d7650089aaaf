// Command speedia-update is the admin CLI of speedia-updated: it reads the
// update status and sends commands over D-Bus (org.speedia.Update1).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		now:     time.Now,
		loc:     time.Local,
		connect: client.Connect,
	}
	if fd := int(os.Stderr.Fd()); term.IsTerminal(fd) {
		e.tty = true
		if w, _, err := term.GetSize(fd); err == nil {
			e.width = w
		}
	}
	code := run(ctx, os.Args[1:], e)
	stop()
	os.Exit(code)
}

// The exit codes are those of the error kinds (updater/errkind), documented
// in the root command's help and docs/cli.md.
const exitOK = errkind.ExitOK

// exitNothing ends a command that found nothing to do and said so.
var exitNothing = errkind.NothingToDo.ExitCode()

// exitError ends the program with code after the command has said why.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// exitCode maps an error to the documented exit code: an exitError's, or
// its kind's.
func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return errkind.ExitCode(err)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	e.close()
	if err == nil {
		return exitOK
	}
	if !e.ran && !errors.Is(err, errkind.Usage) {
		// cobra refused the command line (unknown command, flag, arguments).
		err = fmt.Errorf("%w: %w", errkind.Usage, err)
	}
	code := exitCode(err)
	var ee exitError
	if !errors.As(err, &ee) {
		fmt.Fprintln(e.stderr, "speedia-update:", message(err))
		if code == errkind.Usage.ExitCode() {
			fmt.Fprintln(e.stderr, "Run 'speedia-update --help' for usage.")
		}
	}
	return code
}

// message is the error as the admin should read it.
func message(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out; the daemon may still be at it: see speedia-update status"
	case errors.Is(err, context.Canceled):
		return "interrupted; the daemon goes on: see speedia-update status"
	case errors.Is(err, errkind.Usage):
		// "usage: ..." reads as a heading; drop the marker.
		if s := err.Error(); len(s) > len("usage: ") && s[:len("usage: ")] == "usage: " {
			return s[len("usage: "):]
		}
	}
	return err.Error()
}

// env is what the commands need from the outside world.
type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
	loc            *time.Location
	connect        func(context.Context) (*client.Client, error)
	tty            bool // stderr is a terminal: one-line progress display
	width          int  // its width (0: unknown)

	ran    bool // a command body started (so an error is not a usage error)
	cl     *client.Client
	cancel context.CancelFunc
}

// client connects on first use.
func (e *env) client(ctx context.Context) (*client.Client, error) {
	if e.cl == nil {
		c, err := e.connect(ctx)
		if err != nil {
			return nil, err
		}
		e.cl = c
	}
	return e.cl, nil
}

func (e *env) close() {
	if e.cl != nil {
		e.cl.Close()
		e.cl = nil
	}
	if e.cancel != nil {
		e.cancel()
	}
}
