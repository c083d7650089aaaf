package config

import (
	"os"
	"strings"
	"testing"
)

func TestNeedRestart(t *testing.T) {
	a := Default()
	b := a
	b.Reboot.WallMessage = "changed"
	b.Containers.Settle = 3 * a.Containers.Settle
	if got := NeedRestart(a, b); len(got) != 0 {
		t.Fatalf("reloadable keys reported: %v", got)
	}
	b.Metrics.Listen = "127.0.0.1:9100"
	b.Containers.Enabled = !a.Containers.Enabled
	if got := strings.Join(NeedRestart(a, b), ","); got != "containers.enabled,metrics.listen" {
		t.Fatalf("got %q", got)
	}
}

// Each restart key is a key of the schema, has a reader, and is named in
// docs/config.md.
func TestRestartKeysKnown(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(restartValue) != len(RestartKeys) {
		t.Fatalf("%d readers for %d keys", len(restartValue), len(RestartKeys))
	}
	for _, k := range RestartKeys {
		section, key, _ := strings.Cut(k, ".")
		if schema[section][key] == nil {
			t.Errorf("%s is not a config key", k)
		}
		if restartValue[k] == nil {
			t.Errorf("%s has no reader", k)
		}
	}
	// The doc's list of restart keys is this list.
	_, section, _ := strings.Cut(string(doc), "<!-- restart keys:")
	section, _, _ = strings.Cut(section, "\n\n")
	var listed []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "- ") {
			continue
		}
		names, _, _ := strings.Cut(line, ":")
		for _, f := range strings.Split(names, ",") {
			listed = append(listed, strings.Trim(f, " -`"))
		}
	}
	if strings.Join(listed, ",") != strings.Join(RestartKeys, ",") {
		t.Errorf("docs/config.md lists %v as needing a restart, config.RestartKeys is %v", listed, RestartKeys)
	}
}
