package podman

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/speedia/host/updater/errkind"
)

func TestClassifyLayer(t *testing.T) {
	changes := []change{
		{"/srv", changeModified},   // parent of a user file
		{"/srv/site", changeAdded}, // a directory the user made
		{"/srv/site/index.php", changeAdded},
		{"/etc", changeModified},
		{"/etc/php.ini", changeModified}, // an edited configuration file
		{"/etc/old.conf", changeDeleted}, // deletions lose nothing
		{"/var/lib/dpkg/status", changeModified},
		{"/var/lib/dpkg/info/x.list", changeAdded},
		{"/var/cache/apt/pkgcache.bin", changeAdded},
		{"/etc/ld.so.cache", changeModified},
		{"/tmp/sess_1", changeAdded},
		{"/run/.containerenv", changeAdded},
		{"/data", changeAdded},                  // a volume's mount point
		{"/var/lib/mysql/ibdata1", changeAdded}, // under a volume (never in a real diff, but safe)
		{"/var/lib", changeModified},            // holds the volume at /var/lib/mysql
		{"var/www/x", changeAdded},              // relative paths are rooted
	}
	got := classifyLayer(changes, []string{"/data", "/var/lib/mysql/"})
	want := LayerFiles{User: 4, Churn: 6, Paths: []string{"C /etc/php.ini", "A /srv/site", "A /srv/site/index.php", "A /var/www/x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	if lf := classifyLayer(nil, nil); lf.User != 0 || lf.Churn != 0 || lf.Paths != nil {
		t.Errorf("no changes: %+v", lf)
	}
	var many []change
	for _, c := range "abcdefghijklmnop" {
		many = append(many, change{"/srv/" + string(c), changeAdded})
	}
	lf := classifyLayer(many, nil)
	if lf.User != 16 || len(lf.Paths) != maxLayerPaths {
		t.Errorf("many: %+v", lf)
	}
	err := layerRefusal("web", lf)
	if !errors.Is(err, errkind.Refused) || !strings.Contains(err.Error(), "and 6 more") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("refusal: %v", err)
	}
}

func TestKeptLayerFilesNeverExpire(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	for _, tt := range []struct {
		r    Record
		want bool
	}{
		{Record{KeepUntil: past, Kept: "web-speedia-old-1"}, true},
		{Record{KeepUntil: now.Add(time.Hour), Kept: "web-speedia-old-1"}, false},
		{Record{KeepUntil: past, Kept: "web-speedia-old-1", Layer: LayerFiles{User: 3}}, false}, // until pruned
		{Record{KeepUntil: past, Layer: LayerFiles{User: 3}}, true},                             // nothing kept holds them
	} {
		if got := tt.r.expired(now); got != tt.want {
			t.Errorf("%+v: expired = %v, want %v", tt.r, got, tt.want)
		}
	}
}
