package podman

import (
	"testing"
	"time"

	"github.com/speedia/host/podman/patch"
)

func TestSetIDIgnoresOrderNotContainer(t *testing.T) {
	a := []patch.Update{{Name: "openssl", Old: "3.0.14-1", New: "3.0.15-1"}, {Name: "libc6", Old: "2.36-9", New: "2.36-9+deb12u9"}}
	b := []patch.Update{a[1], a[0]}
	if SetID("web", a) != SetID("web", b) {
		t.Fatal("the order of updates changes the set")
	}
	if SetID("web", a) == SetID("db", a) {
		t.Fatal("two containers share a set ID")
	}
	c := []patch.Update{a[0], {Name: "libc6", Old: "2.36-9", New: "2.36-9+deb12u10"}}
	if SetID("web", a) == SetID("web", c) {
		t.Fatal("a newer version has the same set ID: it would never be retried")
	}
}

// Records survive as files: a later helper process lists them, and the
// bad sets of one container are its own.
func TestPatchRecordsAndBadSets(t *testing.T) {
	m := &Manager{Dir: t.TempDir()}
	at := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	r1 := &PatchRecord{Name: "Web", At: at, Step: StepDone, SetID: "a"}
	r2 := &PatchRecord{Name: "Web", At: at.Add(time.Hour), Step: StepRestored, SetID: "b"}
	r3 := &PatchRecord{Name: "db", At: at, Step: StepUpgrade, SetID: "c"}
	for _, r := range []*PatchRecord{r2, r1, r3} {
		if err := m.savePatch(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.markBadSet(r2); err != nil {
		t.Fatal(err)
	}
	if err := m.markBadSet(r2); err != nil { // twice: once in the list
		t.Fatal(err)
	}
	web, err := m.PatchRecords("web")
	if err != nil || len(web) != 2 || web[0].SetID != "a" || web[1].SetID != "b" {
		t.Fatalf("records of web: %+v %v", web, err)
	}
	all, err := m.PatchRecords("")
	if err != nil || len(all) != 3 {
		t.Fatalf("all records: %d %v", len(all), err)
	}
	if bad, _ := m.isBadSet("web", "b"); !bad {
		t.Error("the failed set of web is not bad")
	}
	if bad, _ := m.isBadSet("db", "b"); bad {
		t.Error("web's bad set is bad for db too")
	}
	if ids, _ := m.badSets("web"); len(ids) != 1 {
		t.Errorf("bad sets %v", ids)
	}
}
