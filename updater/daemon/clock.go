package daemon

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Clock tells the time and wakes the daemon at a wall-clock instant.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives when the wall clock reaches t, or
	// earlier when the wall clock is set (a jump: plans must be made again).
	// stop releases it.
	At(t time.Time) (c <-chan struct{}, stop func())
}

// RealClock uses a CLOCK_REALTIME timerfd with TFD_TIMER_CANCEL_ON_SET: it
// fires at the wall-clock instant even across suspend, wakes on clock jumps,
// and costs no wakeups while waiting.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) At(t time.Time) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		// Without timerfd, a plain timer is still right unless the clock jumps.
		tm := time.AfterFunc(time.Until(t), func() { c <- struct{}{} })
		return c, func() { tm.Stop() }
	}
	if !t.After(time.Now()) {
		t = time.Now().Add(time.Millisecond)
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(t.UnixNano())}
	if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil); err != nil {
		unix.Close(fd)
		tm := time.AfterFunc(time.Until(t), func() { c <- struct{}{} })
		return c, func() { tm.Stop() }
	}
	// A non-blocking fd in an os.File uses the runtime poller: the read
	// parks without a thread, and Close wakes it.
	f := os.NewFile(uintptr(fd), "timerfd")
	done := make(chan struct{})
	go func() {
		var buf [8]byte
		_, err := f.Read(buf[:])
		select {
		case <-done: // stopped: Close made the read fail
		default:
			_ = err // expiry, or ECANCELED on a clock jump: wake either way
			c <- struct{}{}
		}
	}()
	stopped := false
	return c, func() {
		if !stopped {
			stopped = true
			close(done)
			f.Close()
		}
	}
}
