// Command healthcheck runs the health gate inside the integration test host,
// against its real systemd, and prints the result as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/speedia/host/updater/health"
)

func main() {
	critical := flag.String("critical", "", "comma-separated critical units")
	dir := flag.String("dir", health.DefaultDir, "admin checks")
	timeout := flag.Duration("timeout", time.Minute, "whole gate")
	flag.Parse()
	cfg := health.Config{Dir: *dir, Timeout: *timeout}
	if *critical != "" {
		cfg.CriticalUnits = strings.Split(*critical, ",")
	}
	res, err := health.New(cfg).Run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(2)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}
