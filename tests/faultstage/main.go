// Command faultstage runs the native engine's Stage with a fault before one
// step, for the crash-consistency tests: --kill-at STEP sends itself SIGKILL,
// --pause-at STEP writes its PID to /run/speedia-fault-paused and waits to be
// killed; --trace prints how long each step took. It wires the engine exactly like speedia-updated does.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/snapshot/native"
	"github.com/speedia/host/updater/system"
)

func main() {
	killAt := flag.String("kill-at", "", "step before which to SIGKILL this process")
	pauseAt := flag.String("pause-at", "", "step before which to stop and wait")
	trace := flag.Bool("trace", false, "print the time each step took to stderr")
	flag.Parse()
	last, lastStep := time.Now(), native.Step("start")
	eng := native.New(native.Config{
		Inhibitor: system.Logind{},
		BeforeStep: func(s native.Step) {
			if *trace {
				fmt.Fprintf(os.Stderr, "%-9s %v\n", lastStep, time.Since(last).Round(time.Millisecond))
				last, lastStep = time.Now(), s
			}
			switch string(s) {
			case *killAt:
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			case *pauseAt:
				os.WriteFile("/run/speedia-fault-paused", []byte(strconv.Itoa(os.Getpid())), 0o644)
				select {}
			}
		},
	})
	res, err := eng.Stage(context.Background(), snapshot.StageOptions{Description: "fault test"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultstage:", err)
		os.Exit(1)
	}
	fmt.Println(res.Snapshot.Number)
}
