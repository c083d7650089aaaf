//go:build e2e

package vmhost

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/speedia/host/tests/vm"
)

// The product's promise on a booted VM: a kernel update staged, rebooted
// into and verified; an update that breaks the health gate rolled back by
// the VM itself; an update whose initrd cannot mount the root undone by
// boot counting. The narrative goes to stdout (make e2e runs this package
// with -v); QEMU's and the build's output go to DIR/log, and DIR is kept
// when the test fails.
func TestE2EUpdateCycle(t *testing.T) {
	if ok, why := vm.Available(); !ok {
		t.Skip(why)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: kept when the test fails. Its own directory, so two
	// runs on one machine cannot disturb each other.
	dir, err := os.MkdirTemp("", "speedia-e2e-cycle-")
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Minute)
	defer cancel()
	if err := Cycle(ctx, CycleOptions{Root: root, Dir: dir, Out: os.Stdout, Log: log}); err != nil {
		t.Fatalf("%v (QEMU's and the build's output: %s)", err, log.Name())
	}
	os.RemoveAll(dir)
}
