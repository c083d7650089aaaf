package tu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/run"
	"github.com/speedia/host/updater/snapshot"
)

const (
	listCmd  = "snapper --utc --jsonout list --columns number,default,active,type,date,description,userdata"
	rpmQuery = ` -qa --queryformat %{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n`
	now      = 1734480000
	tuBin    = "/usr/sbin/transactional-update"
)

func rpmCmd(n int) string {
	return "rpm --root /.snapshots/" + strconv.Itoa(n) + "/snapshot" + rpmQuery
}

func journalCmd(unit string) string {
	return "journalctl --unit=" + unit + " --output=cat --no-pager"
}

// fakeUnits records the units it is asked to run; effect stands for what t-u
// does to the system while it runs.
type fakeUnits struct {
	names  []string
	argvs  [][]string
	code   int
	err    error
	effect func()
}

func (f *fakeUnits) RunUnit(_ context.Context, name string, argv []string) (int, error) {
	f.names = append(f.names, name)
	f.argvs = append(f.argvs, argv)
	if f.effect != nil {
		f.effect()
	}
	return f.code, f.err
}

func newEngine(t *testing.T, fake *run.Fake, units *fakeUnits) *Engine {
	t.Helper()
	e := New(fake, units)
	e.RebootNeededFile = filepath.Join("testdata", "reboot-needed.soft-reboot")
	e.LockFile = filepath.Join(t.TempDir(), "transactional-update.pid")
	e.Now = func() time.Time { return time.Unix(now, 0) }
	return e
}

// holdLock makes the engine see a running t-u: the lock names a live pid.
func holdLock(t *testing.T, e *Engine) {
	t.Helper()
	if err := os.WriteFile(e.LockFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkCalls(t *testing.T, fake *run.Fake, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(fake.Calls, want) {
		t.Errorf("commands:\n got  %q\n want %q", fake.Calls, want)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		method  string
		dryRun  string
		ans     run.Answer
		want    int
		wantErr error
	}{
		{"dup", "zypper --non-interactive --xmlout --no-cd dup --dry-run --auto-agree-with-product-licenses",
			run.Answer{Stdout: readTestdata(t, "zypper-dup.xml")}, 4, nil},
		{"up", "zypper --non-interactive --xmlout up --dry-run --auto-agree-with-product-licenses",
			run.Answer{Stdout: readTestdata(t, "zypper-install.xml")}, 3, nil},
		{"dup", "zypper --non-interactive --xmlout --no-cd dup --dry-run --auto-agree-with-product-licenses",
			run.Answer{Stdout: readTestdata(t, "zypper-nothing.xml")}, 0, nil},
		{"dup", "zypper --non-interactive --xmlout --no-cd dup --dry-run --auto-agree-with-product-licenses",
			run.Answer{Stdout: readTestdata(t, "zypper-dup.xml"), Code: 102}, 4, nil},
		{"dup", "zypper --non-interactive --xmlout --no-cd dup --dry-run --auto-agree-with-product-licenses",
			run.Answer{Code: 7, Stderr: "System management is locked"}, 0, errkind.Busy},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i)+"-"+tt.method, func(t *testing.T) {
			fake := &run.Fake{Answers: map[string]run.Answer{
				"zypper --non-interactive refresh": {},
				tt.dryRun:                          tt.ans,
			}}
			e := newEngine(t, fake, &fakeUnits{})
			e.Method = tt.method
			got, err := e.Check(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if len(got) != tt.want {
				t.Errorf("%d changes, want %d: %+v", len(got), tt.want, got)
			}
			checkCalls(t, fake, "zypper --non-interactive refresh", tt.dryRun)
		})
	}
}

func TestCheckRefusesWhileTURuns(t *testing.T) {
	fake := &run.Fake{}
	e := newEngine(t, fake, &fakeUnits{})
	holdLock(t, e)
	if _, err := e.Check(context.Background()); !errors.Is(err, errkind.Busy) {
		t.Fatalf("err %v, want errkind.Busy", err)
	}
	checkCalls(t, fake)
}

func TestStage(t *testing.T) {
	rpmAfter := readTestdata(t, "rpm-qa-7.txt")
	sameKernel := strings.Replace(rpmAfter, "kernel-default\t(none):6.12.6-1.1\n", "", 1)
	wantChanges := []pkgver.Change{
		{Name: "cups-libs", Old: "1:2.4.11-1.1", New: "1:2.4.11-2.1", Kind: "upgrade"},
		{Name: "glibc", Old: "2.40-3.1", New: "2.40-4.1", Kind: "upgrade"},
		{Name: "kernel-default", Old: "6.12.4-1.1", New: "6.12.6-1.1", Kind: "upgrade"},
		{Name: "podman", New: "5.3.1-1.1", Kind: "install"},
		{Name: "timezone", Old: "2024b-1.1", Kind: "remove"},
	}
	tests := []struct {
		name       string
		rebootFile string
		rpmAfter   string
		wantKernel bool
		nChanges   int
	}{
		{"kernel upgrade", "reboot-needed.soft-reboot", rpmAfter, true, 5},
		{"soft reboot is enough", "reboot-needed.soft-reboot", sameKernel, false, 4},
		{"kexec level", "reboot-needed.kexec", sameKernel, true, 4},
		{"no reboot-needed file", "missing", sameKernel, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &run.Fake{Answers: map[string]run.Answer{
				listCmd:                         {Stdout: readTestdata(t, "snapper-microos-before.json")},
				"journalctl ":                   {Stdout: readTestdata(t, "tu-stage.log")},
				rpmCmd(4):                       {Stdout: readTestdata(t, "rpm-qa-4.txt")},
				rpmCmd(7):                       {Stdout: tt.rpmAfter},
				"snapper modify --description ": {},
			}}
			units := &fakeUnits{effect: func() {
				fake.Answers[listCmd] = run.Answer{Stdout: readTestdata(t, "snapper-microos-staged.json")}
			}}
			e := newEngine(t, fake, units)
			e.RebootNeededFile = filepath.Join("testdata", tt.rebootFile)
			var log bytes.Buffer

			res, err := e.Stage(context.Background(), snapshot.StageOptions{Description: "nightly", Log: &log})
			if err != nil {
				t.Fatal(err)
			}

			unit := "speedia-tu-stage-1734480000.service"
			if want := [][]string{{tuBin, "--non-interactive", "--no-selfupdate", "dup"}}; !reflect.DeepEqual(units.argvs, want) {
				t.Errorf("unit argv %q, want %q", units.argvs, want)
			}
			if want := []string{unit}; !reflect.DeepEqual(units.names, want) {
				t.Errorf("unit names %q, want %q", units.names, want)
			}
			checkCalls(t, fake, listCmd, journalCmd(unit), listCmd, rpmCmd(4), rpmCmd(7),
				"snapper modify --description Snapshot Update of #4: nightly 7")
			if !strings.Contains(log.String(), "New default snapshot is #6") {
				t.Errorf("log did not get the unit's journal: %q", log.String())
			}

			s := res.Snapshot
			if s.Number != 7 || !s.Default || s.Booted || s.Parent != 4 || s.State != snapshot.StateReady || s.Description != "Snapshot Update of #4: nightly" {
				t.Errorf("snapshot %+v", s)
			}
			if !s.Pending() || !res.RebootNeeded {
				t.Errorf("pending %v, reboot needed %v", s.Pending(), res.RebootNeeded)
			}
			if res.KernelChanged != tt.wantKernel || s.KernelChanged != tt.wantKernel {
				t.Errorf("kernel changed %v/%v, want %v", res.KernelChanged, s.KernelChanged, tt.wantKernel)
			}
			if len(res.Changes) != tt.nChanges || !reflect.DeepEqual(s.Changes, res.Changes) {
				t.Errorf("changes %+v", res.Changes)
			}
			if tt.nChanges == len(wantChanges) && !reflect.DeepEqual(res.Changes, wantChanges) {
				t.Errorf("changes\n got  %+v\n want %+v", res.Changes, wantChanges)
			}
		})
	}
}

func TestStageFailure(t *testing.T) {
	fake := &run.Fake{Answers: map[string]run.Answer{
		listCmd:       {Stdout: readTestdata(t, "snapper-microos-before.json")},
		"journalctl ": {Stdout: readTestdata(t, "tu-failure.log")},
	}}
	units := &fakeUnits{code: 1}
	e := newEngine(t, fake, units)
	var log bytes.Buffer

	res, err := e.Stage(context.Background(), snapshot.StageOptions{Log: &log})
	if err == nil || res != nil {
		t.Fatalf("got %+v, %v; want an error and no result", res, err)
	}
	unit := "speedia-tu-stage-1734480000.service"
	for _, want := range []string{"exit status 1", unit, "journalctl -u " + unit, "/var/log/transactional-update.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if errors.Is(err, errkind.NothingToDo) || errors.Is(err, errkind.Busy) {
		t.Errorf("error %v claims a sentinel", err)
	}
	// Nothing read after the failure: no claim about a new snapshot.
	checkCalls(t, fake, listCmd, journalCmd(unit))
	if !strings.Contains(log.String(), "returned with error code 1") {
		t.Errorf("log lacks t-u's output: %q", log.String())
	}
}

func TestStageUnitError(t *testing.T) {
	fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: readTestdata(t, "snapper-microos-before.json")}}}
	e := newEngine(t, fake, &fakeUnits{code: -1, err: errors.New("connect to systemd: no bus")})
	_, err := e.Stage(context.Background(), snapshot.StageOptions{})
	if err == nil || !strings.Contains(err.Error(), "speedia-tu-stage-1734480000.service") || !strings.Contains(err.Error(), "no bus") {
		t.Fatalf("err %v", err)
	}
	checkCalls(t, fake, listCmd)
}

func TestStageNothingToDo(t *testing.T) {
	fake := &run.Fake{Answers: map[string]run.Answer{
		listCmd:       {Stdout: readTestdata(t, "snapper-microos-before.json")},
		"journalctl ": {Stdout: readTestdata(t, "tu-nothing.log")},
	}}
	e := newEngine(t, fake, &fakeUnits{}) // exit 0, snapshots unchanged
	var log bytes.Buffer
	res, err := e.Stage(context.Background(), snapshot.StageOptions{Log: &log})
	if !errors.Is(err, errkind.NothingToDo) || res != nil {
		t.Fatalf("got %+v, %v; want errkind.NothingToDo", res, err)
	}
	checkCalls(t, fake, listCmd, journalCmd("speedia-tu-stage-1734480000.service"), listCmd)
	if !strings.Contains(log.String(), "zypper: nothing to update") {
		t.Errorf("log %q", log.String())
	}
}

func TestStageRefusals(t *testing.T) {
	t.Run("busy", func(t *testing.T) {
		fake, units := &run.Fake{}, &fakeUnits{}
		e := newEngine(t, fake, units)
		holdLock(t, e)
		if _, err := e.Stage(context.Background(), snapshot.StageOptions{}); !errors.Is(err, errkind.Busy) {
			t.Fatalf("err %v, want errkind.Busy", err)
		}
		checkCalls(t, fake)
		if len(units.names) != 0 {
			t.Errorf("ran units %q", units.names)
		}
	})
	t.Run("stale lock", func(t *testing.T) {
		fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: readTestdata(t, "snapper-microos-before.json")}}}
		e := newEngine(t, fake, &fakeUnits{})
		// pid_max is at most 2^22; this pid cannot exist.
		if err := os.WriteFile(e.LockFile, []byte("99999999\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Stage(context.Background(), snapshot.StageOptions{}); !errors.Is(err, errkind.NothingToDo) {
			t.Fatalf("err %v, want to run and find nothing to do", err)
		}
	})
	t.Run("bad method", func(t *testing.T) {
		fake, units := &run.Fake{}, &fakeUnits{}
		e := newEngine(t, fake, units)
		e.Method = "patch"
		if _, err := e.Stage(context.Background(), snapshot.StageOptions{}); err == nil {
			t.Fatal("no error")
		}
		checkCalls(t, fake)
	})
}

func TestRollback(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		target  string // "" when no unit may run
		wantErr error
	}{
		{"previous of booted", 0, "3", nil},
		{"explicit", 3, "3", nil},
		{"foreign", 5, "", errkind.Refused},
		{"staging", 6, "", errkind.Refused},
		{"missing", 42, "", errkind.NotFound},
		{"negative", -1, "", errkind.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: readTestdata(t, "snapper-microos-before.json")}}}
			units := &fakeUnits{effect: func() {
				fake.Answers[listCmd] = run.Answer{Stdout: readTestdata(t, "snapper-microos-rolledback.json")}
			}}
			e := newEngine(t, fake, units)

			s, err := e.Rollback(context.Background(), tt.n)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.target == "" {
				if len(units.names) != 0 {
					t.Errorf("ran units %q", units.names)
				}
				return
			}
			if want := [][]string{{tuBin, "--no-selfupdate", "rollback", tt.target}}; !reflect.DeepEqual(units.argvs, want) {
				t.Errorf("unit argv %q, want %q", units.argvs, want)
			}
			if want := []string{"speedia-tu-rollback-1734480000.service"}; !reflect.DeepEqual(units.names, want) {
				t.Errorf("unit names %q", units.names)
			}
			if strconv.Itoa(s.Number) != tt.target || !s.Default || s.Booted {
				t.Errorf("snapshot %+v", s)
			}
			checkCalls(t, fake, listCmd, listCmd)
		})
	}
}

func TestRollbackFailures(t *testing.T) {
	t.Run("exit 1", func(t *testing.T) {
		fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: readTestdata(t, "snapper-microos-before.json")}}}
		e := newEngine(t, fake, &fakeUnits{code: 1})
		_, err := e.Rollback(context.Background(), 3)
		if err == nil || !strings.Contains(err.Error(), "speedia-tu-rollback-1734480000.service") {
			t.Fatalf("err %v", err)
		}
		checkCalls(t, fake, listCmd)
	})
	t.Run("default unchanged", func(t *testing.T) {
		fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: readTestdata(t, "snapper-microos-before.json")}}}
		e := newEngine(t, fake, &fakeUnits{})
		if _, err := e.Rollback(context.Background(), 3); err == nil || !strings.Contains(err.Error(), "not the default") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestMarkGood(t *testing.T) {
	tests := []struct {
		n       int
		wantCmd string
		wantErr error
	}{
		{4, "snapper modify --userdata speedia.good=yes 4", nil},
		{5, "", errkind.Refused},
		{6, "", errkind.Refused},
		{42, "", errkind.NotFound},
	}
	for _, tt := range tests {
		fake := &run.Fake{Answers: map[string]run.Answer{
			listCmd:          {Stdout: readTestdata(t, "snapper-microos-before.json")},
			"snapper modify": {},
		}}
		e := newEngine(t, fake, &fakeUnits{})
		err := e.MarkGood(context.Background(), tt.n)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("MarkGood(%d): err %v, want %v", tt.n, err, tt.wantErr)
		}
		want := []string{listCmd}
		if tt.wantCmd != "" {
			want = append(want, tt.wantCmd)
		}
		checkCalls(t, fake, want...)
	}
}

func TestCleanup(t *testing.T) {
	tests := []struct {
		list string
		keep int
		want []int
	}{
		// Ready: 1 2 3(good) 4(booted, default); 5 foreign; 6 staging.
		{"snapper-microos-before.json", 0, []int{1, 2, 6}},
		{"snapper-microos-before.json", 2, []int{1, 2, 6}},
		{"snapper-microos-before.json", 3, []int{1, 6}},
		{"snapper-microos-before.json", 10, []int{6}},
		// 7 is the default now, 4 still booted.
		{"snapper-microos-staged.json", 1, []int{1, 2, 6}},
		{"snapper-microos-staged.json", 4, []int{1, 6}},
		// Blog host: 1 booted and default, 2 foreign.
		{"snapper-list-blog.json", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.list+"/"+strconv.Itoa(tt.keep), func(t *testing.T) {
			listing := readTestdata(t, tt.list)
			fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: listing}, "snapper delete ": {}}}
			e := newEngine(t, fake, &fakeUnits{})

			got, err := e.Cleanup(context.Background(), tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("deleted %v, want %v", got, tt.want)
			}
			want := []string{listCmd}
			for _, n := range tt.want {
				want = append(want, "snapper delete "+strconv.Itoa(n))
			}
			checkCalls(t, fake, want...)

			list, _ := parseSnapperList([]byte(listing))
			good, _ := snapshot.LastGood(list)
			for _, n := range got {
				s, _ := snapshot.Find(list, n)
				if s.Booted || s.Default || s.State == snapshot.StateForeign || (s.Good && n == good.Number) {
					t.Errorf("deleted protected snapshot %+v", s)
				}
			}
		})
	}
}

func TestCleanupErrors(t *testing.T) {
	t.Run("delete fails", func(t *testing.T) {
		fake := &run.Fake{Answers: map[string]run.Answer{
			listCmd:            {Stdout: readTestdata(t, "snapper-microos-before.json")},
			"snapper delete ":  {},
			"snapper delete 2": {Code: 1, Stderr: "Deleting snapshot failed."},
		}}
		e := newEngine(t, fake, &fakeUnits{})
		got, err := e.Cleanup(context.Background(), 0)
		if err == nil || !reflect.DeepEqual(got, []int{1}) {
			t.Fatalf("got %v, %v; want [1] and an error", got, err)
		}
	})
	t.Run("negative keep", func(t *testing.T) {
		fake := &run.Fake{}
		e := newEngine(t, fake, &fakeUnits{})
		if _, err := e.Cleanup(context.Background(), -1); !errors.Is(err, errkind.Refused) {
			t.Fatalf("err %v", err)
		}
		checkCalls(t, fake)
	})
	t.Run("busy", func(t *testing.T) {
		fake := &run.Fake{}
		e := newEngine(t, fake, &fakeUnits{})
		holdLock(t, e)
		if _, err := e.Cleanup(context.Background(), 1); !errors.Is(err, errkind.Busy) {
			t.Fatalf("err %v", err)
		}
		checkCalls(t, fake)
	})
}

func TestList(t *testing.T) {
	fake := &run.Fake{Answers: map[string]run.Answer{listCmd: {Stdout: readTestdata(t, "snapper-microos-staged.json")}}}
	e := newEngine(t, fake, &fakeUnits{})
	list, err := e.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, s := range list {
		nums = append(nums, s.Number)
	}
	if !reflect.DeepEqual(nums, []int{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("numbers %v", nums)
	}
	if b, _ := snapshot.Booted(list); b.Number != 4 {
		t.Errorf("booted %d", b.Number)
	}
	if g, _ := snapshot.LastGood(list); g.Number != 3 {
		t.Errorf("last good %d", g.Number)
	}
	if d, _ := defaultOf(list); d.Number != 7 || !d.Pending() {
		t.Errorf("default %+v", d)
	}

	fake.Answers[listCmd] = run.Answer{Code: 1, Stderr: "Unknown config."}
	if _, err := e.List(context.Background()); err == nil || !strings.Contains(err.Error(), "Unknown config.") {
		t.Errorf("err %v", err)
	}
}
