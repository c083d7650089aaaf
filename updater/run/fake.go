package run

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Fake records command lines and answers from a script keyed by command-line prefix.
// Unscripted commands fail, so a test sees every command the code runs.
type Fake struct {
	mu      sync.Mutex
	Calls   []string
	Answers map[string]Answer
}

// Answer is what Fake returns for a command.
type Answer struct {
	Stdout string
	Code   int // non-zero: an *ExitError
	Stderr string
}

// Run implements Runner. The longest matching prefix wins.
func (f *Fake) Run(_ context.Context, c Cmd) ([]byte, error) {
	line := c.String()
	f.mu.Lock()
	f.Calls = append(f.Calls, line)
	f.mu.Unlock()
	best := -1
	var ans Answer
	for prefix, a := range f.Answers {
		if strings.HasPrefix(line, prefix) && len(prefix) > best {
			best, ans = len(prefix), a
		}
	}
	if best < 0 {
		return nil, &ExitError{Cmd: line, Code: 127, Stderr: "fake: no answer scripted", Err: fmt.Errorf("unscripted")}
	}
	if c.Log != nil {
		fmt.Fprint(c.Log, ans.Stdout, ans.Stderr)
	}
	if ans.Code != 0 {
		return []byte(ans.Stdout), &ExitError{Cmd: line, Code: ans.Code, Stderr: ans.Stderr, Err: fmt.Errorf("exit %d", ans.Code)}
	}
	return []byte(ans.Stdout), nil
}
