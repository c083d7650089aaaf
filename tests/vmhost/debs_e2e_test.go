//go:build e2e

package vmhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestE2EDebsFromDebian builds the updates the VM test offers from Debian's
// real archive, into SPEEDIA_VM_CACHE (a rerun reuses it), and serves them
// to apt.
func TestE2EDebsFromDebian(t *testing.T) {
	needTools(t, "dpkg-deb", "dpkg-scanpackages", "tar", "apt-get", "apt-cache")
	cache := os.Getenv("SPEEDIA_VM_CACHE")
	if cache == "" {
		cache = "/var/cache/speedia-test/vm"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	a := &Archive{Cache: cache, Log: testLog{t}}
	step := func(what string, t0 time.Time, files ...string) {
		var size int64
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				size += st.Size()
			}
		}
		t.Logf("%s: %s, %.1f MB", what, time.Since(t0).Round(time.Millisecond), float64(size)/1e6)
	}

	t0 := time.Now()
	kernel, release, err := KernelUpdate(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	step("KernelUpdate "+release, t0, kernel...)
	if !regexp.MustCompile(`^6\.\d+\.\d+\+deb12-amd64$`).MatchString(release) || len(kernel) != 2 {
		t.Errorf("kernel %s: %v", release, kernel)
	}
	if p := debField(t, kernel[0], "Package"); p != "linux-image-amd64" {
		t.Errorf("first kernel deb is %s", p)
	}
	if c := debContents(t, kernel[1]); !strings.Contains(c, " ./boot/vmlinuz-"+release+"\n") {
		t.Errorf("%s has no /boot/vmlinuz-%s", kernel[1], release)
	}

	t0 = time.Now()
	it, err := a.Find(ctx, []string{"bookworm"}, "initramfs-tools", "")
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := BrokenInitrd(ctx, a, it.Version)
	if err != nil {
		t.Fatal(err)
	}
	step("BrokenInitrd "+it.Version, t0, initrd)
	if v := debField(t, initrd, "Version"); v != it.Version+"+speedia1" {
		t.Errorf("initramfs-tools version %s", v)
	}
	if c := debContents(t, initrd); !regexp.MustCompile(`(?m)^-rwxr-xr-x root/root .* \.` + regexp.QuoteMeta(InitrdHook) + `$`).MatchString(c) {
		t.Errorf("hook missing:\n%s", c)
	}
	if s := debControlFile(t, initrd, "postinst"); !strings.Contains(s, "update-initramfs -u") {
		t.Errorf("postinst does not rebuild the initrd:\n%s", s)
	}

	t0 = time.Now()
	cr, err := a.Find(ctx, []string{"bookworm"}, "crun", "")
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := BrokenRuntime(ctx, a, cr.Version)
	if err != nil {
		t.Fatal(err)
	}
	step("BrokenRuntime "+cr.Version, t0, runtime)
	if v := debField(t, runtime, "Version"); v != cr.Version+"+speedia1" {
		t.Errorf("crun version %s", v)
	}
	script, err := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/bin/crun`, "sh", runtime).Output()
	if err != nil || string(script) != brokenCrun {
		t.Errorf("/usr/bin/crun in %s: %q, %v", runtime, script, err)
	}

	t0 = time.Now()
	bump, err := Bump(ctx, a, "crun", cr.Version, 2)
	if err != nil {
		t.Fatal(err)
	}
	step("Bump crun 2", t0, bump)
	if v := debField(t, bump, "Version"); v != cr.Version+"+speedia2" {
		t.Errorf("bumped crun version %s", v)
	}

	// All of it served to apt.
	r, url, _ := serveRepo(t)
	t0 = time.Now()
	all := append(append([]string{}, kernel...), initrd, runtime)
	if err := r.Publish(ctx, all...); err != nil {
		t.Fatal(err)
	}
	step("Publish", t0, all...)
	apt := newApt(t, url)
	apt.run("apt-get", "update")
	out := apt.run("apt-cache", "policy", "linux-image-amd64", "linux-image-"+release, "initramfs-tools", "crun")
	for _, want := range []string{"Candidate: " + it.Version + "+speedia1\n", "Candidate: " + cr.Version + "+speedia1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("apt-cache policy lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Candidate: (none)") {
		t.Errorf("apt-cache policy:\n%s", out)
	}
	t.Logf("cache %s: %s", cache, filepath.Join(cache, "built", recipe))
}
