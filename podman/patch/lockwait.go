package patch

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"time"
)

// lockRetryEvery is how often a driver whose tool cannot wait for its own
// lock tries again; a variable so tests need not sleep.
var lockRetryEvery = 2 * time.Second

// retryLocked calls try until it reports no held lock or timeout has
// passed, then returns try's last error (which names ErrLocked when the
// lock was still held). A zero timeout tries once.
func retryLocked(ctx context.Context, timeout time.Duration, try func() (locked bool, err error)) error {
	deadline := time.Now().Add(timeout)
	for {
		locked, err := try()
		if !locked {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		wait := min(lockRetryEvery, left)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// lastLine is the last non-blank line of out, or "no message".
func lastLine(out []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if last == "" {
		return "no message"
	}
	return last
}

// firstLineWith is the first line of out starting with one of prefixes
// (after blanks), else "".
func firstLineWith(out []byte, prefixes ...string) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				return l
			}
		}
	}
	return ""
}

// lockSeconds is timeout in whole seconds for tools that take it so,
// rounding a positive sub-second timeout up rather than to "don't wait".
func lockSeconds(timeout time.Duration) int {
	secs := int(timeout.Round(time.Second) / time.Second)
	if timeout > 0 && secs == 0 {
		secs = 1
	}
	return secs
}
