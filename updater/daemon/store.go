package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/speedia/host/updater/atomicfile"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/state"
)

// Store keeps the state file and the history under one directory
// (/var/lib/speedia). The state file is replaced atomically (write, fsync,
// rename, fsync dir), so a daemon killed at any moment finds either the old
// or the new state.
type Store struct {
	Dir string
}

func (s Store) statePath() string   { return filepath.Join(s.Dir, "state.json") }
func (s Store) historyPath() string { return filepath.Join(s.Dir, "history.jsonl") }

// Load reads the state; a missing file is a fresh host.
func (s Store) Load() (*state.State, error) {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return state.New(), nil
	}
	if err != nil {
		return nil, err
	}
	st := state.New()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w", s.statePath(), err)
	}
	return st, nil
}

// Save replaces the state file atomically.
func (s Store) Save(st *state.State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.statePath(), append(b, '\n'), 0o600)
}

// Append adds one record to the history and syncs it.
func (s Store) Append(r history.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(s.historyPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// History returns the newest limit records (0 = all), oldest first. A torn
// last line (a crash mid-append) is skipped.
func (s Store) History(limit int) ([]history.Record, error) {
	b, err := os.ReadFile(s.historyPath())
	if errors.Is(err, fs.ErrNotExist) {
		return []history.Record{}, nil
	}
	if err != nil {
		return nil, err
	}
	recs := []history.Record{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r history.Record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			recs = append(recs, r)
		}
	}
	if limit > 0 && len(recs) > limit {
		recs = recs[len(recs)-limit:]
	}
	return recs, sc.Err()
}
