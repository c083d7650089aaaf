package daemon

import (
	"fmt"
	"os"
)

// Markers are files other tools read to learn that a reboot is pending:
// /run/reboot-needed (transactional-update, MicroOS tools) and
// /var/run/reboot-required (Debian, kured).
type Markers struct {
	Paths []string
	set   *bool
}

// DefaultMarkers are the paths the ecosystem looks at.
var DefaultMarkers = []string{"/run/reboot-needed", "/var/run/reboot-required"}

// Set creates or removes every marker; only on a change.
func (m *Markers) Set(pending bool) {
	if m.set != nil && *m.set == pending {
		return
	}
	ok := true
	for _, p := range m.Paths {
		var err error
		if pending {
			err = os.WriteFile(p, []byte(fmt.Sprintln("*** System restart required ***")), 0o644)
		} else if err = os.Remove(p); os.IsNotExist(err) {
			err = nil
		}
		if err != nil {
			ok = false
		}
	}
	if ok {
		m.set = &pending
	}
}
