package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/speedia/host/updater/run"
)

// scriptEnv is all an admin check gets: no daemon state leaks into it and
// its behaviour does not depend on how the daemon was started.
var scriptEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
	"SPEEDIA_HEALTH_CHECK=1",
}

// detailLines is how many trailing output lines a check's Detail keeps.
const detailLines = 5

// maxOutput bounds the output kept per check; only the tail matters.
const maxOutput = 64 << 10

// runExecutable runs one admin check with the gate's remaining time. Exit 0
// passes; a non-zero exit, a signal or the deadline fails. Whatever the
// check leaves running in its process group is killed when it times out or
// holds its output open after exiting.
func runExecutable(ctx context.Context, name, path string) Check {
	c := Check{Name: name}
	if ctx.Err() != nil {
		c.Detail = notRun(ctx)
		return c
	}
	var out tail
	cmd := exec.CommandContext(ctx, path)
	cmd.Dir = "/"
	cmd.Env = scriptEnv
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.Process != nil {
		// It exited but a child kept its output open: end the child too.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	lines := run.LastLines(out.String(), detailLines)
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		c.Detail = fmt.Sprintf("killed after %s: %v", time.Since(start).Round(time.Millisecond), context.Cause(ctx))
	case errors.As(err, &ee):
		c.Detail = exitString(ee)
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		c.Detail = err.Error()
	default:
		c.OK = true
		c.Detail = "exit 0"
	}
	if lines != "" {
		c.Detail += ": " + lines
	}
	return c
}

func exitString(ee *exec.ExitError) string {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ee.ExitCode())
}

// tail keeps the last maxOutput bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > maxOutput {
		p = p[len(p)-maxOutput:]
	}
	if over := t.buf.Len() + len(p) - maxOutput; over > 0 {
		t.buf.Next(over)
	}
	t.buf.Write(p)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
