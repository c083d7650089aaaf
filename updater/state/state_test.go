package state

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/speedia/host/updater/pkgver"
)

var now = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// Every transition, tried from every phase with and without a pending
// update: allowed exactly where the diagram has an edge from that phase,
// landing where that edge points; refused, it changes nothing at all.
func TestTransitionsMatchDiagram(t *testing.T) {
	dot, err := os.ReadFile("state.dot")
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]bool{}  // "phase Method"
	edges := map[string]bool{} // "phase Method target"
	labels := map[string]bool{}
	re := regexp.MustCompile(`"?([a-z-]+)"? -> "?([a-z-]+)"? \[label="(\w+)`)
	for _, m := range re.FindAllStringSubmatch(string(dot), -1) {
		from[m[1]+" "+m[3]] = true
		edges[m[1]+" "+m[3]+" "+m[2]] = true
		labels[m[3]] = true
	}
	u := Update{ID: "u", Snapshot: 2}
	transitions := map[string]func(*State) error{
		"StartCheck":        func(s *State) error { return s.StartCheck(now) },
		"CheckDone":         func(s *State) error { return s.CheckDone(now, "no updates", nil) },
		"Interrupted":       func(s *State) error { return s.Interrupted(now) },
		"StartStaging":      func(s *State) error { return s.StartStaging(now) },
		"Staged":            func(s *State) error { return s.Staged(now, u) },
		"StageFailed":       func(s *State) error { return s.StageFailed(now, errors.New("x")) },
		"PlanReboot":        func(s *State) error { return s.PlanReboot(now, "window") },
		"Postponed":         func(s *State) error { return s.Postponed(now, now.Add(time.Minute), "users") },
		"RetryLater":        func(s *State) error { return s.RetryLater(now, "retrying", "lock") },
		"AdminReboot":       func(s *State) error { return s.AdminReboot(now) },
		"RebootScheduled":   func(s *State) error { return s.RebootScheduled(now, "window", "b1") },
		"WorkloadTaken":     func(s *State) error { return s.WorkloadTaken(json.RawMessage(`[]`)) },
		"WorkloadStopped":   func(s *State) error { return s.WorkloadStopped() },
		"Rescheduled":       func(s *State) error { return s.Rescheduled(now, "") },
		"CancelReboot":      func(s *State) error { return s.CancelReboot() },
		"RebootAborted":     func(s *State) error { return s.RebootAborted(now, "retrying", "containers") },
		"BootedPending":     func(s *State) error { return s.BootedPending(now, "b2") },
		"Verified":          func(s *State) error { return s.Verified(now) },
		"Failed":            func(s *State) error { return s.Failed(now, 1, "unhealthy") },
		"RollbackRebooting": func(s *State) error { return s.RollbackRebooting(now, "b2") },
		"RolledBack":        func(s *State) error { return s.RolledBack(now) },
		"GaveUp":            func(s *State) error { return s.GaveUp(now, "tired") },
		"AdminRollback":     func(s *State) error { return s.AdminRollback(nil, "b1") },
		"WorkloadBack":      func(s *State) error { return s.WorkloadBack() },
	}
	for l := range labels {
		if transitions[l] == nil {
			t.Errorf("the diagram has %s, which this test does not try", l)
		}
	}
	for _, p := range Phases {
		for name, tr := range transitions {
			for _, withPending := range []bool{true, false} {
				s := &State{phase: p, workload: Workload{Inventory: json.RawMessage(`["db"]`)}}
				if withPending {
					pu := u
					s.pending = &pu
				}
				before, _ := json.Marshal(s)
				err := tr(s)
				if withPending && (err == nil) != from[string(p)+" "+name] {
					t.Errorf("%s from %s: err %v, diagram allows: %v", name, p, err, from[string(p)+" "+name])
				}
				if err == nil && !edges[string(p)+" "+name+" "+string(s.phase)] {
					t.Errorf("%s from %s (pending %v) went to %s: no such edge", name, p, withPending, s.phase)
				}
				if err != nil {
					if !errors.Is(err, ErrTransition) {
						t.Errorf("%s from %s: %v is not ErrTransition", name, p, err)
					}
					if after, _ := json.Marshal(s); string(after) != string(before) {
						t.Errorf("%s from %s was refused but changed the state:\n%s\n%s", name, p, before, after)
					}
				}
			}
		}
	}
	for name := range transitions {
		if !labels[name] {
			t.Errorf("%s is not in the diagram", name)
		}
	}
}

// The state file written by earlier versions loads, and what is saved
// reads back the same.
func TestStateFileFormat(t *testing.T) {
	old := `{"phase":"rebooting","pending":{"id":"abc","snapshot":3,"changes":[{"name":"app","old":"1","new":"2","kind":"upgrade"}],` +
		`"kernel_changed":true,"staged_at":"2026-11-20T02:00:00Z","offset":0.25},"reboot_at":"2026-11-22T03:10:00Z",` +
		`"reboot_reason":"maintenance window","retry_at":"2026-11-22T03:05:00Z","boot_id":"b1","postponed_since":"2026-11-22T03:00:00Z",` +
		`"attempts":1,"workload":["db"],"workload_stopped":true,"hold":{"reason":"launch"},` +
		`"bad":[{"id":"x","snapshot":2,"reason":"health","date":"2026-11-01T00:00:00Z"}],"last_good":2,` +
		`"last_check":"2026-11-20T01:00:00Z","last_check_result":"staged","next_check":"2026-11-21T01:00:00Z",` +
		`"last_success":"2026-11-01T00:00:00Z","last_reboot":"2026-11-01T00:00:00Z","last_error":"e","reboots":4,"rollbacks":1}`
	var s State
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	p, tr, w, tk := s.Plan(), s.Trial(), s.Workload(), s.Track()
	if s.Phase() != Rebooting || s.PendingSnapshot() != 3 || !s.Pending().KernelChanged || p.Reason != "maintenance window" ||
		p.RetryAt.IsZero() || p.PostponedSince.IsZero() || tr.BootID != "b1" || tr.Attempts != 1 || string(w.Inventory) != `["db"]` ||
		!w.Stopped || s.Hold().Reason != "launch" || !s.IsBad("x") || tk.LastGood != 2 || tk.Reboots != 4 || tk.Rollbacks != 1 ||
		s.Checks().Result != "staged" || tk.LastError != "e" {
		t.Fatalf("loaded %+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var again, want map[string]any
	if json.Unmarshal(b, &again) != nil || json.Unmarshal([]byte(old), &want) != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip:\n%s\n%s", b, old)
	}
	if err := json.Unmarshal([]byte(`{"phase":"dancing"}`), &s); err == nil {
		t.Fatal("an unknown phase loaded")
	}
}

// What a reader gets is a copy: changing it does not change the state.
func TestGettersCopy(t *testing.T) {
	s := New()
	_ = s.StartStaging(now)
	_ = s.Staged(now, Update{ID: "a", Snapshot: 2, Changes: []pkgver.Change{{Name: "app"}}})
	s.Pending().Changes[0].Name = "changed"
	c := s.Clone()
	_ = c.AdminReboot(now)
	if s.Pending().Changes[0].Name != "app" || !s.Pending().AdminAt.IsZero() {
		t.Fatalf("a copy changed the state: %+v", s.Pending())
	}
}

func TestFailedMarksBadOnce(t *testing.T) {
	changes := []pkgver.Change{{Name: "app", Old: "1", New: "2"}}
	s := &State{phase: Verifying, pending: &Update{ID: UpdateID(changes), Snapshot: 2, Changes: changes}}
	if err := s.Failed(now, 1, "health"); err != nil {
		t.Fatal(err)
	}
	if !s.IsBad(UpdateID(changes)) || s.Trial().RollbackTo != 1 || s.Phase() != RollingBack {
		t.Fatalf("%+v", s)
	}
	if err := s.GaveUp(now, "no"); err != nil {
		t.Fatal(err)
	}
	if len(s.Bad()) != 1 || s.Pending() != nil || s.Phase() != Idle {
		t.Fatalf("%+v", s)
	}
	if !s.ClearBad(s.Bad()[0].ID) || len(s.Bad()) != 0 || s.ClearBad("nope") {
		t.Fatal("ClearBad")
	}
}

func TestUpdateIDIgnoresOrder(t *testing.T) {
	a := []pkgver.Change{{Name: "a", Old: "1", New: "2"}, {Name: "b", New: "1"}}
	b := []pkgver.Change{a[1], a[0]}
	if UpdateID(a) != UpdateID(b) {
		t.Fatal("order changes the ID")
	}
	c := []pkgver.Change{{Name: "a", Old: "1", New: "3"}, a[1]}
	if UpdateID(a) == UpdateID(c) {
		t.Fatal("a different version has the same ID")
	}
}

func TestHoldExpires(t *testing.T) {
	s := New()
	s.SetHold(Hold{Reason: "launch", Until: now.Add(time.Hour)})
	if !s.Held(now) || s.Held(now.Add(time.Hour)) || s.ExpireHold(now) || !s.ExpireHold(now.Add(time.Hour)) || s.Hold() != nil {
		t.Fatalf("hold: %+v", s.Hold())
	}
}
