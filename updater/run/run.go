// Package run is the one way the updater runs external commands, so tests can
// swap in a fake that asserts exact command lines.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Cmd is one external command.
type Cmd struct {
	Name string
	Args []string
	Env  []string  // added to the process environment
	Log  io.Writer // if set, stdout and stderr are copied here as they come
}

// String renders the command line for logs and test assertions.
func (c Cmd) String() string {
	return strings.Join(append([]string{c.Name}, c.Args...), " ")
}

// Runner runs commands. Run returns stdout; a non-zero exit is an *ExitError.
type Runner interface {
	Run(ctx context.Context, c Cmd) ([]byte, error)
}

// ExitError says which command failed and keeps the tail of its stderr.
type ExitError struct {
	Cmd    string
	Code   int
	Stderr string
	Err    error
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit %d", e.Cmd, e.Code)
	if e.Code < 0 {
		msg = fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + LastLines(s, 3)
	}
	return msg
}

func (e *ExitError) Unwrap() error { return e.Err }

// LastLines returns at most n trailing non-empty lines of s, joined by " | ".
func LastLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, " | ")
}

// Exec runs commands on this machine.
type Exec struct{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, c Cmd) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	if len(c.Env) > 0 {
		cmd.Env = append(cmd.Environ(), c.Env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Log != nil {
		cmd.Stdout = io.MultiWriter(&stdout, c.Log)
		cmd.Stderr = io.MultiWriter(&stderr, c.Log)
	}
	err := cmd.Run()
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return stdout.Bytes(), &ExitError{Cmd: c.String(), Code: code, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}
