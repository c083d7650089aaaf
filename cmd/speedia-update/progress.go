package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// progress shows Apply's package manager output: on a terminal as one line
// that redraws (spinner, elapsed time, latest output), else line by line.
type progress struct {
	w     io.Writer
	tty   bool
	width int
	now   func() time.Time

	mu    sync.Mutex
	start time.Time
	frame int
	last  string
	tail  []string // the latest lines, shown again when the run fails
	stop  chan struct{}
	done  chan struct{}
}

const tailLines = 15

func newProgress(w io.Writer, tty bool, width int, now func() time.Time) *progress {
	if width <= 0 {
		width = 80
	}
	return &progress{w: w, tty: tty, width: width, now: now, start: now()}
}

// Start redraws the line on a ticker so the spinner moves during downloads
// that print nothing.
func (p *progress) Start(label string) {
	p.last = label
	if !p.tty {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.frame++
				p.draw()
				p.mu.Unlock()
			}
		}
	}()
	p.mu.Lock()
	p.draw()
	p.mu.Unlock()
}

// Line takes one line of output.
func (p *progress) Line(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > tailLines {
		p.tail = p.tail[1:]
	}
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	if strings.TrimSpace(line) != "" {
		p.last = line
	}
	p.draw()
}

// Stop clears the display; after a failure it prints the latest lines,
// which usually say why.
func (p *progress) Stop(failed bool) {
	if !p.tty {
		return
	}
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\x1b[K")
	if failed {
		for _, l := range p.tail {
			fmt.Fprintln(p.w, l)
		}
	}
}

func (p *progress) draw() {
	fmt.Fprint(p.w, "\r\x1b[K"+renderProgress(p.frame, p.now().Sub(p.start), p.last, p.width))
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// renderProgress is the one-line display: spinner, elapsed time, the latest
// output cut to the terminal width (one column short, so it never wraps).
func renderProgress(frame int, elapsed time.Duration, line string, width int) string {
	line = strings.Join(strings.Fields(line), " ") // no tabs or CRs to break the line
	s := fmt.Sprintf("%s %s  %s", spinner[frame%len(spinner)], elapsed.Truncate(time.Second), line)
	if utf8.RuneCountInString(s) < width {
		return s
	}
	r := []rune(s)
	return string(r[:max(width-2, 1)]) + "…"
}
