package vm

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"
)

// qmpEvents speaks just enough QMP (QEMU's JSON monitor protocol) to learn
// why QEMU shut down: it answers the greeting, enters command mode and then
// only reads events.
type qmpEvents struct {
	dec  *json.Decoder
	conn net.Conn
}

// qmpMessage is any line QEMU sends: the greeting, a reply or an event.
type qmpMessage struct {
	QMP    *json.RawMessage `json:"QMP"`
	Return *json.RawMessage `json:"return"`
	Error  *struct {
		Desc string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
	Data  struct {
		Guest  bool   `json:"guest"`
		Reason string `json:"reason"`
	} `json:"data"`
}

// qmpHandshake reads the greeting and negotiates capabilities; QEMU sends
// no events before that.
func qmpHandshake(conn net.Conn, limit time.Duration) (*qmpEvents, error) {
	conn.SetDeadline(time.Now().Add(limit))
	defer conn.SetDeadline(time.Time{})
	q := &qmpEvents{dec: json.NewDecoder(conn), conn: conn}
	var m qmpMessage
	if err := q.dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("vm: qmp greeting: %w", err)
	}
	if m.QMP == nil {
		return nil, fmt.Errorf("vm: qmp greeting: not a QMP greeting")
	}
	if _, err := io.WriteString(conn, `{"execute":"qmp_capabilities"}`+"\n"); err != nil {
		return nil, fmt.Errorf("vm: qmp: %w", err)
	}
	for {
		m = qmpMessage{}
		if err := q.dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("vm: qmp capabilities: %w", err)
		}
		switch {
		case m.Error != nil:
			return nil, fmt.Errorf("vm: qmp capabilities: %s", m.Error.Desc)
		case m.Return != nil:
			return q, nil
		}
	}
}

// shutdownReason reads events until QEMU closes the connection (it exits)
// and returns the reason of the last SHUTDOWN event: "guest-reset" when the
// guest rebooted under -no-reboot, "guest-shutdown" for a power-off, "" when
// QEMU ended without one (a signal, a crash).
func (q *qmpEvents) shutdownReason() string {
	reason := ""
	for {
		var m qmpMessage
		if err := q.dec.Decode(&m); err != nil {
			return reason
		}
		if m.Event == "SHUTDOWN" {
			reason = m.Data.Reason
		}
	}
}
