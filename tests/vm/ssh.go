package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/speedia/host/updater/run"
)

// sshArgs is the ssh command line for one command in the guest. The guest's
// host key changes with every image, so it is neither checked nor stored;
// -F /dev/null keeps the caller's ssh config out of it.
func sshArgs(port int, key, user, cmd string) []string {
	return []string{
		"-F", "/dev/null",
		"-i", key,
		"-p", strconv.Itoa(port),
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=10", // also bounds the banner exchange
		"-o", "ServerAliveInterval=5",
		"-o", "ServerAliveCountMax=6",
		"--", // the command below is never read as ssh options
		user + "@127.0.0.1",
		cmd,
	}
}

// SSH runs cmd (a remote shell command line) in the guest as user with the
// private key file key and returns its stdout. A failure names the exit code
// and carries the tail of stderr; 255 is ssh's own failure.
func (v *VM) SSH(ctx context.Context, key, user, cmd string) (string, error) {
	out, err := run.Exec{}.Run(ctx, run.Cmd{Name: "ssh", Args: sshArgs(v.port, key, user, cmd)})
	return string(out), err
}

// WaitSSH retries a trivial command until it succeeds, QEMU exits or ctx ends.
func (v *VM) WaitSSH(ctx context.Context, key, user string) error {
	var last error
	for {
		try, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := v.SSH(try, key, user, "true")
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("vm: wait for ssh: %w (last: %v)", ctx.Err(), last)
		case <-v.done:
			return fmt.Errorf("%w waiting for ssh (last: %v); serial tail:\n%s", ErrExited, last, v.SerialTail(10))
		case <-time.After(2 * time.Second):
		}
	}
}

// NewKey makes an ed25519 key pair without passphrase in dir and returns the
// private key's path and the public key as an authorized_keys line.
func NewKey(dir string) (private, publicLine string, err error) {
	private = filepath.Join(dir, "id_ed25519")
	_, err = run.Exec{}.Run(context.Background(), run.Cmd{Name: "ssh-keygen",
		Args: []string{"-t", "ed25519", "-N", "", "-q", "-C", "speedia-e2e", "-f", private}})
	if err != nil {
		return "", "", fmt.Errorf("vm: ssh key: %w", err)
	}
	pub, err := os.ReadFile(private + ".pub")
	if err != nil {
		return "", "", fmt.Errorf("vm: ssh key: %w", err)
	}
	return private, strings.TrimSpace(string(pub)), nil
}

// CopyIn writes the local file src to dst in the guest (through ssh's
// stdin, so the guest needs nothing but a shell) and syncs it.
func (v *VM) CopyIn(ctx context.Context, key, user, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("vm: copy in: %w", err)
	}
	defer f.Close()
	q := "'" + strings.ReplaceAll(dst, "'", `'\''`) + "'"
	cmd := exec.CommandContext(ctx, "ssh", sshArgs(v.port, key, user, "cat > "+q+".part && sync "+q+".part && mv "+q+".part "+q)...)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: copy %s to the guest's %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}
