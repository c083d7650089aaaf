package client

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/errkind"
)

// Errors a method returns for a D-Bus error name of a kind wrap that
// kind of updater/errkind (test with errors.Is): NothingToDo, Busy,
// NotFound, Refused, Invalid, Held, Bad, AccessDenied; a bus that cannot be
// reached or a daemon that is not running is errkind.NoDaemon.

// errorNoReply is the bus's name for a method call that timed out.
const errorNoReply = "org.freedesktop.DBus.Error.NoReply"

// Error is an error reply from the daemon or the bus.
type Error struct {
	Name    string // D-Bus error name
	Message string // the sender's text, may be empty
	kind    error  // the errkind for Name, nil when none
}

func (e *Error) Error() string {
	switch {
	case e.kind == errkind.AccessDenied || e.kind == errkind.NoDaemon:
		// The bus's own text (match rules, .service files) helps no admin.
		return e.kind.Error()
	case e.Name == errorNoReply:
		return "speedia-updated did not answer: " + e.Message
	case e.Message != "":
		return e.Message
	case e.kind != nil:
		return e.kind.Error()
	}
	return e.Name
}

func (e *Error) Unwrap() error { return e.kind }

// mapError turns a D-Bus error reply into an *Error and a refused bus
// connection into errkind.NoDaemon; other errors come back as they are.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var de dbus.Error
	var pde *dbus.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &pde) && pde != nil:
		de = *pde
	case isUnreachable(err):
		return fmt.Errorf("%w: %w", err, errkind.NoDaemon)
	default:
		return err
	}
	e := &Error{Name: de.Name}
	if k := errkind.FromDBusName(de.Name); k != nil {
		e.kind = k
	}
	if len(de.Body) > 0 {
		e.Message, _ = de.Body[0].(string)
	}
	return e
}

// isUnreachable reports a bus socket that is missing or refuses connections.
func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, syscall.ENOENT)
}
