package state

import (
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/speedia/host/updater/pkgver"
)

var now = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// Every transition, tried from every phase: allowed exactly where the
// diagram has an edge.
func TestTransitionsMatchDiagram(t *testing.T) {
	dot, err := os.ReadFile("state.dot")
	if err != nil {
		t.Fatal(err)
	}
	edges := map[string]bool{}
	re := regexp.MustCompile(`"?([a-z-]+)"? -> "?([a-z-]+)"? \[label="(\w+)`)
	for _, m := range re.FindAllStringSubmatch(string(dot), -1) {
		edges[m[1]+" "+m[3]] = true
	}
	u := Update{ID: "u", Snapshot: 2}
	transitions := map[string]func(*State) error{
		"StartCheck":        func(s *State) error { return s.StartCheck(now) },
		"CheckDone":         func(s *State) error { return s.CheckDone(now, "no updates", nil) },
		"StartStaging":      func(s *State) error { return s.StartStaging(now) },
		"Staged":            func(s *State) error { return s.Staged(now, u) },
		"StageFailed":       func(s *State) error { return s.StageFailed(now, errors.New("x")) },
		"Plan":              func(s *State) error { return s.Plan(now, "window") },
		"RebootScheduled":   func(s *State) error { return s.RebootScheduled(now, "b1") },
		"CancelReboot":      func(s *State) error { return s.CancelReboot() },
		"RebootAborted":     func(s *State) error { return s.RebootAborted(now, "containers") },
		"BootedPending":     func(s *State) error { return s.BootedPending(now, "b2") },
		"Verified":          func(s *State) error { return s.Verified(now) },
		"Failed":            func(s *State) error { return s.Failed(now, 1, "unhealthy") },
		"RollbackRebooting": func(s *State) error { return s.RollbackRebooting("b2") },
		"RolledBack":        func(s *State) error { return s.RolledBack(now) },
		"GaveUp":            func(s *State) error { return s.GaveUp(now, "tired") },
		"AdminRollback":     func(s *State) error { return s.AdminRollback() },
	}
	for _, p := range []Phase{Idle, Checking, Staging, Pending, Rebooting, Verifying, RollingBack} {
		for name, tr := range transitions {
			pu := u
			s := &State{Phase: p, Pending: &pu}
			err := tr(s)
			want := edges[string(p)+" "+name]
			if (err == nil) != want {
				t.Errorf("%s from %s: err %v, diagram allows: %v", name, p, err, want)
			}
			if err != nil && s.Phase != p {
				t.Errorf("%s from %s failed but moved to %s", name, p, s.Phase)
			}
		}
	}
}

func TestFailedMarksBadOnce(t *testing.T) {
	changes := []pkgver.Change{{Name: "app", Old: "1", New: "2"}}
	s := &State{Phase: Verifying, Pending: &Update{ID: UpdateID(changes), Snapshot: 2, Changes: changes}}
	if err := s.Failed(now, 1, "health"); err != nil {
		t.Fatal(err)
	}
	if !s.IsBad(UpdateID(changes)) || s.RollbackTo != 1 || s.Phase != RollingBack {
		t.Fatalf("%+v", s)
	}
	if err := s.GaveUp(now, "no"); err != nil {
		t.Fatal(err)
	}
	if len(s.Bad) != 1 || s.Pending != nil || s.Phase != Idle {
		t.Fatalf("%+v", s)
	}
	if !s.ClearBad(s.Bad[0].ID) || len(s.Bad) != 0 || s.ClearBad("nope") {
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
	if !s.Held(now) || s.Held(now.Add(time.Hour)) || s.Hold != nil {
		t.Fatalf("hold: %+v", s.Hold)
	}
}
