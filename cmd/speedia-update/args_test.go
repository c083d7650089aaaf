package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/client"
	"github.com/speedia/host/updater/errkind"
)

// TestCLIChecksBeforeConnecting: a bad flag or argument is a usage error
// (exit 2) that names it, found before any connection to the bus. The bus
// address leads nowhere, so a connection would end in exit 8 instead.
func TestCLIChecksBeforeConnecting(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
	long := strings.Repeat("x", 500)
	tests := []struct {
		args []string
		want string // on the first line of stderr
	}{
		{[]string{"reboot", "--at", "garbage"}, `--at "garbage": not a time: use RFC 3339`},
		{[]string{"reboot", "--at", "2020-01-01T00:00:00Z"}, `--at "2020-01-01T00:00:00Z": 2020-01-01 01:00 CET is in the past`},
		{[]string{"reboot", "--at", "25:00"}, `--at "25:00": not a time of day`},
		{[]string{"reboot", "--at", ""}, `--at "": not a time`},
		{[]string{"reboot", "--at", "+0s"}, `--at "+0s": not a positive duration`},
		{[]string{"reboot", "--now", "--at", "03:00"}, `none of the others can be`},
		{[]string{"reboot", "--at", long}, `--at "` + strings.Repeat("x", 60) + `…": not a time`},
		{[]string{"--timeout", "-1s", "status"}, `--timeout "-1s": must not be negative`},
		{[]string{"--timeout", "-1s", "reboot", "--now"}, `--timeout "-1s": must not be negative`},
		{[]string{"--timeout", "forever", "status"}, `invalid argument "forever" for "--timeout"`},
		{[]string{"rollback", "four"}, `SNAPSHOT "four": not a snapshot number`},
		{[]string{"rollback", "0"}, `SNAPSHOT "0": not a snapshot number`},
		{[]string{"rollback", "--", "-3"}, `SNAPSHOT "-3": not a snapshot number`},
		{[]string{"rollback", "99999999999"}, `SNAPSHOT "99999999999": not a snapshot number`},
		{[]string{"rollback", "1", "2"}, `accepts at most 1 arg(s), received 2`},
		{[]string{"rollback", "--reboot", "whenever"}, `--reboot "whenever": not a time`},
		{[]string{"rollback", "--reboot", ""}, `--reboot "": use now, next-window or a TIME`},
		{[]string{"rollback", "3", "--reboot", "2020-01-01 00:00"}, `--reboot "2020-01-01 00:00": 2020-01-01 00:00 CET is in the past`},
		{[]string{"hold", "--until", "soon"}, `--until "soon": not a time`},
		{[]string{"hold", "--until", "0d"}, `--until "0d": not a positive duration`},
		{[]string{"hold", "--until", ""}, `--until "": not a time`},
		{[]string{"hold", "--until", "yesterday", "--reason", "x"}, `--until "yesterday": not a time`},
		{[]string{"history", "--limit", "-1"}, `invalid argument "-1" for "-n, --limit"`},
		{[]string{"clear-bad", ""}, `ID "": empty; to clear every mark, give no ID`},
		{[]string{"clear-bad", "a", "b"}, `accepts at most 1 arg(s), received 2`},
		{[]string{"container", "upgrade", "db"}, `--image is required`},
		{[]string{"container", "upgrade", "db", "--image", ""}, `--image "": empty`},
		{[]string{"container", "upgrade", "", "--image", "i"}, `NAME "": empty`},
		{[]string{"container", "upgrade", "--image", "i"}, `accepts 1 arg(s), received 0`},
		{[]string{"container", "rollback", " "}, `NAME " ": empty`},
		{[]string{"status", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			connected := false
			e := &env{
				stdout: &out, stderr: &errOut,
				now: func() time.Time { return cliNow }, loc: cet,
				connect: func(ctx context.Context) (*client.Client, error) {
					connected = true
					return client.Connect(ctx)
				},
			}
			code := run(context.Background(), tt.args, e)
			if code != 2 || connected {
				t.Errorf("exit %d, connected %v, want exit 2 without connecting (stderr %q)", code, connected, errOut.String())
			}
			first, _, _ := strings.Cut(errOut.String(), "\n")
			if !strings.HasPrefix(first, "speedia-update: ") || !strings.Contains(first, tt.want) {
				t.Errorf("stderr %q, want a first line with %q", errOut.String(), tt.want)
			}
			if len(first) > 200 {
				t.Errorf("message of %d bytes: %q", len(first), first)
			}
			if !strings.HasSuffix(errOut.String(), "Run 'speedia-update --help' for usage.\n") {
				t.Errorf("stderr %q lacks the usage hint", errOut.String())
			}
		})
	}
}

func TestBadArg(t *testing.T) {
	err := badArg("--at", "soon", usagef("not a time"))
	if !errors.Is(err, errkind.Usage) || err.Error() != `--at "soon": not a time` {
		t.Errorf("%v (usage %v)", err, errors.Is(err, errkind.Usage))
	}
	if got := quote(strings.Repeat("é", 100)); len([]rune(got)) != 63 {
		t.Errorf("quote kept %d runes: %s", len([]rune(got)), got)
	}
}
