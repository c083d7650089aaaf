// Package clienttest runs a private dbus-daemon and a fake speedia-updated
// on it, for tests of the client and the CLI. The fake implements the
// contract in updater/dbusapi/org.speedia.Update1.xml: its methods are
// checked against the XML at start, its properties are made from it, and
// every signal and property value it sends is checked against it.
package clienttest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// StartBus starts a dbus-daemon with a permissive session-like policy plus
// policy (extra <policy> elements, may be empty) and returns its address.
// The daemon is killed by PID when the test ends. The test is skipped when
// dbus-daemon is not installed.
func StartBus(t testing.TB, policy string) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon not installed (apt-get install dbus-daemon)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, filepath.Join(dir, "bus"), policy)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--print-address", "--nofork", "--nopidfile")
	var stderr bytes.Buffer // its complaints (fd limits as non-root) only matter on failure
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID: it is our child
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("dbus-daemon: %s", stderr.String())
		}
	})
	// The address line comes once the daemon listens; EOF means it died.
	line, err := bufio.NewReader(out).ReadString('\n')
	addr := strings.TrimSpace(line)
	if err != nil || addr == "" {
		t.Fatalf("dbus-daemon printed no address (%v)", err)
	}
	return addr
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  %s
</busconfig>
`

// DenyPolicy is a bus policy that refuses every caller the methods named,
// as the system bus policy refuses non-admins.
func DenyPolicy(methods ...string) string {
	var b strings.Builder
	b.WriteString(`<policy context="mandatory">`)
	for _, m := range methods {
		fmt.Fprintf(&b, `<deny send_destination="org.speedia.Update1" send_interface="org.speedia.Update1" send_member=%q/>`, m)
	}
	b.WriteString(`</policy>`)
	return b.String()
}
