package main

import (
	"fmt"
	"strconv"

	"github.com/speedia/host/updater/errkind"
)

// usageError is a bad command line (errors.Is(err, errkind.Usage) holds),
// saying what is wrong without the "usage" marker.
type usageError struct {
	msg string
	err error // the cause, if any
}

func (u usageError) Error() string        { return u.msg }
func (u usageError) Unwrap() error        { return u.err }
func (u usageError) Is(target error) bool { return target == errkind.Usage }

// badArg is the usage error for a flag or argument name given value, e.g.
// `--at "soon": not a time ...`; the value is quoted and cut to stay short.
func badArg(name, value string, err error) error {
	return usageError{msg: name + " " + quote(value) + ": " + message(err), err: err}
}

// quote is s quoted, at most about 60 characters of it.
func quote(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

// snapshotNumber reads a snapshot number given on the command line.
func snapshotNumber(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, badArg("SNAPSHOT", s, fmt.Errorf("not a snapshot number (1, 2, ...: see speedia-update snapshots)"))
	}
	return uint32(n), nil
}

// usagef is a usage error saying why.
func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}
