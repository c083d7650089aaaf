package config

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestDocument(t *testing.T) {
	src := "name = \"x\"\n" + // 1
		"[[users]]\n" + // 2
		"name = \"a\"\n" + // 3
		"[[users]]\n" + // 4
		"name = \"b\"\n" + // 5
		"[update.reboot]\n" + // 6
		"strategy = \"manual\"\n" // 7
	doc, line, err := Document("host.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if doc["name"] != "x" {
		t.Errorf("doc = %v", doc)
	}
	for key, want := range map[string]int{
		"name": 1, "users[0]": 2, "users[0].name": 3, "users[1].name": 5, "users[1].shell": 4,
		"update": 6, "update.reboot.strategy": 7, "update.check.interval": 6, "nothing": 0,
	} {
		if got := line(key); got != want {
			t.Errorf("line(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestDocumentSyntaxError(t *testing.T) {
	_, _, err := Document("host.toml", []byte("name = \"x\"\nversion = \n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	var pe toml.ParseError
	if e.File != "host.toml" || e.Line != 2 || e.Column == 0 || !errors.As(err, &pe) {
		t.Errorf("err = %+v (%q), want host.toml line 2 with a column, wrapping toml.ParseError", e, e)
	}
}

func TestSuggestExported(t *testing.T) {
	if got := Suggest("hostnme", []string{"name", "hostname"}); got != "hostname" {
		t.Errorf("Suggest = %q", got)
	}
	if got := Suggest("colour", []string{"name", "hostname"}); got != "" {
		t.Errorf("Suggest = %q, want none", got)
	}
}

func TestSection(t *testing.T) {
	// The embedding file: its [update] table starts on line 10.
	lines := map[string]int{
		"update": 10, "update.reboot": 11, "update.reboot.strategy": 12, "update.reboot.stratgy": 13,
		"update.reboot.window": 14, "update.reboot.window[0]": 14, "update.reboot.window[0].dayz": 15,
		"update.check": 17, "update.check.interval": 18,
	}
	line := func(k string) int {
		for ; k != ""; k = parentKey(k) {
			if n, ok := lines[k]; ok {
				return n
			}
		}
		return 0
	}
	t.Run("valid", func(t *testing.T) {
		c, errs := Section("host.toml", []byte("[reboot]\nstrategy = \"manual\"\n[check]\ninterval = \"12h\"\n"), "update", line)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		want := Default()
		want.Reboot.Strategy = StrategyManual
		want.Check.Interval = 12 * time.Hour
		if !reflect.DeepEqual(c, want) {
			t.Errorf("config = %+v, want %+v", c, want)
		}
	})
	t.Run("problems", func(t *testing.T) {
		doc := "[check]\ninterval = \"1s\"\n" +
			"[reboot]\nstratgy = \"manual\"\nstrategy = \"sometimes\"\n" +
			"[[reboot.window]]\ndayz = \"Sun\"\nstart = \"03:00\"\nlength = \"1h\"\n" +
			"[bogus]\n"
		c, errs := Section("host.toml", []byte(doc), "update", line)
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		want := map[string]bool{
			`host.toml:18: update.check.interval: must be at least 1m, not "1s"`:                                          true,
			`host.toml:13: update.reboot.stratgy: unknown key; did you mean "update.reboot.strategy"?`:                    true,
			`host.toml:12: update.reboot.strategy: "sometimes" is not a strategy (use "periodic", "immediate", "manual")`: true,
			`host.toml:15: update.reboot.window[0].dayz: unknown key; did you mean "update.reboot.window[0].days"?`:       true,
			`host.toml:14: update.reboot.window[0].days: missing (a window needs days, start and length)`:                 true,
			`host.toml:10: update.bogus: unknown key`:                                                                     true,
		}
		for _, g := range got {
			if !want[g] {
				t.Errorf("unexpected problem %s", g)
			}
			delete(want, g)
		}
		for w := range want {
			t.Errorf("missing problem %s", w)
		}
		if !reflect.DeepEqual(c, Config{}) {
			t.Errorf("config on problems = %+v, want zero", c)
		}
	})
}

func TestPrefixSuggestion(t *testing.T) {
	for in, want := range map[string]string{
		`unknown key; did you mean "reboot.delay"?`: `unknown key; did you mean "update.reboot.delay"?`,
		`unknown key`:               `unknown key`,
		`must be a string`:          `must be a string`,
		`unknown key; did you mean`: `unknown key; did you mean`,
	} {
		if got := prefixSuggestion(in, "update"); got != want {
			t.Errorf("prefixSuggestion(%q) = %q, want %q", in, got, want)
		}
	}
}
