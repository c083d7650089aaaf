package vm

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeQMP plays QEMU's side of a QMP session over a pipe: the greeting,
// the reply to qmp_capabilities, then the given lines, then it hangs up.
func fakeQMP(t *testing.T, srv net.Conn, capReply string, lines ...string) {
	t.Helper()
	go func() {
		defer srv.Close()
		srv.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}` + "\r\n"))
		cmd, err := bufio.NewReader(srv).ReadString('\n')
		if err != nil || !strings.Contains(cmd, `"qmp_capabilities"`) {
			t.Errorf("client sent %q, %v; want qmp_capabilities", cmd, err)
			return
		}
		srv.Write([]byte(capReply + "\r\n"))
		for _, l := range lines {
			srv.Write([]byte(l + "\r\n"))
		}
	}()
}

func TestQMPShutdownReason(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		want   string
	}{
		{"guest reboot under -no-reboot", []string{
			`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NIC_RX_FILTER_CHANGED", "data": {"path": "/machine/peripheral-anon/device[0]/virtio-backend"}}`,
			`{"timestamp": {"seconds": 3, "microseconds": 4}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}`,
		}, "guest-reset"},
		{"power-off", []string{
			`{"timestamp": {"seconds": 3, "microseconds": 4}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}`,
		}, "guest-shutdown"},
		{"signal", []string{
			`{"timestamp": {"seconds": 3, "microseconds": 4}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}`,
		}, "host-signal"},
		{"gone without an event", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, srv := net.Pipe()
			defer cli.Close()
			fakeQMP(t, srv, `{"return": {}}`, tt.events...)
			q, err := qmpHandshake(cli, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.shutdownReason(); got != tt.want {
				t.Errorf("reason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestQMPHandshakeFails(t *testing.T) {
	t.Run("refused capabilities", func(t *testing.T) {
		cli, srv := net.Pipe()
		defer cli.Close()
		fakeQMP(t, srv, `{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete"}}`)
		if _, err := qmpHandshake(cli, 5*time.Second); err == nil || !strings.Contains(err.Error(), "already complete") {
			t.Errorf("err = %v, want QEMU's description", err)
		}
	})
	t.Run("not QMP", func(t *testing.T) {
		cli, srv := net.Pipe()
		defer cli.Close()
		go func() { srv.Write([]byte(`{"hello": 1}` + "\n")); srv.Close() }()
		if _, err := qmpHandshake(cli, 5*time.Second); err == nil {
			t.Error("a non-QMP greeting was accepted")
		}
	})
	t.Run("silent", func(t *testing.T) {
		cli, srv := net.Pipe()
		defer cli.Close()
		defer srv.Close()
		if _, err := qmpHandshake(cli, 50*time.Millisecond); err == nil {
			t.Error("a silent peer was accepted")
		}
	})
}

func TestSaysRestart(t *testing.T) {
	for line, want := range map[string]bool{
		"[  299.711439] reboot: machine restart":         true,
		"[  299.711226] reboot: Restarting system":       true,
		"[  299.697796] systemd-shutdown[1]: Rebooting.": false,
		"[   12.0] reboot: Power down":                   false,
		"BdsDxe: starting Boot0001":                      false,
	} {
		if got := saysRestart(line); got != want {
			t.Errorf("saysRestart(%q) = %v, want %v", line, got, want)
		}
	}
}
