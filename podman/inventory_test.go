package podman

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"go.podman.io/image/v5/manifest"
)

type ctr struct {
	name, id, pod string
	infra         bool
	labels        map[string]string
	deps          []string
	netmode       string
	health        []string
}

func inspect(cs ...ctr) []*define.InspectContainerData {
	var out []*define.InspectContainerData
	for _, c := range cs {
		d := &define.InspectContainerData{
			Name: c.name, ID: c.id, Pod: c.pod, IsInfra: c.infra, Dependencies: c.deps,
			Config:     &define.InspectContainerConfig{Labels: c.labels, StopTimeout: 10},
			HostConfig: &define.InspectContainerHostConfig{NetworkMode: c.netmode},
		}
		if c.health != nil {
			d.Config.Healthcheck = &manifest.Schema2HealthConfig{Test: c.health}
		}
		out = append(out, d)
	}
	return out
}

func after(cs []Container) map[string][]string {
	m := map[string][]string{}
	for _, c := range cs {
		m[c.Name] = c.After
	}
	return m
}

func TestDescribeDependencies(t *testing.T) {
	tests := []struct {
		name  string
		in    []ctr
		want  map[string][]string
		notes []string
	}{
		{
			name: "label, requires and network container",
			in: []ctr{
				{name: "db", id: "1"},
				{name: "cache", id: "2"},
				{name: "web", id: "3", labels: map[string]string{LabelAfter: " db , cache"}},
				{name: "worker", id: "4", deps: []string{"1"}, netmode: "container:2"},
			},
			want: map[string][]string{"db": nil, "cache": nil, "web": {"cache", "db"}, "worker": {"cache", "db"}},
		},
		{
			name: "pod members after the infra container",
			in: []ctr{
				{name: "p-infra", id: "i", pod: "P", infra: true},
				{name: "app", id: "a", pod: "P"},
				{name: "other", id: "o", pod: "Q"},
			},
			want: map[string][]string{"p-infra": nil, "app": {"p-infra"}, "other": nil},
		},
		{
			name: "compose depends_on within the project",
			in: []ctr{
				{name: "site_db_1", id: "1", labels: map[string]string{labelComposeProject: "site", labelComposeService: "db"}},
				{name: "other_db_1", id: "2", labels: map[string]string{labelComposeProject: "other", labelComposeService: "db"}},
				{name: "site_web_1", id: "3", labels: map[string]string{labelComposeProject: "site", labelComposeService: "web",
					labelComposeDependsOn: "db:service_healthy:false,mail:service_started:false"}},
			},
			want:  map[string][]string{"site_db_1": nil, "other_db_1": nil, "site_web_1": {"site_db_1"}},
			notes: []string{`site_web_1: compose depends_on "mail" has no running container; ignored`},
		},
		{
			name:  "unknown names and self are ignored with a note",
			in:    []ctr{{name: "web", id: "1", labels: map[string]string{LabelAfter: "web,gone"}}},
			want:  map[string][]string{"web": nil},
			notes: []string{`web: label speedia.after names "gone", which is not running; ignored`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, notes := describe(inspect(tt.in...))
			if got := after(cs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(notes, tt.notes) {
				t.Errorf("notes = %q, want %q", notes, tt.notes)
			}
		})
	}
}

func TestDescribeFields(t *testing.T) {
	cs, notes := describe(inspect(
		ctr{name: "a", id: "1", health: []string{"CMD-SHELL", "true"}, labels: map[string]string{
			LabelCritical: "True", LabelSettle: "7s", LabelSystemdUnit: "a.service"}},
		ctr{name: "b", id: "2", health: []string{"NONE"}, labels: map[string]string{LabelSettle: "soon"}},
	))
	a, b := cs[0], cs[1]
	if !a.Health || !a.Critical || a.Settle != 7*time.Second || a.Unit != "a.service" || a.StopTimeout != 10 {
		t.Errorf("a = %+v", a)
	}
	if b.Health || b.Critical || b.Settle != 0 {
		t.Errorf("b = %+v", b)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `speedia.settle="soon"`) {
		t.Errorf("notes = %q", notes)
	}
}

func names(levels [][]Container) [][]string {
	var out [][]string
	for _, l := range levels {
		var ns []string
		for _, c := range l {
			ns = append(ns, c.Name)
		}
		out = append(out, ns)
	}
	return out
}

func TestLevels(t *testing.T) {
	c := func(name string, after ...string) Container { return Container{Name: name, After: after} }
	tests := []struct {
		name  string
		in    []Container
		want  [][]string
		notes int
	}{
		{"empty", nil, [][]string{}, 0},
		{"independent share a level", []Container{c("a"), c("b"), c("c")}, [][]string{{"a", "b", "c"}}, 0},
		{"chain and diamond", []Container{c("web", "app", "cache"), c("app", "db"), c("cache", "db"), c("db"), c("solo")},
			[][]string{{"db", "solo"}, {"app", "cache"}, {"web"}}, 0},
		{"longest path decides", []Container{c("z", "a", "c"), c("c", "b"), c("b", "a"), c("a")},
			[][]string{{"a"}, {"b"}, {"c"}, {"z"}}, 0},
		{"unknown dependency is no edge", []Container{c("a", "ghost")}, [][]string{{"a"}}, 0},
		{"cycle goes last, the rest keeps its order", []Container{c("x", "y"), c("y", "x"), c("db"), c("web", "db")},
			[][]string{{"db"}, {"web"}, {"x", "y"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			levels, notes := Levels(tt.in)
			got := names(levels)
			if got == nil {
				got = [][]string{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("levels = %v, want %v", got, tt.want)
			}
			if len(notes) != tt.notes {
				t.Errorf("notes = %q", notes)
			}
		})
	}
}

func TestFirstTCPPort(t *testing.T) {
	b := map[string][]define.InspectHostPort{
		"53/udp":   {{HostPort: "53"}},
		"8443/tcp": {{HostIP: "0.0.0.0", HostPort: "8443"}},
		"8080/tcp": {{HostIP: "192.0.2.7", HostPort: "18080"}, {HostIP: "", HostPort: "80"}},
	}
	if got := firstTCPPort(b); got != "127.0.0.1:80" {
		t.Errorf("firstTCPPort = %q, want the lowest TCP host port on loopback", got)
	}
	if got := firstTCPPort(map[string][]define.InspectHostPort{"8080/tcp": {{HostIP: "192.0.2.7", HostPort: "18080"}}}); got != "192.0.2.7:18080" {
		t.Errorf("a bound address: %q", got)
	}
	if got := firstTCPPort(nil); got != "" {
		t.Errorf("no ports: %q", got)
	}
	if !settles(Container{}) || settles(Container{Port: "127.0.0.1:80"}) || !settles(Container{Port: "x:1", Settle: time.Second}) || settles(Container{Health: true}) {
		t.Error("settles: wrong rule")
	}
}
