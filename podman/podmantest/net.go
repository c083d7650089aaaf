package podmantest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialContext connects from inside the service's network namespace, where
// published ports (-p 18080:8080) listen on 127.0.0.1. addr must hold an IP
// address: a name would be resolved (and dialled) on other threads.
func (s *Service) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("podmantest: dial %s: want an IP address", addr)
	}
	pid := s.PID()
	if pid == 0 {
		return nil, ErrNotRunning
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, err := dialInNetNS(ctx, pid, network, addr)
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// dialInNetNS switches this goroutine's thread into the network namespace
// of pid; the socket keeps that namespace once made. The thread is switched
// back, or, if that fails, left locked so that Go ends it.
func dialInNetNS(ctx context.Context, pid int, network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	defer own.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("podmantest: enter network namespace: %w", err)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return conn, err
}

// HTTPClient returns a client that connects from inside the service's
// network namespace (see DialContext), e.g. to GET http://127.0.0.1:18080/.
func (s *Service) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:       s.DialContext,
			DisableKeepAlives: true,
		},
	}
}
