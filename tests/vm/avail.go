package vm

import (
	"os/exec"
	"strings"
)

// tools are the commands the e2e tier needs, with the Debian package of each.
var tools = [][2]string{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"qemu-img", "qemu-utils"},
	{"ssh", "openssh-client"},
	{"ssh-keygen", "openssh-client"},
}

// Available says whether this machine can run VMs: QEMU, qemu-img, OVMF and
// ssh. When it cannot, the reason names what is missing and its package.
func Available() (bool, string) {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			missing = append(missing, t[0]+" (package "+t[1]+")")
		}
	}
	if _, err := FindFirmware(DefaultOVMFDir); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		return false, "missing: " + strings.Join(missing, "; ")
	}
	return true, ""
}
