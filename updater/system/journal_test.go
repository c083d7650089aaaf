package system

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/coreos/go-systemd/v22/journal"
)

// entry is what the handler sent to the fake journal.
type entry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

type fakeJournal struct {
	entries []entry
	err     error
}

func (f *fakeJournal) send(msg string, p journal.Priority, vars map[string]string) error {
	if f.err != nil {
		return f.err
	}
	f.entries = append(f.entries, entry{msg, p, vars})
	return nil
}

func testHandler(f *fakeJournal, stderr *bytes.Buffer) slog.Handler {
	return &journalHandler{ident: "test-ident", level: slog.LevelDebug, send: f.send,
		fallback: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})}
}

func TestJournalFields(t *testing.T) {
	f := &fakeJournal{}
	log := slog.New(testHandler(f, nil))
	log.Info("update staged", "snapshot", 2, "message_id", "7e81b3c47f724669b9ebcad21db6aca5", "from", "1.0 (bookworm)")
	log.With("component", "engine").WithGroup("old").Warn("rolled back", "snapshot", 3, slog.Group("boot", "id", "abc"))
	log.Debug("tick", "message", "clash", "2fa", true, "weird-key.x", "v", "Message_ID", "m2")
	log.Error("boom", "err", errors.New("disk full"))
	log.Log(context.Background(), slog.LevelError+4, "worse")

	want := []entry{
		{`update staged snapshot=2 from="1.0 (bookworm)"`, journal.PriInfo, map[string]string{
			"SNAPSHOT": "2", "MESSAGE_ID": "7e81b3c47f724669b9ebcad21db6aca5", "FROM": "1.0 (bookworm)"}},
		{`rolled back component=engine old.snapshot=3 old.boot.id=abc`, journal.PriWarning, map[string]string{
			"COMPONENT": "engine", "OLD_SNAPSHOT": "3", "OLD_BOOT_ID": "abc"}},
		{`tick message=clash 2fa=true weird-key.x=v`, journal.PriDebug, map[string]string{
			"ATTR_MESSAGE": "clash", "ATTR_2FA": "true", "WEIRD_KEY_X": "v", "MESSAGE_ID": "m2"}},
		{`boom err="disk full"`, journal.PriErr, map[string]string{"ERR": "disk full"}},
		{`worse`, journal.PriCrit, map[string]string{}},
	}
	if len(f.entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(f.entries), len(want))
	}
	for i, w := range want {
		got := f.entries[i]
		if got.msg != w.msg || got.pri != w.pri {
			t.Errorf("entry %d: MESSAGE %q PRIORITY %d; want %q %d", i, got.msg, got.pri, w.msg, w.pri)
		}
		if got.vars["SYSLOG_IDENTIFIER"] != "test-ident" {
			t.Errorf("entry %d: SYSLOG_IDENTIFIER %q", i, got.vars["SYSLOG_IDENTIFIER"])
		}
		if !strings.HasSuffix(got.vars["CODE_FUNC"], "TestJournalFields") || got.vars["CODE_LINE"] == "" {
			t.Errorf("entry %d: CODE_FUNC %q CODE_LINE %q", i, got.vars["CODE_FUNC"], got.vars["CODE_LINE"])
		}
		for k, v := range w.vars {
			if got.vars[k] != v {
				t.Errorf("entry %d: %s=%q, want %q", i, k, got.vars[k], v)
			}
		}
		for k := range got.vars {
			if _, ok := w.vars[k]; !ok && !strings.HasPrefix(k, "CODE_") && k != "SYSLOG_IDENTIFIER" {
				t.Errorf("entry %d: unexpected field %s=%q", i, k, got.vars[k])
			}
		}
	}
}

func TestJournalLevel(t *testing.T) {
	f := &fakeJournal{}
	h := NewJournalHandler("x", slog.LevelWarn).(*journalHandler)
	h.send = f.send
	log := slog.New(h)
	log.Info("dropped")
	log.Warn("kept")
	if len(f.entries) != 1 || f.entries[0].msg != "kept" {
		t.Fatalf("entries %+v", f.entries)
	}
}

func TestJournalFallback(t *testing.T) {
	var stderr bytes.Buffer
	f := &fakeJournal{err: errors.New("journald restarting")}
	slog.New(testHandler(f, &stderr)).With("a", 1).WithGroup("g").Info("still seen", "b", 2)
	if got := stderr.String(); !strings.Contains(got, `msg="still seen" a=1 g.b=2`) {
		t.Fatalf("stderr: %q", got)
	}
}

func TestFieldName(t *testing.T) {
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"snapshot"}, "SNAPSHOT"},
		{[]string{"a", "b"}, "A_B"},
		{[]string{"_private"}, "PRIVATE"},
		{[]string{"9lives"}, "ATTR_9LIVES"},
		{[]string{"ünïcode"}, "N_CODE"},
		{[]string{"priority"}, "ATTR_PRIORITY"},
		{[]string{""}, "ATTR"},
		{[]string{strings.Repeat("x", 80)}, strings.Repeat("X", 64)},
	} {
		if got := fieldName(tc.path); got != tc.want {
			t.Errorf("fieldName(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestJournalSlogtest runs the standard library's handler conformance test,
// reading each entry back from MESSAGE's key=value pairs (dotted groups) and
// checking each pair against its journal field.
func TestJournalSlogtest(t *testing.T) {
	var f *fakeJournal
	slogtest.Run(t, func(*testing.T) slog.Handler {
		f = &fakeJournal{}
		h := testHandler(f, nil).(*journalHandler)
		h.level = slog.LevelInfo
		return h
	}, func(t *testing.T) map[string]any {
		if len(f.entries) != 1 {
			t.Fatalf("%d entries", len(f.entries))
		}
		e := f.entries[0]
		msg, rest, _ := strings.Cut(e.msg, " ")
		m := map[string]any{slog.MessageKey: msg, slog.LevelKey: e.pri}
		// journald stamps each entry itself on receipt (the handler sends no
		// time field), so the time checks do not apply: "zero-time" sees none.
		if !strings.HasSuffix(t.Name(), "/zero-time") {
			m[slog.TimeKey] = "stamped by journald"
		}
		for rest != "" {
			var key, val string
			key, rest, _ = strings.Cut(rest, "=")
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				val, _ = strconv.Unquote(q)
				rest = strings.TrimPrefix(rest[len(q):], " ")
			} else {
				val, rest, _ = strings.Cut(rest, " ")
			}
			path := strings.Split(key, ".")
			if got := e.vars[fieldName(path)]; got != val {
				t.Errorf("field %s = %q, MESSAGE has %s=%q", fieldName(path), got, key, val)
			}
			g := m
			for _, p := range path[:len(path)-1] {
				sub, ok := g[p].(map[string]any)
				if !ok {
					sub = map[string]any{}
					g[p] = sub
				}
				g = sub
			}
			g[path[len(path)-1]] = val
		}
		return m
	})
}
