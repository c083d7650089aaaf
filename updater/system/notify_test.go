package system

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen makes a notify socket and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	// A safety net against a hang, not a timing assertion.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	c := listen(t)
	for _, tc := range []struct {
		send func() error
		want string
	}{
		{func() error { return Ready("idle") }, "READY=1\nSTATUS=idle"},
		{func() error { return Status("staging\nsnapshot 3") }, "STATUS=staging snapshot 3"},
		{Stopping, "STOPPING=1"},
		{func() error { return Notify("A=1", "B=2") }, "A=1\nB=2"},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != tc.want {
			t.Errorf("sent %q, want %q", got, tc.want)
		}
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Ready("x"); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
}

func TestWatchdogDisabled(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		wantErr   bool
	}{
		{"", "", false},
		{"1000000", "1", false}, // another process's watchdog
		{"soon", "", true},
		{"-5", "", true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		// Returns at once: a context that is never done proves no loop ran.
		err := Watchdog(context.Background())
		if (err != nil) != tc.wantErr {
			t.Errorf("USEC=%q PID=%q: err = %v, want error %v", tc.usec, tc.pid, err, tc.wantErr)
		}
	}
}

func TestWatchdogEnabled(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", strconv.Itoa(int(time.Hour/time.Microsecond)))
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watchdog(ctx) }()
	// The first ping goes out at once; the next would be half an hour later.
	if got := recv(t, c); got != "WATCHDOG=1" {
		t.Fatalf("ping = %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPingEvery(t *testing.T) {
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	pings := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() { done <- pingEvery(ctx, ticks, func() error { pings <- struct{}{}; return nil }) }()
	<-pings // at once
	ticks <- time.Time{}
	<-pings
	ticks <- time.Time{}
	<-pings
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(pings) != 0 {
		t.Fatalf("%d extra pings", len(pings))
	}

	boom := errors.New("socket gone")
	err := pingEvery(context.Background(), nil, func() error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("ping error: %v", err)
	}
}
