package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func FuzzLoad(f *testing.F) {
	if data, err := os.ReadFile(shipped); err == nil {
		f.Add(string(data))
	}
	for _, s := range []string{
		"",
		"[check\n",
		"[[reboot.window]]\ndays = \"Mon..Fri\"\nstart = \"25:00\"\nlength = \"0s\"\n",
		"[reboot]\nwindow = [{days = \"Sun\", start = \"03:00\", length = \"2h\"}, 1]\nstrategy = \"periodic\"\n",
		"reboot.window = []\n",
		"[reboot]\nblackout = [\"2026-12-31..2027-01-01\", 2026-12-24]\ntimezone = \"../../etc/passwd\"\n",
		"a = \"\"\"\nb = 1\n\"\"\"\n[health]\nmax_attempts = 99999999999\n",
		"[[reboot.window]]\n[[reboot.window.x]]\n[reboot.window.x.y]\nz = 1\n",
		"\"check\" = { 'interval' = \"1h\", \"jit\\u0074er\" = \"1x\" }\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := load(Default(), []source{{name: "/f.toml", data: []byte(doc)}})
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted a config that does not validate: %v", verr)
			}
			// What SaveGood writes reads back as the same config.
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(document(c)); err != nil {
				t.Fatal(err)
			}
			back, err := load(Config{}, []source{{name: "/good", data: buf.Bytes()}})
			if err != nil || !reflect.DeepEqual(back, c) {
				t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, back, c)
			}
			return
		}
		problems := Problems(err)
		if len(problems) == 0 {
			t.Fatalf("error without *Error: %v", err)
		}
		lines := strings.Count(doc, "\n") + 1
		for _, e := range problems {
			if e.File != "/f.toml" || e.Line < 0 || e.Line > lines || e.Msg == "" {
				t.Fatalf("bad problem %#v", e)
			}
			// A key that came from the file has a line in it.
			if e.Key != "" && e.Line == 0 {
				t.Fatalf("no line for %#v", e)
			}
		}
	})
}
