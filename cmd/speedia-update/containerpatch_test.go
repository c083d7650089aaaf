package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/speedia/host/updater/errkind"
)

const patchStatus = `[{"name":"web","id":"a1","image":"localhost/debian-web:1","running":true,
"os":{"id":"debian","version_id":"12","codename":"bookworm"},"manager":"apt","patchable":true,"policy":"security",
"pending":[{"name":"openssl","old":"3.0.19-1~deb12u2","new":"3.0.22-1~deb12u2","security":true,"source":"bookworm-security"}],
"security":1,"checked":true,"last":{"at":"2026-12-01T02:10:00Z","step":"done","updates":3}},
{"name":"cache","id":"b2","image":"localhost/busybox","running":true,"patchable":false,
"reason":"no known package manager: not patchable","policy":"security","pending":[],"security":0,"checked":false},
{"name":"old","id":"c3","image":"localhost/debian-web:1","running":false,"manager":"apt","patchable":true,
"reason":"stopped: skipped (start it to check or patch it)","policy":"off","pending":[],"security":0,"checked":false}]`

func TestCLIContainerCheckAndStatus(t *testing.T) {
	srv := startFake(t, "")
	srv.Reply("ContainerCheck", patchStatus)
	r := runCLI(t, "container", "check", "web")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if c := lastCall(t, srv); c.Method != "ContainerCheck" || !reflect.DeepEqual(c.Args, []any{[]string{"web"}, true}) {
		t.Errorf("called %s%v", c.Method, c.Args)
	}
	want := "Asking the package managers inside the containers…\n" +
		"CONTAINER  OS         MANAGER  POLICY    PENDING         LAST PATCH             NOTE\n" +
		"web        debian 12  apt      security  1 (1 security)  2026-12-01 03:10 done  -\n" +
		"cache      -          -        security  -               -                      no known package manager: not patchable\n" +
		"old        -          apt      off       -               -                      stopped: skipped (start it to check or patch it)\n" +
		"\nweb:\n" +
		"  openssl  3.0.19-1~deb12u2 -> 3.0.22-1~deb12u2  bookworm-security (security)\n"
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = runCLI(t, "container", "status", "--json")
	if c := lastCall(t, srv); r.code != 0 || c.Method != "ContainerCheck" || !reflect.DeepEqual(c.Args, []any{[]string{}, false}) {
		t.Errorf("status: exit %d, called %s%v", r.code, c.Method, c.Args)
	}
	if !strings.Contains(r.stdout, `"reason": "no known package manager: not patchable"`) {
		t.Errorf("status --json: %s", r.stdout)
	}
}

func TestCLIContainerPatch(t *testing.T) {
	srv := startFake(t, "")
	srv.Reply("ContainerCheck", patchStatus)
	var patched []string
	srv.Handle("ContainerPatch", func(args ...any) ([]any, *dbus.Error) {
		name := args[0].(string)
		patched = append(patched, name)
		if name == "web" && args[1] == false {
			return nil, dbus.NewError(errkind.Bad.DBusName(), []any{"web: this package set (ab12) failed before"})
		}
		return []any{`{"name":"` + name + `","step":"done","set_id":"ab12","image":"localhost/speedia-patch-web:x",` +
			`"updates":[{"name":"openssl","old":"1","new":"2","security":true}],"dry_run":` + map[bool]string{true: "true", false: "false"}[args[1].(bool)] + `}`}, nil
	})
	r := runCLI(t, "container", "patch", "web", "--dry-run", "--security-only")
	if r.code != 0 || !reflect.DeepEqual(lastCall(t, srv).Args, []any{"web", true, true}) {
		t.Fatalf("dry run: exit %d %s, args %v", r.code, r.stderr, lastCall(t, srv).Args)
	}
	if want := "web: 1 updates would be installed (package set ab12):\n  openssl  1 -> 2  - (security)\n"; r.stdout != want {
		t.Errorf("dry run stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	// --all: only the running patchable containers; a bad set exits 6.
	patched = nil
	r = runCLI(t, "container", "patch", "--all")
	if r.code != 6 || !reflect.DeepEqual(patched, []string{"web"}) {
		t.Errorf("--all: exit %d, patched %v; want 6 and web only", r.code, patched)
	}
	for _, args := range [][]string{{"container", "patch"}, {"container", "patch", "web", "--all"}, {"container", "patch", ""}} {
		if r := runCLI(t, args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2", args, r.code)
		}
	}
}

func TestCLIContainerRollbackOfAPatch(t *testing.T) {
	srv := startFake(t, "")
	srv.Reply("ContainerRollback", `{"patch":{"name":"web","at":"2026-12-01T02:10:00Z","step":"restored","set_id":"ab12",`+
		`"image":"localhost/speedia-patch-web:20261201t021000z","updates":[{"name":"openssl","old":"1","new":"2"}],"aside":{"dir":"/var/lib/speedia/containers/patches/web/x-after"}}}`)
	r := runCLI(t, "container", "rollback", "web")
	want := "web runs its rollback point localhost/speedia-patch-web:20261201t021000z again (the patch of 1 packages is undone), with its data from 2026-12-01 03:10.\n" +
		"The data written since is kept in /var/lib/speedia/containers/patches/web/x-after.\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
}
