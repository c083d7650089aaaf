package kiwi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Command is the KIWI executable.
var Command = "kiwi-ng"

// kiwiLine is one line of KIWI's log: "[ INFO    ]: 03:44:02 | text".
var kiwiLine = regexp.MustCompile(`^\[ *(INFO|WARNING|ERROR|DEBUG) *\]: [0-9:]+ \| (.*)$`)

// phases maps KIWI's log lines to the build phases we report.
var phases = []struct{ prefix, phase string }{
	{"Setup root directory", "kiwi: setting up the root"},
	{"Installing bootstrap packages", "kiwi: bootstrap (debootstrap/zypper)"},
	{"Installing system (chroot)", "kiwi: installing packages"},
	{"Installing image packages", "kiwi: installing packages"},
	{"Importing Image description", "kiwi: importing the description"},
	{"Copying user defined files to image tree", "kiwi: overlay files"},
	{"Calling config.sh script", "kiwi: config.sh"},
	{"Creating .profile environment", "kiwi: finishing the root"},
}

// Prepare runs `kiwi-ng system prepare` of the description into root (which
// must not exist). Every KIWI line goes to log; phase is called when KIWI
// enters a new phase. On failure the error names KIWI's first ERROR line.
func Prepare(ctx context.Context, desc, root string, date time.Time, log io.Writer, phase func(string)) error {
	gnupg, err := os.MkdirTemp("", "kiwi-gnupg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gnupg)
	args := []string{"--debug"}
	if cfg := filepath.Join(desc, "kiwi.yml"); exists(cfg) {
		args = append(args, "--config", cfg)
	}
	args = append(args, "system", "prepare", "--description", desc, "--root", root)
	cmd := exec.CommandContext(ctx, Command, args...)
	// KIWI wants GNUPGHOME to exist (root has no ~/.gnupg on build machines).
	cmd.Env = append(os.Environ(), "GNUPGHOME="+gnupg, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", date.Unix()))
	first, err := follow(cmd, log, phase)
	if err != nil {
		if first != "" {
			return fmt.Errorf("kiwi-ng system prepare: %s", first)
		}
		return fmt.Errorf("kiwi-ng system prepare: %w", err)
	}
	return nil
}

// Info validates a description offline with `kiwi-ng image info`.
func Info(ctx context.Context, desc string) error {
	gnupg, err := os.MkdirTemp("", "kiwi-gnupg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gnupg)
	args := []string{}
	if cfg := filepath.Join(desc, "kiwi.yml"); exists(cfg) {
		args = append(args, "--config", cfg)
	}
	cmd := exec.CommandContext(ctx, Command, append(args, "image", "info", "--description", desc)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
	var out strings.Builder
	first, err := follow(cmd, &out, nil)
	if err != nil {
		if first == "" {
			first = lastLines(out.String(), 5)
		}
		return fmt.Errorf("kiwi-ng image info %s: %s", desc, first)
	}
	return nil
}

// follow runs cmd, copying its output to log, reporting phases, and returns
// the first ERROR line.
func follow(cmd *exec.Cmd, log io.Writer, phase func(string)) (string, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	var first, last string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		m := kiwiLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] == "ERROR" && first == "" {
			first = m[2]
		}
		if m[1] != "INFO" || phase == nil {
			continue
		}
		for _, p := range phases {
			if strings.HasPrefix(m[2], p.prefix) && p.phase != last {
				last = p.phase
				phase(p.phase)
			}
		}
	}
	io.Copy(io.Discard, pr)
	return first, <-done
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
