package tu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/speedia/host/updater/snapshot"
)

// listArgs is `snapper list` in JSON (snapper >= 0.8.6) with only the columns
// we read; leaving out used-space spares snapper the quota scan. --utc fixes
// the zone of the dates.
var listArgs = []string{"--utc", "--jsonout", "list", "--columns", "number,default,active,type,date,description,userdata"}

const (
	// goodKey is the snapper userdata key MarkGood sets.
	goodKey = "speedia.good"
	// inProgressKey is set by tukit while a transaction is open and cleared on
	// success (lib/Snapshot/Snapper.cpp).
	inProgressKey = "transactional-update-in-progress"
	// firstRoot is the description of the installed system's snapshot.
	firstRoot = "first root filesystem"
)

// tukitDesc matches the default description tukit gives a new snapshot
// (lib/Transaction.cpp: "Snapshot Update of #" + base), also with the text
// Stage appends.
var tukitDesc = regexp.MustCompile(`^Snapshot Update of #([0-9]+)(:|$)`)

// snapperDate is snapper's ISO date format ("%F %T" in snapper/AppUtil.cc).
const snapperDate = "2006-01-02 15:04:05"

type snapperEntry struct {
	Number      int               `json:"number"`
	Default     bool              `json:"default"`
	Active      bool              `json:"active"`
	Type        string            `json:"type"`
	Date        string            `json:"date"`
	Description string            `json:"description"`
	Userdata    map[string]string `json:"userdata"`
}

// parseSnapperList reads `snapper --jsonout list` output: one key per config,
// each an array of snapshots. Snapshot 0 ("current", the live subvolume) is
// left out. The result is sorted by number, oldest first.
func parseSnapperList(data []byte) ([]snapshot.Snapshot, error) {
	var configs map[string][]snapperEntry
	if err := json.Unmarshal(data, &configs); err != nil {
		return nil, fmt.Errorf("parse snapper list: %w", err)
	}
	if len(configs) != 1 {
		return nil, fmt.Errorf("parse snapper list: want 1 config, got %d", len(configs))
	}
	var out []snapshot.Snapshot
	for _, entries := range configs {
		for _, e := range entries {
			if e.Number == 0 {
				continue
			}
			s, err := e.snapshot()
			if err != nil {
				return nil, fmt.Errorf("parse snapper list: %w", err)
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

func (e snapperEntry) snapshot() (snapshot.Snapshot, error) {
	s := snapshot.Snapshot{
		Number:      e.Number,
		Description: e.Description,
		State:       e.state(),
		Booted:      e.Active,
		Default:     e.Default,
		Good:        e.Userdata[goodKey] == "yes",
	}
	if e.Date != "" {
		d, err := time.ParseInLocation(snapperDate, e.Date, time.UTC)
		if err != nil {
			return s, fmt.Errorf("snapshot %d: date: %w", e.Number, err)
		}
		s.Date = d
	}
	if m := tukitDesc.FindStringSubmatch(e.Description); m != nil {
		s.Parent, _ = strconv.Atoi(m[1]) // digits only; cannot fail short of overflow
	}
	return s, nil
}

// state sorts snapshots into ours to boot and others'. A root snapshot is
// ready when t-u (tukit) made it, when it is the installed system, or when it
// is running or about to boot anyway; pre/post pairs, timeline and manual
// snapshots are foreign.
func (e snapperEntry) state() snapshot.State {
	switch {
	case e.Userdata[inProgressKey] == "yes":
		return snapshot.StateStaging
	case e.Type != "" && e.Type != "single": // "type" is absent with list --type single
		return snapshot.StateForeign
	case e.Active, e.Default, tukitDesc.MatchString(e.Description), e.Description == firstRoot:
		return snapshot.StateReady
	}
	return snapshot.StateForeign
}
