// Command testdaemon stands in for speedia-updated in the units integration
// test: installed as /usr/bin/speedia-updated, it runs under the real unit
// ("daemon"), owns org.speedia.Update1 with a few of its members, serves
// metrics on /run/speedia/metrics.sock and keeps a child process, so the test
// can check the bus policy, activation, restart and kill semantics. "watch"
// is the unprivileged client that waits for a signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/speedia/host/updater/metrics"
)

const (
	name  = "org.speedia.Update1"
	path  = dbus.ObjectPath("/org/speedia/Update1")
	iface = "org.speedia.Update1"
)

// ChildPIDFile is where the daemon writes its child's PID.
const ChildPIDFile = "/run/speedia/test-child.pid"

type server struct {
	conn    *dbus.Conn
	reloads int
}

func (s *server) Apply() (uint32, *dbus.Error) { return 7, nil }

// History emits PhaseChanged, so an unprivileged caller can see a signal.
func (s *server) History(limit uint32) (string, *dbus.Error) {
	s.conn.Emit(path, iface+".PhaseChanged", "idle", "history")
	return "[]", nil
}

func (s *server) Snapshots() (string, *dbus.Error) { return "[]", nil }

func (s *server) Reload() *dbus.Error {
	s.reloads++
	os.WriteFile("/run/speedia/test-reloads", []byte(strconv.Itoa(s.reloads)), 0o644)
	return nil
}

func serve() error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return err
	}
	s := &server{conn: conn}
	if err := conn.Export(s, path, iface); err != nil {
		return err
	}
	props, err := prop.Export(conn, path, prop.Map{iface: {
		"Phase": {Value: "idle", Emit: prop.EmitFalse},
	}})
	if err != nil {
		return err
	}
	node := &introspect.Node{Name: string(path), Interfaces: []introspect.Interface{
		introspect.IntrospectData, prop.IntrospectData,
		{Name: iface, Methods: introspect.Methods(s), Properties: props.Introspection(iface)},
	}}
	if err := conn.Export(introspect.NewIntrospectable(node), path, "org.freedesktop.DBus.Introspectable"); err != nil {
		return err
	}
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request name: %w", err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("request name: reply %d", reply)
	}
	child := exec.Command("sleep", "infinity")
	if err := child.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(ChildPIDFile, []byte(strconv.Itoa(child.Process.Pid)), 0o644); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errs := make(chan error, 1)
	go func() { errs <- metrics.New("test").Serve(ctx, "/run/speedia/metrics.sock", "") }()
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return <-errs
	case err := <-errs:
		return err
	}
}

func watch() error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return err
	}
	if err := conn.AddMatchSignal(dbus.WithMatchInterface(iface), dbus.WithMatchMember("PhaseChanged")); err != nil {
		return err
	}
	ch := make(chan *dbus.Signal, 8)
	conn.Signal(ch)
	var out string
	if err := conn.Object(name, path).Call(iface+".History", 0, uint32(0)).Store(&out); err != nil {
		return err
	}
	select {
	case sig := <-ch:
		fmt.Println(sig.Name, sig.Body)
		return nil
	case <-time.After(20 * time.Second):
		return errors.New("no PhaseChanged signal")
	}
}

func main() {
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "daemon":
		err = serve()
	case len(os.Args) == 2 && os.Args[1] == "watch":
		err = watch()
	default:
		err = errors.New("usage: testdaemon daemon|watch")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdaemon:", err)
		os.Exit(1)
	}
}
