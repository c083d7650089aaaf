package client

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/godbus/dbus/v5"
)

// D-Bus error names the daemon returns; the server uses the same strings.
const (
	ErrorNothingToDo     = "org.speedia.Update1.Error.NothingToDo"     // no updates, nothing staged or to clear
	ErrorBusy            = "org.speedia.Update1.Error.Busy"            // another transaction is running
	ErrorNotFound        = "org.speedia.Update1.Error.NotFound"        // no such snapshot, bad-update id, container, image or kept upgrade
	ErrorRefused         = "org.speedia.Update1.Error.Refused"         // not allowed in this phase or by policy
	ErrorInvalidArgument = "org.speedia.Update1.Error.InvalidArgument" // e.g. a malformed "when"
	ErrorHeld            = "org.speedia.Update1.Error.Held"            // updates are held
	ErrorBad             = "org.speedia.Update1.Error.Bad"             // the update is marked bad
	ErrorFailed          = "org.speedia.Update1.Error.Failed"          // anything else; no sentinel

	// Names the bus itself returns.
	errorAccessDenied   = "org.freedesktop.DBus.Error.AccessDenied"
	errorServiceUnknown = "org.freedesktop.DBus.Error.ServiceUnknown"
	errorNameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner"
	errorNoReply        = "org.freedesktop.DBus.Error.NoReply"
)

// Sentinel errors; every error a method returns for one of the names above
// wraps one of these (test with errors.Is).
var (
	ErrNothingToDo     = errors.New("nothing to do")
	ErrBusy            = errors.New("another transaction is running")
	ErrNotFound        = errors.New("not found")
	ErrRefused         = errors.New("refused")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrHeld            = errors.New("updates are held")
	ErrBad             = errors.New("update is marked bad")
	ErrAccessDenied    = errors.New("access denied: run as root or as a member of the speedia-admin group")
	ErrNoDaemon        = errors.New("speedia-updated is not running: systemctl start speedia-updated")
)

var sentinels = map[string]error{
	ErrorNothingToDo:     ErrNothingToDo,
	ErrorBusy:            ErrBusy,
	ErrorNotFound:        ErrNotFound,
	ErrorRefused:         ErrRefused,
	ErrorInvalidArgument: ErrInvalidArgument,
	ErrorHeld:            ErrHeld,
	ErrorBad:             ErrBad,
	errorAccessDenied:    ErrAccessDenied,
	errorServiceUnknown:  ErrNoDaemon,
	errorNameHasNoOwner:  ErrNoDaemon,
}

// Error is an error reply from the daemon or the bus.
type Error struct {
	Name    string // D-Bus error name
	Message string // the sender's text, may be empty
	kind    error  // sentinel for Name, nil when unknown
}

func (e *Error) Error() string {
	switch {
	case e.kind == ErrAccessDenied || e.kind == ErrNoDaemon:
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
// connection into ErrNoDaemon; other errors come back as they are.
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
		return fmt.Errorf("%v: %w", err, ErrNoDaemon)
	default:
		return err
	}
	e := &Error{Name: de.Name, kind: sentinels[de.Name]}
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
