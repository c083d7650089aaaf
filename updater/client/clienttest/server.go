package clienttest

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

const (
	busName = "org.speedia.Update1"
	path    = dbus.ObjectPath("/org/speedia/Update1")
	iface   = "org.speedia.Update1"
)

// Call is one method call the fake received.
type Call struct {
	Method string // e.g. "Hold", or "Properties.GetAll"
	Args   []any
}

// Handler answers one method call: the out arguments, or an error.
type Handler func(args ...any) ([]any, *dbus.Error)

// Server is a fake speedia-updated that records its calls. Unless told
// otherwise a method succeeds with zero values and every property is zero.
type Server struct {
	t        testing.TB
	conn     *dbus.Conn
	contract introspect.Interface

	mu       sync.Mutex
	calls    []Call
	props    map[string]dbus.Variant
	handlers map[string]Handler
}

// NewServer connects to the bus at address, exports the fake and takes the
// daemon's bus name. It fails the test if the fake does not match the XML.
func NewServer(t testing.TB, address string) *Server {
	t.Helper()
	xmlText, contract := loadContract(t)
	s := &Server{t: t, contract: contract, props: map[string]dbus.Variant{}, handlers: map[string]Handler{}}
	if err := checkMethods(reflect.TypeOf(&api{}), contract); err != nil {
		t.Fatalf("fake server drifted from the contract: %v", err)
	}
	for _, p := range contract.Properties {
		v, err := zeroOf(p.Type)
		if err != nil {
			t.Fatalf("property %s: %v", p.Name, err)
		}
		s.props[p.Name] = v
	}
	conn, err := dbus.Connect(address)
	if err != nil {
		t.Fatalf("fake server: connect: %v", err)
	}
	s.conn = conn
	t.Cleanup(func() { conn.Close() })
	for name, v := range map[string]any{
		iface:                                 &api{s},
		"org.freedesktop.DBus.Properties":     &properties{s},
		"org.freedesktop.DBus.Introspectable": introspect.Introspectable(xmlText),
	} {
		if err := conn.Export(v, path, name); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("fake server: request name: %v %v", reply, err)
	}
	return s
}

// Stop releases the bus name and disconnects, as a stopped daemon would.
func (s *Server) Stop() {
	_, _ = s.conn.ReleaseName(busName)
	s.conn.Close()
}

// Calls returns the method calls so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// SetProperty sets property name; its type must match the contract.
func (s *Server) SetProperty(name string, value any) {
	s.t.Helper()
	v := dbus.MakeVariant(value)
	for _, p := range s.contract.Properties {
		if p.Name == name {
			if v.Signature().String() != p.Type {
				s.t.Fatalf("property %s: %s is not the contract's %s", name, v.Signature(), p.Type)
			}
			s.mu.Lock()
			s.props[name] = v
			s.mu.Unlock()
			return
		}
	}
	s.t.Fatalf("property %s is not in the contract", name)
}

// Handle makes h answer method.
func (s *Server) Handle(method string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[method] = h
}

// Reply makes method answer with out.
func (s *Server) Reply(method string, out ...any) {
	s.Handle(method, func(...any) ([]any, *dbus.Error) { return out, nil })
}

// Fail makes method fail with the D-Bus error name and message.
func (s *Server) Fail(method, name, message string) {
	s.Handle(method, func(...any) ([]any, *dbus.Error) { return nil, dbus.NewError(name, []any{message}) })
}

// Emit sends the signal member of the contract; its arguments must match.
func (s *Server) Emit(member string, args ...any) {
	s.t.Helper()
	var sig string
	found := false
	for _, sg := range s.contract.Signals {
		if sg.Name == member {
			found = true
			for _, a := range sg.Args {
				sig += a.Type
			}
		}
	}
	if got := dbus.SignatureOf(args...).String(); !found || got != sig {
		s.t.Fatalf("signal %s(%s) is not the contract's (%s)", member, got, sig)
	}
	if err := s.conn.Emit(path, iface+"."+member, args...); err != nil {
		s.t.Errorf("emit %s: %v", member, err)
	}
}

func (s *Server) record(method string, args ...any) Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: method, Args: args})
	return s.handlers[method]
}

// call records a call and returns the handler's answer, or zero values of
// the out types when no handler is set.
func (s *Server) call(method string, outs []any, args ...any) *dbus.Error {
	h := s.record(method, args...)
	if h == nil {
		return nil
	}
	vals, derr := h(args...)
	if derr != nil {
		return derr
	}
	if len(vals) != len(outs) {
		s.t.Errorf("handler of %s returned %d values, want %d", method, len(vals), len(outs))
		return dbus.MakeFailedError(fmt.Errorf("fake: bad handler"))
	}
	for i, v := range vals {
		dst := reflect.ValueOf(outs[i]).Elem()
		if reflect.TypeOf(v) != dst.Type() {
			s.t.Errorf("handler of %s: value %d is %T, want %s", method, i, v, dst.Type())
			return dbus.MakeFailedError(fmt.Errorf("fake: bad handler"))
		}
		dst.Set(reflect.ValueOf(v))
	}
	return nil
}

// api is org.speedia.Update1 as the XML declares it.
type api struct{ s *Server }

func (a *api) Check() (n uint32, err *dbus.Error) {
	err = a.s.call("Check", []any{&n})
	return
}

func (a *api) Apply() (n uint32, err *dbus.Error) {
	err = a.s.call("Apply", []any{&n})
	return
}

func (a *api) Reboot(when string) (at uint64, err *dbus.Error) {
	err = a.s.call("Reboot", []any{&at}, when)
	return
}

func (a *api) CancelReboot() *dbus.Error { return a.s.call("CancelReboot", nil) }

func (a *api) Rollback(n uint32, when string) (chosen uint32, err *dbus.Error) {
	err = a.s.call("Rollback", []any{&chosen}, n, when)
	return
}

func (a *api) Hold(reason string, until uint64) *dbus.Error {
	return a.s.call("Hold", nil, reason, until)
}

func (a *api) Unhold() *dbus.Error { return a.s.call("Unhold", nil) }

func (a *api) ClearBad(id string) *dbus.Error { return a.s.call("ClearBad", nil, id) }

func (a *api) Reload() *dbus.Error { return a.s.call("Reload", nil) }

func (a *api) History(limit uint32) (js string, err *dbus.Error) {
	js = "[]"
	err = a.s.call("History", []any{&js}, limit)
	return
}

func (a *api) Snapshots() (js string, err *dbus.Error) {
	js = "[]"
	err = a.s.call("Snapshots", []any{&js})
	return
}

func (a *api) ContainerUpgrade(name, image string, force bool) (js string, err *dbus.Error) {
	js = "{}"
	err = a.s.call("ContainerUpgrade", []any{&js}, name, image, force)
	return
}

func (a *api) ContainerRollback(name string) (js string, err *dbus.Error) {
	js = "{}"
	err = a.s.call("ContainerRollback", []any{&js}, name)
	return
}

func (a *api) ContainerPrune(name string) (js string, err *dbus.Error) {
	js = "{}"
	err = a.s.call("ContainerPrune", []any{&js}, name)
	return
}

func (a *api) ContainerCheck(names []string, refresh bool) (js string, err *dbus.Error) {
	js = "[]"
	err = a.s.call("ContainerCheck", []any{&js}, names, refresh)
	return
}

func (a *api) ContainerPatch(name string, dryRun, securityOnly bool) (js string, err *dbus.Error) {
	js = "{}"
	err = a.s.call("ContainerPatch", []any{&js}, name, dryRun, securityOnly)
	return
}

func (a *api) Containers() (js string, err *dbus.Error) {
	js = `{"upgrades":[]}`
	err = a.s.call("Containers", []any{&js})
	return
}

// properties is org.freedesktop.DBus.Properties, read-only.
type properties struct{ s *Server }

func (p *properties) Get(in, name string) (dbus.Variant, *dbus.Error) {
	p.s.record("Properties.Get", in, name)
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	v, ok := p.s.props[name]
	if in != iface || !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{name})
	}
	return v, nil
}

func (p *properties) GetAll(in string) (map[string]dbus.Variant, *dbus.Error) {
	if h := p.s.record("Properties.GetAll", in); h != nil {
		if _, err := h(in); err != nil {
			return nil, err
		}
	}
	if in != iface {
		return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{in})
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make(map[string]dbus.Variant, len(p.s.props))
	for k, v := range p.s.props {
		out[k] = v
	}
	return out, nil
}

func (p *properties) Set(string, string, dbus.Variant) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.PropertyReadOnly", nil)
}

// ContractPath is the XML file the fake serves and checks itself against.
func ContractPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "dbusapi", "org.speedia.Update1.xml")
}

func loadContract(t testing.TB) (string, introspect.Interface) {
	t.Helper()
	data, err := os.ReadFile(ContractPath())
	if err != nil {
		t.Fatalf("read the contract: %v", err)
	}
	var node introspect.Node
	if err := xml.Unmarshal(data, &node); err != nil {
		t.Fatalf("parse the contract: %v", err)
	}
	for _, in := range node.Interfaces {
		if in.Name == iface {
			return string(data), in
		}
	}
	t.Fatalf("the contract has no interface %s", iface)
	return "", introspect.Interface{}
}

// checkMethods compares the D-Bus methods of typ (those returning
// *dbus.Error last) with the contract's, both ways.
func checkMethods(typ reflect.Type, contract introspect.Interface) error {
	errType := reflect.TypeOf((*dbus.Error)(nil))
	have := map[string]string{}
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		ft := m.Type
		if ft.NumOut() == 0 || ft.Out(ft.NumOut()-1) != errType {
			continue
		}
		var in, out string
		for j := 1; j < ft.NumIn(); j++ { // 0 is the receiver
			in += dbus.SignatureOfType(ft.In(j)).String()
		}
		for j := 0; j < ft.NumOut()-1; j++ {
			out += dbus.SignatureOfType(ft.Out(j)).String()
		}
		have[m.Name] = in + "->" + out
	}
	for _, m := range contract.Methods {
		var in, out string
		for _, a := range m.Args {
			if a.Direction == "out" {
				out += a.Type
			} else {
				in += a.Type
			}
		}
		want := in + "->" + out
		got, ok := have[m.Name]
		if !ok {
			return fmt.Errorf("method %s missing", m.Name)
		}
		if got != want {
			return fmt.Errorf("method %s is %s, contract says %s", m.Name, got, want)
		}
		delete(have, m.Name)
	}
	for name := range have {
		return fmt.Errorf("method %s is not in the contract", name)
	}
	return nil
}

// zeroOf is a variant holding the zero value of a D-Bus type the contract
// uses; a new type must be added here.
func zeroOf(sig string) (dbus.Variant, error) {
	zero := map[string]any{
		"s":       "",
		"u":       uint32(0),
		"b":       false,
		"t":       uint64(0),
		"a(ssss)": []struct{ A, B, C, D string }{},
		"a(ss)":   []struct{ A, B string }{},
		"as":      []string{},
	}
	v, ok := zero[sig]
	if !ok {
		return dbus.Variant{}, fmt.Errorf("no zero value for type %s", sig)
	}
	return dbus.MakeVariant(v), nil
}
