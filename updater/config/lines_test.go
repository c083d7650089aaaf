package config

import (
	"reflect"
	"testing"
)

func TestKeyLines(t *testing.T) {
	src := "\ufeff# comment with = and [brackets]\n" + // 1
		"[check]  # trailing\n" + // 2
		"interval = \"24h\" # x = 1\n" + // 3
		"  jitter='1h'\n" + // 4
		"\n" + // 5
		"[ reboot ]\n" + // 6
		"wall_message = \"\"\"\n" + // 7
		"line [two] = \"\n" + // 8
		"three\"\"\"\"\n" + // 9
		"blackout = [\n" + // 10
		"  '2026-12-24', # a comment, with a comma\n" + // 11
		"  \"2026-12-31..2027-01-01\",\n" + // 12
		"]\n" + // 13
		"respect_users = true\r\n" + // 14
		"\"quoted.key\" = 1\n" + // 15
		"[[reboot.window]]\n" + // 16
		"days = \"Sun\"\n" + // 17
		"[[reboot.window]]\n" + // 18
		"start = '''\n" + // 19
		"x'''\n" + // 20
		"length = \"2h\"\n" + // 21
		"[reboot.window.sub]\n" + // 22
		"a.b = 1979-05-27 07:32:00Z\n" + // 23
		"[health]\n" + // 24
		"critical_units = [\"a.service\", \"b\\\"].service\", [1, 2],\n" + // 25
		"  { x = 1, y = { z = 2 } }]\n" + // 26
		"inline = { days = \"Sun\", start = \"03:00\" }\n" + // 27
		"snapshots.keep = 3\n" // 28
	want := map[string]int{
		"check": 2, "check.interval": 3, "check.jitter": 4,
		"reboot": 6, "reboot.wall_message": 7,
		"reboot.blackout": 10, "reboot.blackout[0]": 11, "reboot.blackout[1]": 12,
		"reboot.respect_users": 14, `reboot."quoted.key"`: 15,
		"reboot.window": 16, "reboot.window[0]": 16, "reboot.window[0].days": 17,
		"reboot.window[1]": 18, "reboot.window[1].start": 19, "reboot.window[1].length": 21,
		"reboot.window[1].sub": 22, "reboot.window[1].sub.a": 23, "reboot.window[1].sub.a.b": 23,
		"health": 24, "health.critical_units": 25, "health.critical_units[0]": 25, "health.critical_units[1]": 25,
		"health.critical_units[2]": 25, "health.critical_units[2][0]": 25, "health.critical_units[2][1]": 25,
		"health.critical_units[3]": 26, "health.critical_units[3].x": 26, "health.critical_units[3].y": 26,
		"health.critical_units[3].y.z": 26,
		"health.inline":                27, "health.inline.days": 27, "health.inline.start": 27,
		"health.snapshots": 28, "health.snapshots.keep": 28,
	}
	if got := keyLines(src); !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: line %d, want %d", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s: line %d", k, v)
			}
		}
	}
}

func TestLineOfFallsBackToParent(t *testing.T) {
	lines := map[string]int{"reboot.window": 4, "reboot.window[1]": 9}
	for key, want := range map[string]int{
		"reboot.window[1].start": 9, "reboot.window[0].start": 4, "reboot.window": 4, "check.jitter": 0,
	} {
		if got := lineOf(lines, key); got != want {
			t.Errorf("lineOf(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestParentKey(t *testing.T) {
	for k, want := range map[string]string{
		"a.b[2].c": "a.b[2]", "a.b[2]": "a.b", "a": "", `a."x.y"`: "a", `"x.y"`: "", "a[0][1]": "a[0]",
	} {
		if got := parentKey(k); got != want {
			t.Errorf("parentKey(%q) = %q, want %q", k, got, want)
		}
	}
}
