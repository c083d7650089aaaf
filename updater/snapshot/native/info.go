package native

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/speedia/host/updater/pkgver"
	"github.com/speedia/host/updater/snapshot"
)

// info is snapper's per-snapshot metadata file (N/info.xml), so `snapper list`
// shows our snapshots. Our own fields live in userdata under "speedia.".
type info struct {
	XMLName     xml.Name   `xml:"snapshot"`
	Type        string     `xml:"type"`
	Num         int        `xml:"num"`
	Date        string     `xml:"date"`
	Description string     `xml:"description"`
	Cleanup     string     `xml:"cleanup,omitempty"`
	Userdata    []userdata `xml:"userdata"`
}

type userdata struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

const snapperDate = "2006-01-02 15:04:05" // UTC, as snapper writes it

func (in *info) get(key string) string {
	for _, u := range in.Userdata {
		if u.Key == key {
			return u.Value
		}
	}
	return ""
}

func (in *info) set(key, value string) {
	for i, u := range in.Userdata {
		if u.Key == key {
			in.Userdata[i].Value = value
			return
		}
	}
	in.Userdata = append(in.Userdata, userdata{key, value})
}

func readInfo(path string) (*info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in info
	if err := xml.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &in, nil
}

func writeInfo(path string, in *info) error {
	b, err := xml.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// meta is what we keep beside info.xml that does not fit userdata.
type meta struct {
	Changes       []pkgver.Change `json:"changes"`
	KernelChanged bool            `json:"kernel_changed"`
	Kernels       []string        `json:"kernels,omitempty"`
}

func readMeta(path string) (*meta, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

func writeMeta(path string, m *meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// toSnapshot turns a snapshot directory's metadata into the engine's view.
func toSnapshot(n int, in *info, m *meta) snapshot.Snapshot {
	s := snapshot.Snapshot{Number: n, State: snapshot.StateForeign}
	if in == nil {
		// A directory with no info.xml is a transaction killed right after mkdir.
		s.State = snapshot.StateStaging
		return s
	}
	s.Description = in.Description
	if t, err := time.ParseInLocation(snapperDate, in.Date, time.UTC); err == nil {
		s.Date = t
	}
	switch snapshot.State(in.get("speedia.state")) {
	case snapshot.StateStaging:
		s.State = snapshot.StateStaging
	case snapshot.StateReady:
		s.State = snapshot.StateReady
	}
	s.Parent, _ = strconv.Atoi(in.get("speedia.parent"))
	s.Good = in.get("speedia.good") == "yes"
	if m != nil {
		s.Changes, s.KernelChanged = m.Changes, m.KernelChanged
	}
	return s
}

// writeFileAtomic writes via a temp file, fsync and rename, so readers and a
// crash see the old or the new content, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var errNoStatus = errors.New("no dpkg status file")
