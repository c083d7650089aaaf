package dbusapi

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/speedia/host/updater/errkind"
)

// The interface XML and updater/errkind agree: every error name the XML
// lists has a kind (or is Failed, the name of no kind), and every kind with
// a D-Bus name is in the XML.
func TestErrorNamesMatchTheXML(t *testing.T) {
	var names []string
	for _, m := range regexp.MustCompile(`org\.speedia\.Update1\.Error\.\{([^}]*)\}`).FindAllStringSubmatch(interfaceXML, -1) {
		for _, n := range regexp.MustCompile(`\w+`).FindAllString(m[1], -1) {
			names = append(names, "org.speedia.Update1.Error."+n)
		}
	}
	names = append(names, regexp.MustCompile(`org\.freedesktop\.DBus\.Error\.\w+`).FindAllString(interfaceXML, -1)...)
	if len(names) < 3 {
		t.Fatalf("found only %q in the XML", names)
	}
	for _, n := range names {
		if n != errkind.FailedName && errkind.FromDBusName(n) == nil {
			t.Errorf("%s in the XML has no kind in updater/errkind", n)
		}
	}
	if !slices.Contains(names, errkind.FailedName) {
		t.Errorf("%s is not in the XML", errkind.FailedName)
	}
	for _, k := range errkind.Kinds() {
		if k.DBusName() != "" && !slices.Contains(names, k.DBusName()) {
			t.Errorf("kind %q: %s is not in the XML", k, k.DBusName())
		}
	}
}

// dbusError names each kind as errkind does, and anything else Failed.
func TestDBusErrorByKind(t *testing.T) {
	for _, k := range errkind.Kinds() {
		want := k.DBusName()
		if want == "" {
			want = errkind.FailedName
		}
		err := fmt.Errorf("stage: %w", k)
		if got := dbusError(err); got.Name != want || got.Body[0] != err.Error() {
			t.Errorf("%v: %s %v, want %s", k, got.Name, got.Body, want)
		}
	}
	if got := dbusError(errors.New("boom")); got.Name != errkind.FailedName {
		t.Errorf("no kind: %s", got.Name)
	}
	if dbusError(nil) != nil {
		t.Error("nil is an error")
	}
}
