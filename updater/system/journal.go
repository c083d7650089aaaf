package system

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// NewLogger logs to journald with structured fields when its socket is there,
// else as text on stderr.
func NewLogger(level slog.Leveler) *slog.Logger {
	if journal.Enabled() {
		return slog.New(NewJournalHandler(Identifier, level))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// NewJournalHandler writes each record as one journal entry: MESSAGE (the
// message followed by its attributes as key=value, so journalctl's short view
// stays readable), PRIORITY from the level, SYSLOG_IDENTIFIER=ident,
// CODE_FILE/CODE_LINE/CODE_FUNC, and every attribute as a field of its own:
// "snapshot" becomes SNAPSHOT, a group "old" holding "snapshot" becomes
// OLD_SNAPSHOT, and "message_id" (at any depth) becomes MESSAGE_ID so the
// journal catalog and `journalctl MESSAGE_ID=...` find it. When journald
// cannot take an entry, the record goes to stderr as text instead.
func NewJournalHandler(ident string, level slog.Leveler) slog.Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &journalHandler{
		ident:    ident,
		level:    level,
		send:     journal.Send,
		fallback: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}),
	}
}

type journalHandler struct {
	ident    string
	level    slog.Leveler
	send     func(msg string, p journal.Priority, vars map[string]string) error
	fallback slog.Handler // kept in step through WithAttrs/WithGroup

	attrs  []field // from WithAttrs, already prefixed
	groups []string
}

// field is one rendered attribute: its journal name, its key for MESSAGE
// (dotted groups, as slog's text handler writes them) and its value.
type field struct {
	name, key, value string
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.attrs = appendAttrs(append([]field(nil), h.attrs...), h.groups, as)
	c.fallback = h.fallback.WithAttrs(as)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	c.fallback = h.fallback.WithGroup(name)
	return &c
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := h.attrs
	if r.NumAttrs() > 0 {
		var as []slog.Attr
		r.Attrs(func(a slog.Attr) bool { as = append(as, a); return true })
		fields = appendAttrs(append([]field(nil), h.attrs...), h.groups, as)
	}
	vars := make(map[string]string, len(fields)+4)
	vars["SYSLOG_IDENTIFIER"] = h.ident
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		if f.Function != "" {
			vars["CODE_FUNC"] = f.Function
			vars["CODE_FILE"] = f.File
			vars["CODE_LINE"] = strconv.Itoa(f.Line)
		}
	}
	var msg strings.Builder
	msg.WriteString(r.Message)
	for _, f := range fields {
		vars[f.name] = f.value
		if f.name == "MESSAGE_ID" {
			continue
		}
		msg.WriteString(" " + f.key + "=" + quote(f.value))
	}
	if err := h.send(msg.String(), priority(r.Level), vars); err != nil {
		return h.fallback.Handle(ctx, r)
	}
	return nil
}

// priority maps slog levels onto syslog priorities.
func priority(l slog.Level) journal.Priority {
	switch {
	case l < slog.LevelInfo:
		return journal.PriDebug
	case l < slog.LevelWarn:
		return journal.PriInfo
	case l < slog.LevelError:
		return journal.PriWarning
	case l < slog.LevelError+4:
		return journal.PriErr
	default:
		return journal.PriCrit
	}
}

func appendAttrs(out []field, groups []string, as []slog.Attr) []field {
	for _, a := range as {
		out = appendAttr(out, groups, a)
	}
	return out
}

func appendAttr(out []field, groups []string, a slog.Attr) []field {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		sub := groups
		if a.Key != "" { // an empty key inlines the group
			sub = append(append([]string(nil), groups...), a.Key)
		}
		return appendAttrs(out, sub, v.Group())
	}
	if a.Key == "" {
		return out // slog's rule: ignore empty attributes
	}
	path := append(append([]string(nil), groups...), a.Key)
	name := fieldName(path)
	if strings.EqualFold(a.Key, "message_id") {
		name = "MESSAGE_ID"
	}
	return append(out, field{name: name, key: strings.Join(path, "."), value: valueString(v)})
}

func valueString(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.String()
}

// reserved are the fields the handler sets itself; an attribute of that name
// is kept under ATTR_NAME instead of overwriting them.
var reserved = map[string]bool{
	"MESSAGE": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true,
	"CODE_FILE": true, "CODE_LINE": true, "CODE_FUNC": true,
}

// fieldName makes a valid journal field name: uppercase letters, digits and
// underscores, not starting with an underscore or a digit, at most 64 bytes.
func fieldName(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, r := range p {
			switch {
			case r >= 'a' && r <= 'z':
				b.WriteRune(r - 'a' + 'A')
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
		}
	}
	name := strings.TrimLeft(b.String(), "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') || reserved[name] {
		name = "ATTR_" + name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return strings.TrimRight(name, "_")
}

// quote quotes values the way slog's text handler needs them to stay one
// token: when empty or holding spaces, quotes, '=' or control characters.
func quote(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == '"' || r == '=' || r == 0x7f
	}) {
		return strconv.Quote(s)
	}
	return s
}
