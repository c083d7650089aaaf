// Package dbusapi serves org.speedia.Update1 on the system bus. The
// interface XML beside this file is the contract; it is embedded and served
// for introspection. The server only forwards requests to the daemon and
// publishes its view; it never touches the state machine itself.
package dbusapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/speedia/host/updater/daemon"
	"github.com/speedia/host/updater/errkind"
	"github.com/speedia/host/updater/history"
	"github.com/speedia/host/updater/snapshot"
	"github.com/speedia/host/updater/state"
)

// Names of the service.
const (
	BusName   = "org.speedia.Update1"
	Interface = "org.speedia.Update1"
	Path      = dbus.ObjectPath("/org/speedia/Update1")
	// AdminGroup may call the mutating methods besides root.
	AdminGroup = "speedia-admin"
)

// The error names are those of updater/errkind: dbusError maps an error's
// kind to its name, and anything else to errkind.FailedName.

//go:embed org.speedia.Update1.xml
var interfaceXML string

// Backend is what the server needs of the daemon.
type Backend interface {
	View() daemon.View
	Check(ctx context.Context) (int, error)
	Apply(ctx context.Context) (int, error)
	Reboot(ctx context.Context, when string) (time.Time, error)
	CancelReboot(ctx context.Context) error
	Rollback(ctx context.Context, n int, when string) (int, error)
	Hold(ctx context.Context, reason string, until time.Time) error
	Unhold(ctx context.Context) error
	ClearBad(ctx context.Context, id string) error
	History(limit int) ([]history.Record, error)
	Snapshots(ctx context.Context) ([]snapshot.Snapshot, error)
}

// Containers is the container manager behind the Container* methods. Its
// results are sent as JSON; its errors wrap the daemon's sentinels.
type Containers interface {
	Upgrade(ctx context.Context, name, image string, force bool) (any, error)
	Rollback(ctx context.Context, name string) (any, error)
	Prune(ctx context.Context, name string) (any, error)
	Check(ctx context.Context, names []string, refresh bool) (any, error)
	Patch(ctx context.Context, name string, dryRun, securityOnly bool) (any, error)
	Report(ctx context.Context) (any, error)
}

// Server is the exported object.
type Server struct {
	ctx        context.Context
	conn       *dbus.Conn
	b          Backend
	reload     func(ctx context.Context) error
	props      *prop.Properties
	containers Containers // nil: container support is off

	mu        sync.Mutex
	lastPhase string
}

// Export puts the object on conn (without owning the name yet: call
// Export puts the object on conn (without owning the name yet: call
// SetContainers enables the Container* methods (before RequestName).
func (s *Server) SetContainers(c Containers) { s.containers = c }

// RequestName once the daemon is ready). reload re-reads the config.
func Export(ctx context.Context, conn *dbus.Conn, b Backend, reload func(ctx context.Context) error) (*Server, error) {
	v := b.View()
	s := &Server{ctx: ctx, conn: conn, b: b, reload: reload, lastPhase: string(v.State.Phase())}
	props, err := prop.Export(conn, Path, prop.Map{Interface: s.propMap(v)})
	if err != nil {
		return nil, fmt.Errorf("export properties: %w", err)
	}
	s.props = props
	if err := conn.Export(methods{s}, Path, Interface); err != nil {
		return nil, fmt.Errorf("export methods: %w", err)
	}
	if err := conn.Export(introspect.Introspectable(introspectXML()), Path, "org.freedesktop.DBus.Introspectable"); err != nil {
		return nil, fmt.Errorf("export introspection: %w", err)
	}
	return s, nil
}

// introspectXML is the contract plus the standard interfaces every object has.
func introspectXML() string {
	body := interfaceXML[strings.Index(interfaceXML, "<node>")+len("<node>"):]
	std := introspect.IntrospectDataString + prop.IntrospectDataString +
		`  <interface name="org.freedesktop.DBus.Peer"><method name="Ping"/><method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method></interface>` + "\n"
	return introspect.IntrospectDeclarationString + "<node>\n" + std + body
}

// RequestName takes the well-known name; it fails if someone else has it.
func (s *Server) RequestName() error {
	reply, err := s.conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request %s: %w", BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("request %s: the name is owned by another process", BusName)
	}
	return nil
}

func usec(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMicro())
}

func (s *Server) values(v daemon.View) map[string]any {
	st := v.State
	changes := []change{}
	var pending uint32
	kernel := false
	if p := st.Pending(); p != nil {
		pending = uint32(p.Snapshot)
		kernel = p.KernelChanged
		for _, c := range p.Changes {
			changes = append(changes, change{c.Name, c.Old, c.New, c.Kind})
		}
	}
	bads := []bad{}
	for _, b := range st.Bad() {
		bads = append(bads, bad{b.ID, b.Summary()})
	}
	held, reason, until := false, "", time.Time{}
	if h := st.Hold(); h != nil {
		held, reason, until = true, h.Reason, h.Until
	}
	plan, checks, track := st.Plan(), st.Checks(), st.Track()
	next := plan.At
	if st.Phase() != state.Pending && st.Phase() != state.Rebooting {
		next = time.Time{}
	}
	return map[string]any{
		"Phase":            string(st.Phase()),
		"Strategy":         v.Strategy,
		"BootedSnapshot":   uint32(v.Booted),
		"PendingSnapshot":  pending,
		"LastGoodSnapshot": uint32(track.LastGood),
		"PendingChanges":   changes,
		"KernelChanged":    kernel,
		"NextReboot":       usec(next),
		"NextRebootReason": plan.Reason,
		"LastCheck":        usec(checks.Last),
		"LastCheckResult":  checks.Result,
		"LastSuccess":      usec(track.LastSuccess),
		"NextCheck":        usec(checks.Next),
		"Held":             held,
		"HoldReason":       reason,
		"HoldUntil":        usec(until),
		"BadUpdates":       bads,
		"LastError":        track.LastError,
		"ConfigError":      v.ConfigError,
		"RestartNeeded":    append([]string{}, v.Settings.RestartNeeded...),
	}
}

// change and bad are the struct members of PendingChanges a(ssss) and
// BadUpdates a(ss).
type change struct{ Name, Old, New, Kind string }
type bad struct{ ID, Summary string }

func (s *Server) propMap(v daemon.View) map[string]*prop.Prop {
	m := map[string]*prop.Prop{}
	for name, val := range s.values(v) {
		m[name] = &prop.Prop{Value: val, Writable: false, Emit: prop.EmitTrue}
	}
	return m
}

// Changed publishes a new view: properties (PropertiesChanged for what
// changed) and PhaseChanged when the phase moved.
func (s *Server) Changed(v daemon.View, phaseChanged bool) {
	if s.props == nil {
		return
	}
	for name, val := range s.values(v) {
		if cur, err := s.props.Get(Interface, name); err == nil && equalVariant(cur, val) {
			continue
		}
		s.props.SetMust(Interface, name, val)
	}
	p := v.State.Phase()
	phase := string(p)
	s.mu.Lock()
	moved := phase != s.lastPhase
	s.lastPhase = phase
	s.mu.Unlock()
	if moved {
		detail := v.State.Checks().Result
		if p == state.Pending || p == state.Rebooting {
			detail = v.State.Plan().Reason
		}
		if e := v.State.Track().LastError; e != "" && (p == state.RollingBack || p == state.Idle) {
			detail = e
		}
		_ = s.conn.Emit(Path, Interface+".PhaseChanged", phase, detail)
	}
}

func equalVariant(cur dbus.Variant, nv any) bool {
	a, err1 := json.Marshal(cur.Value())
	b, err2 := json.Marshal(nv)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// Progress forwards one line of package manager output.
func (s *Server) Progress(line string) {
	_ = s.conn.Emit(Path, Interface+".Progress", line)
}

// authorize lets root and members of AdminGroup change state. The bus
// policy says the same; this is the second lock on the door.
func (s *Server) authorize(sender dbus.Sender) *dbus.Error {
	var uid uint32
	if err := s.conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid); err != nil {
		return dbus.NewError(errkind.AccessDenied.DBusName(), []any{"cannot identify the caller: " + err.Error()})
	}
	if uid == 0 || inAdminGroup(uid) {
		return nil
	}
	return dbus.NewError(errkind.AccessDenied.DBusName(), []any{fmt.Sprintf("uid %d may not change updates: run as root or as a member of %s", uid, AdminGroup)})
}

func inAdminGroup(uid uint32) bool {
	g, err := user.LookupGroup(AdminGroup)
	if err != nil {
		return false
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	return err == nil && slices.Contains(ids, g.Gid)
}

// dbusError maps the daemon's errors to the API's error names, by kind.
func dbusError(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	return dbus.NewError(errkind.DBusName(err), []any{err.Error()})
}

// methods holds the exported methods (godbus exports every method of the
// value, so they live on their own type).
type methods struct{ s *Server }

func (m methods) Check(sender dbus.Sender) (uint32, *dbus.Error) {
	if e := m.s.authorize(sender); e != nil {
		return 0, e
	}
	n, err := m.s.b.Check(m.s.ctx)
	if errors.Is(err, errkind.NothingToDo) {
		return 0, nil // "no updates" is an answer here, not an error
	}
	return uint32(n), dbusError(err)
}

func (m methods) Apply(sender dbus.Sender) (uint32, *dbus.Error) {
	if e := m.s.authorize(sender); e != nil {
		return 0, e
	}
	n, err := m.s.b.Apply(m.s.ctx)
	return uint32(n), dbusError(err)
}

func (m methods) Reboot(sender dbus.Sender, when string) (uint64, *dbus.Error) {
	if e := m.s.authorize(sender); e != nil {
		return 0, e
	}
	at, err := m.s.b.Reboot(m.s.ctx, when)
	return usec(at), dbusError(err)
}

func (m methods) CancelReboot(sender dbus.Sender) *dbus.Error {
	if e := m.s.authorize(sender); e != nil {
		return e
	}
	return dbusError(m.s.b.CancelReboot(m.s.ctx))
}

func (m methods) Rollback(sender dbus.Sender, n uint32, when string) (uint32, *dbus.Error) {
	if e := m.s.authorize(sender); e != nil {
		return 0, e
	}
	c, err := m.s.b.Rollback(m.s.ctx, int(n), when)
	return uint32(c), dbusError(err)
}

func (m methods) Hold(sender dbus.Sender, reason string, until uint64) *dbus.Error {
	if e := m.s.authorize(sender); e != nil {
		return e
	}
	var t time.Time
	if until != 0 {
		t = time.UnixMicro(int64(until))
	}
	return dbusError(m.s.b.Hold(m.s.ctx, reason, t))
}

func (m methods) Unhold(sender dbus.Sender) *dbus.Error {
	if e := m.s.authorize(sender); e != nil {
		return e
	}
	return dbusError(m.s.b.Unhold(m.s.ctx))
}

func (m methods) ClearBad(sender dbus.Sender, id string) *dbus.Error {
	if e := m.s.authorize(sender); e != nil {
		return e
	}
	return dbusError(m.s.b.ClearBad(m.s.ctx, id))
}

func (m methods) Reload(sender dbus.Sender) *dbus.Error {
	if e := m.s.authorize(sender); e != nil {
		return e
	}
	if m.s.reload == nil {
		return dbusError(errors.New("reload is not supported"))
	}
	return dbusError(m.s.reload(m.s.ctx))
}

func (m methods) History(limit uint32) (string, *dbus.Error) {
	recs, err := m.s.b.History(int(limit))
	if err != nil {
		return "", dbusError(err)
	}
	b, err := json.Marshal(recs)
	return string(b), dbusError(err)
}

func (m methods) Snapshots() (string, *dbus.Error) {
	list, err := m.s.b.Snapshots(m.s.ctx)
	if err != nil {
		return "", dbusError(err)
	}
	if list == nil {
		list = []snapshot.Snapshot{}
	}
	b, err := json.Marshal(list)
	return string(b), dbusError(err)
}

var errNoContainers = fmt.Errorf("%w: container support is off (containers.enabled = false)", errkind.Refused)

func (m methods) containerJSON(sender dbus.Sender, auth bool, call func(Containers) (any, error)) (string, *dbus.Error) {
	if auth {
		if e := m.s.authorize(sender); e != nil {
			return "", e
		}
	}
	if m.s.containers == nil {
		return "", dbusError(errNoContainers)
	}
	v, err := call(m.s.containers)
	if err != nil {
		return "", dbusError(err)
	}
	b, err := json.Marshal(v)
	return string(b), dbusError(err)
}

func (m methods) ContainerUpgrade(sender dbus.Sender, name, image string, force bool) (string, *dbus.Error) {
	return m.containerJSON(sender, true, func(c Containers) (any, error) { return c.Upgrade(m.s.ctx, name, image, force) })
}

func (m methods) ContainerRollback(sender dbus.Sender, name string) (string, *dbus.Error) {
	return m.containerJSON(sender, true, func(c Containers) (any, error) { return c.Rollback(m.s.ctx, name) })
}

func (m methods) ContainerPrune(sender dbus.Sender, name string) (string, *dbus.Error) {
	return m.containerJSON(sender, true, func(c Containers) (any, error) { return c.Prune(m.s.ctx, name) })
}

func (m methods) ContainerCheck(sender dbus.Sender, names []string, refresh bool) (string, *dbus.Error) {
	return m.containerJSON(sender, true, func(c Containers) (any, error) { return c.Check(m.s.ctx, names, refresh) })
}

func (m methods) ContainerPatch(sender dbus.Sender, name string, dryRun, securityOnly bool) (string, *dbus.Error) {
	return m.containerJSON(sender, true, func(c Containers) (any, error) { return c.Patch(m.s.ctx, name, dryRun, securityOnly) })
}

func (m methods) Containers(sender dbus.Sender) (string, *dbus.Error) {
	return m.containerJSON(sender, false, func(c Containers) (any, error) { return c.Report(m.s.ctx) })
}
