package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/daemon"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/metrics"
	"github.com/speedia/host/updater/state"
)

func TestReplyKindsMapToDaemonErrors(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{fmt.Errorf("%w: container x", errkind.NotFound), errkind.NotFound},
		{fmt.Errorf("%w: already runs", errkind.NothingToDo), errkind.NothingToDo},
		{fmt.Errorf("%w: unit", errkind.Refused), errkind.Refused},
		{fmt.Errorf("%w: set failed before", errkind.Bad), errkind.Bad},
		{fmt.Errorf("%w: package lock", errkind.Busy), errkind.Busy},
		{fmt.Errorf("%w: bad", errkind.Usage), errkind.Invalid},
	}
	for _, tt := range tests {
		r := Failure(tt.err)
		if got := r.Err(); !errors.Is(got, tt.want) || !strings.Contains(got.Error(), tt.err.Error()) {
			t.Errorf("%v -> %v, want %v", tt.err, got, tt.want)
		}
	}
	if err := Failure(errors.New("podman down")).Err(); err == nil || errors.Is(err, errkind.NotFound) {
		t.Errorf("plain error -> %v", err)
	}
	if (Reply{}).Err() != nil {
		t.Error("empty reply has an error")
	}
}

// helper writes a stand-in for speedia-containers that records its
// arguments and stdin and prints reply.
func helper(t *testing.T, reply string) (path, argsFile, stdinFile string) {
	dir := t.TempDir()
	path, argsFile, stdinFile = filepath.Join(dir, "helper"), filepath.Join(dir, "args"), filepath.Join(dir, "stdin")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s\ncat > %s\ncat <<'EOF'\n%s\nEOF\n", argsFile, stdinFile, reply)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, argsFile, stdinFile
}

// newExec runs the helper at path with the daemon in phase; the returned
// view is what the Exec reads at each call (a reload replaces it).
func newExec(t *testing.T, path string, phase state.Phase) (*Exec, *daemon.View) {
	sock := filepath.Join(t.TempDir(), "podman.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	v := &daemon.View{Settings: daemon.Settings{Containers: daemon.ContainerSettings{
		Socket: sock, Settle: time.Second, Timeout: time.Minute, Parallel: 3, Keep: time.Hour}}}
	if err := json.Unmarshal([]byte(`{"phase":"`+string(phase)+`"}`), &v.State); err != nil {
		t.Fatal(err)
	}
	return &Exec{
		Helper: path,
		Dir:    "/d",
		View:   func() daemon.View { return *v },
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, v
}

func TestExecPassesSettingsAndInventory(t *testing.T) {
	path, argsFile, stdinFile := helper(t, `{"run":{"what":"start","results":[{"name":"db","ok":false,"critical":true,"error":"exited"}]},"critical":["container db: exited"]}`)
	x, v := newExec(t, path, state.Verifying)
	inv := []byte(`{"containers":[{"name":"db","critical":true}]}`)
	critical, err := x.Start(context.Background(), inv)
	if err != nil || len(critical) != 1 || critical[0] != "container db: exited" {
		t.Fatalf("Start = %v, %v", critical, err)
	}
	args, _ := os.ReadFile(argsFile)
	want := "-socket " + v.Settings.Containers.Socket + " -dir /d -settle 1s -timeout 1m0s -parallel 3 -keep 1h0m0s start\n"
	if string(args) != want {
		t.Errorf("args %q, want %q", args, want)
	}
	// A reload: the next call runs with the new settings.
	v.Settings.Containers.Settle, v.Settings.Containers.Parallel = 250*time.Millisecond, 8
	if _, err := x.Start(context.Background(), inv); err != nil {
		t.Fatal(err)
	}
	args, _ = os.ReadFile(argsFile)
	if want := "-socket " + v.Settings.Containers.Socket + " -dir /d -settle 250ms -timeout 1m0s -parallel 8 -keep 1h0m0s start\n"; string(args) != want {
		t.Errorf("after the reload: args %q, want %q", args, want)
	}
	if stdin, _ := os.ReadFile(stdinFile); string(stdin) != string(inv) {
		t.Errorf("stdin %q", stdin)
	}
	if x.last == nil || x.last.Results[0].Name != "db" {
		t.Errorf("the run was not kept for the report: %+v", x.last)
	}
}

func TestExecEmptyInventoryRunsNothing(t *testing.T) {
	x, v := newExec(t, "/nonexistent/helper", state.Rebooting)
	if err := x.Stop(context.Background(), []byte(`{"containers":[]}`)); err != nil {
		t.Fatal(err)
	}
	if c, err := x.Start(context.Background(), []byte(`{"containers":[]}`)); err != nil || c != nil {
		t.Fatal(c, err)
	}
	os.Remove(v.Settings.Containers.Socket)
	if inv, err := x.Inventory(context.Background()); err != nil || !empty(inv) {
		t.Fatalf("no Podman socket: inventory %s, %v; want empty", inv, err)
	}
}

func TestExecUpgradeRefusedDuringReboot(t *testing.T) {
	path, argsFile, _ := helper(t, `{}`)
	x, _ := newExec(t, path, state.Rebooting)
	if _, err := x.Upgrade(context.Background(), "db", "img", false); !errors.Is(err, errkind.Busy) {
		t.Fatalf("err = %v, want busy", err)
	}
	if _, err := os.Stat(argsFile); !os.IsNotExist(err) {
		t.Error("the helper ran during a reboot")
	}
}

func TestExecBrokenHelperIsAnError(t *testing.T) {
	path, _, _ := helper(t, `not json`)
	x, _ := newExec(t, path, state.Idle)
	for _, force := range []bool{false, true} {
		if _, err := x.Upgrade(context.Background(), "db", "img", force); err == nil || !strings.Contains(err.Error(), path+" upgrade:") {
			t.Fatalf("force %v: err = %v; want one naming the helper and operation", force, err)
		}
	}
}

func TestExecForcedUpgradeAndPruneArgs(t *testing.T) {
	path, argsFile, _ := helper(t, `{"upgrade":{"name":"db","kept":"db-speedia-old-x","writable_layer":{"user":2,"paths":["A /srv/a"],"churn":3}}}`)
	x, _ := newExec(t, path, state.Idle)
	for _, tt := range []struct {
		call func() (any, error)
		tail string
	}{
		{func() (any, error) { return x.Upgrade(context.Background(), "db", "img", true) }, " -keep 1h0m0s -force upgrade db img\n"},
		{func() (any, error) { return x.Upgrade(context.Background(), "db", "img", false) }, " -keep 1h0m0s upgrade db img\n"},
		{func() (any, error) { return x.Prune(context.Background(), "db") }, " -keep 1h0m0s prune db\n"},
	} {
		v, err := tt.call()
		if err != nil {
			t.Fatal(err)
		}
		if u := v.(*Upgrade); u.WritableLayer == nil || u.WritableLayer.User != 2 || u.Kept != "db-speedia-old-x" {
			t.Errorf("reply not passed on: %+v", u)
		}
		if args, _ := os.ReadFile(argsFile); !strings.HasSuffix(string(args), tt.tail) {
			t.Errorf("args %q, want them to end in %q", args, tt.tail)
		}
	}
}

func TestExecPassesPatchSettings(t *testing.T) {
	path, argsFile, _ := helper(t, `{"patch":{"name":"web","step":"done"}}`)
	x, v := newExec(t, path, state.Idle)
	v.Settings.Containers.Patch, v.Settings.Containers.PatchKeep, v.Settings.Containers.PatchLockTimeout = "auto", 5, 90*time.Second
	if _, err := x.Patch(context.Background(), "web", true, true); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(argsFile)
	if want := " -patch-policy auto -patch-keep 5 -lock-timeout 1m30s -dry-run -security-only patch web\n"; !strings.HasSuffix(string(args), want) {
		t.Errorf("args %q, want them to end in %q", args, want)
	}
	if _, err := x.Check(context.Background(), []string{"a", "b"}, false); err != nil {
		t.Fatal(err)
	}
	if args, _ := os.ReadFile(argsFile); !strings.HasSuffix(string(args), " status a b\n") {
		t.Errorf("status args %q", args)
	}
}

func TestExecRecordsPatchEvents(t *testing.T) {
	for _, tt := range []struct {
		reply string
		dry   bool
		want  history.Event // "" = nothing recorded
	}{
		{`{"patch":{"name":"web","set_id":"ab","image":"localhost/speedia-patch-web:1","updates":[{"name":"a","new":"2"}]}}`, false, history.ContainerPatched},
		{`{"patch":{"name":"web","set_id":"ab","updates":[{"name":"a","new":"2"}]}}`, true, ""},
		{`{"patch":{"name":"web","set_id":"ab"},"error":"upgrading web: dpkg failed; restored the rollback point of web"}`, false, history.ContainerPatchFailed},
		{`{"error":"web: this package set failed before","kind":"bad"}`, false, ""},
		{`{"error":"no updates for web","kind":"nothing"}`, false, ""},
	} {
		path, _, _ := helper(t, tt.reply)
		x, _ := newExec(t, path, state.Idle)
		var got []history.Record
		x.Record = func(r history.Record) { got = append(got, r) }
		_, _ = x.Patch(context.Background(), "web", tt.dry, false)
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("%s: recorded %+v, want nothing", tt.reply, got)
		case tt.want != "" && (len(got) != 1 || got[0].Event != tt.want || got[0].Container != "web" || got[0].Update != "ab"):
			t.Errorf("%s: recorded %+v, want one %s of web, set ab", tt.reply, got, tt.want)
		}
	}
}

type fakeMetrics struct {
	all    [][]metrics.ContainerPatch
	one    []metrics.ContainerPatch
	failed []string
}

func (f *fakeMetrics) SetContainerPatches(c []metrics.ContainerPatch) { f.all = append(f.all, c) }
func (f *fakeMetrics) SetContainerPatch(c metrics.ContainerPatch)     { f.one = append(f.one, c) }
func (f *fakeMetrics) ContainerPatchFailed(name string)               { f.failed = append(f.failed, name) }

func TestExecFeedsPatchMetrics(t *testing.T) {
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	path, _, _ := helper(t, `{"patches":[{"name":"web","checked":true,"security":1,"pending":[{"name":"a","new":"2","security":true},{"name":"b","new":"3"}],`+
		`"last":{"at":"2026-12-01T02:00:00Z","step":"done"}},{"name":"bb","checked":false,"pending":[]}]}`)
	x, _ := newExec(t, path, state.Idle)
	f := &fakeMetrics{}
	x.Metrics = f
	if _, err := x.Check(context.Background(), nil, true); err != nil {
		t.Fatal(err)
	}
	want := []metrics.ContainerPatch{{Name: "web", Pending: 2, Security: 1, LastPatched: at}}
	if len(f.all) != 1 || !reflect.DeepEqual(f.all[0], want) {
		t.Errorf("metrics after a check of all: %+v, want %+v (unchecked containers left out)", f.all, want)
	}
	if _, err := x.Check(context.Background(), nil, false); err != nil || len(f.all) != 1 {
		t.Errorf("a status changed the metrics: %+v %v", f.all, err)
	}
	path, _, _ = helper(t, `{"patch":{"name":"web","set_id":"ab"},"error":"restored the rollback point of web"}`)
	x.Helper = path
	_, _ = x.Patch(context.Background(), "web", false, false)
	if !reflect.DeepEqual(f.failed, []string{"web"}) {
		t.Errorf("failures %v, want web", f.failed)
	}
}
