// Package errkind is the one vocabulary of error kinds: each kind is a
// sentinel error (test with errors.Is), its D-Bus error name in
// org.speedia.Update1 (updater/dbusapi/org.speedia.Update1.xml) and its
// exit code (docs/cli.md). Every package wraps these with %w and context;
// dbusapi turns them into D-Bus names, the client turns names back into
// them, and both commands' exit codes come from them. It imports only the
// standard library.
package errkind

import "errors"

// Kind is one error kind. A *Kind is a sentinel error.
type Kind struct {
	msg  string
	name string // D-Bus error name; "" when it never crosses the bus
	exit int
}

func (k *Kind) Error() string { return k.msg }

// DBusName is the kind's D-Bus error name ("" if none).
func (k *Kind) DBusName() string { return k.name }

// ExitCode is the kind's exit code.
func (k *Kind) ExitCode() int { return k.exit }

// The kinds. The messages are short: callers wrap them with what happened,
// e.g. fmt.Errorf("%w: the host is staging", errkind.Busy).
var (
	Usage        = &Kind{"usage", "", 2}                                                         // bad command line
	Invalid      = &Kind{"invalid argument", prefix + "InvalidArgument", 2}                      // e.g. a malformed "when"
	NothingToDo  = &Kind{"nothing to do", prefix + "NothingToDo", 3}                             // no updates, nothing staged or to clear
	Busy         = &Kind{"busy", prefix + "Busy", 4}                                             // another transaction is running
	NotFound     = &Kind{"not found", prefix + "NotFound", 5}                                    // no such snapshot, bad-update ID, container, image or kept upgrade
	Refused      = &Kind{"refused", prefix + "Refused", 6}                                       // not allowed in this phase or by policy
	Held         = &Kind{"updates are held", prefix + "Held", 6}                                 // updates are held
	Bad          = &Kind{"bad update", prefix + "Bad", 6}                                        // the update is marked bad
	AccessDenied = &Kind{"access denied: run as root or as a member of the speedia-admin group", // the bus policy or the daemon's check
		"org.freedesktop.DBus.Error.AccessDenied", 7}
	NoDaemon = &Kind{"speedia-updated is not running: systemctl start speedia-updated", "", 8} // or the bus cannot be reached
)

const prefix = "org.speedia.Update1.Error."

// FailedName is the D-Bus error name of an error of no kind (exit 1).
const FailedName = prefix + "Failed"

// Exit codes besides the kinds'.
const (
	ExitOK      = 0
	ExitFailure = 1 // an error of no kind
)

// Kinds lists every kind, in precedence order: an error wrapping several
// (as "%w: %w" may) is of the first.
func Kinds() []*Kind {
	return []*Kind{Usage, NothingToDo, Busy, NotFound, Invalid, Bad, Refused, Held, AccessDenied, NoDaemon}
}

// Of is the kind err wraps (the first in Kinds order), nil when none.
func Of(err error) *Kind {
	if err == nil {
		return nil
	}
	for _, k := range Kinds() {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// DBusName is the D-Bus error name for err: its kind's, or FailedName.
func DBusName(err error) string {
	if k := Of(err); k != nil && k.name != "" {
		return k.name
	}
	return FailedName
}

// busNames are names the bus itself returns when nobody owns the daemon's name.
var busNames = map[string]*Kind{
	"org.freedesktop.DBus.Error.ServiceUnknown": NoDaemon,
	"org.freedesktop.DBus.Error.NameHasNoOwner": NoDaemon,
}

// FromDBusName is the kind of a D-Bus error name, nil for FailedName and
// names of no kind.
func FromDBusName(name string) *Kind {
	if name == "" {
		return nil
	}
	for _, k := range Kinds() {
		if k.name == name {
			return k
		}
	}
	return busNames[name]
}

// ExitCode is the exit code for err: 0 for nil, its kind's, or 1.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if k := Of(err); k != nil {
		return k.exit
	}
	return ExitFailure
}
