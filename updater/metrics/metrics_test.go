package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// families parses what the handler serves, as Prometheus would.
func families(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return families(t, rec.Body)
}

// series names one series: the family and its labels as "k=v,k=v" (sorted
// as the exposition sorts them).
func value(fams map[string]*dto.MetricFamily, name, labels string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(ls, ",") != labels {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	check := time.Date(2025, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	reboot := time.Date(2025, 3, 2, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		set  func(m *Metrics)
		want map[string]float64 // "family{labels}" -> value
		gone []string           // series that must not exist
	}{
		{
			name: "fresh",
			set:  func(m *Metrics) {},
			want: map[string]float64{
				"speedia_update_phase{phase=idle}":                1,
				"speedia_update_phase{phase=checking}":            0,
				"speedia_update_phase{phase=staging}":             0,
				"speedia_update_phase{phase=pending}":             0,
				"speedia_update_phase{phase=rebooting}":           0,
				"speedia_update_phase{phase=verifying}":           0,
				"speedia_update_phase{phase=rolling-back}":        0,
				"speedia_update_info{strategy=,version=1.2.3}":    1,
				"speedia_update_pending{}":                        0,
				"speedia_update_pending_snapshot{}":               0,
				"speedia_update_last_check_timestamp_seconds{}":   0,
				"speedia_update_last_check_success{}":             0,
				"speedia_update_last_success_timestamp_seconds{}": 0,
				"speedia_update_next_reboot_timestamp_seconds{}":  0,
				"speedia_update_reboots_total{}":                  0,
				"speedia_update_rollbacks_total{}":                0,
			},
		},
		{
			name: "staged and scheduled",
			set: func(m *Metrics) {
				m.SetPhase("pending")
				m.SetStrategy("periodic")
				m.SetPending(7)
				m.SetLastCheck(check, true)
				m.SetLastSuccess(check.Add(-time.Hour))
				m.SetNextReboot(reboot)
				m.SetTotals(3, 1)
			},
			want: map[string]float64{
				"speedia_update_phase{phase=idle}":                     0,
				"speedia_update_phase{phase=pending}":                  1,
				"speedia_update_info{strategy=periodic,version=1.2.3}": 1,
				"speedia_update_pending{}":                             1,
				"speedia_update_pending_snapshot{}":                    7,
				"speedia_update_last_check_timestamp_seconds{}":        float64(check.Unix()) + 0.5,
				"speedia_update_last_check_success{}":                  1,
				"speedia_update_last_success_timestamp_seconds{}":      float64(check.Unix()-3600) + 0.5,
				"speedia_update_next_reboot_timestamp_seconds{}":       float64(reboot.Unix()),
				"speedia_update_reboots_total{}":                       3,
				"speedia_update_rollbacks_total{}":                     1,
			},
			gone: []string{"speedia_update_info{strategy=,version=1.2.3}"},
		},
		{
			name: "cleared again",
			set: func(m *Metrics) {
				m.SetPhase("staging")
				m.SetPending(7)
				m.SetNextReboot(reboot)
				m.SetLastCheck(check, true)
				m.SetPhase("idle")
				m.SetPending(0)
				m.SetNextReboot(time.Time{})
				m.SetLastCheck(check.Add(time.Hour), false)
				m.SetStrategy("manual")
				m.SetStrategy("immediate")
			},
			want: map[string]float64{
				"speedia_update_phase{phase=idle}":                      1,
				"speedia_update_phase{phase=staging}":                   0,
				"speedia_update_pending{}":                              0,
				"speedia_update_pending_snapshot{}":                     0,
				"speedia_update_next_reboot_timestamp_seconds{}":        0,
				"speedia_update_last_check_timestamp_seconds{}":         float64(check.Unix()+3600) + 0.5,
				"speedia_update_last_check_success{}":                   0,
				"speedia_update_info{strategy=immediate,version=1.2.3}": 1,
			},
			gone: []string{"speedia_update_info{strategy=manual,version=1.2.3}"},
		},
		{
			name: "containers",
			set: func(m *Metrics) {
				m.SetContainerPatches([]ContainerPatch{{Name: "gone", Pending: 1}})
				m.SetContainerPatches([]ContainerPatch{{Name: "web", Pending: 5, Security: 2, LastPatched: check}, {Name: "db"}})
				m.SetContainerPatch(ContainerPatch{Name: "db", Pending: 1, Security: 1})
				m.ContainerPatchFailed("db")
				m.ContainerPatchFailed("db")
			},
			want: map[string]float64{
				"speedia_container_updates_pending{container=web,security=true}":  2,
				"speedia_container_updates_pending{container=web,security=false}": 3,
				"speedia_container_updates_pending{container=db,security=true}":   1,
				"speedia_container_updates_pending{container=db,security=false}":  0,
				"speedia_container_last_patch_timestamp_seconds{container=web}":   float64(check.Unix()) + 0.5,
				"speedia_container_last_patch_timestamp_seconds{container=db}":    0,
				"speedia_container_patch_failures_total{container=db}":            2,
			},
			gone: []string{"speedia_container_updates_pending{container=gone,security=false}"},
		},
		{
			name: "unknown phase",
			set:  func(m *Metrics) { m.SetPhase("frobbing") },
			want: map[string]float64{
				"speedia_update_phase{phase=frobbing}": 1,
				"speedia_update_phase{phase=idle}":     0,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New("1.2.3")
			tc.set(m)
			fams := scrape(t, m)
			for key, want := range tc.want {
				name, labels, _ := strings.Cut(strings.TrimSuffix(key, "}"), "{")
				got, ok := value(fams, name, labels)
				if !ok {
					t.Errorf("%s: missing", key)
				} else if got != want {
					t.Errorf("%s = %v, want %v", key, got, want)
				}
			}
			for _, key := range tc.gone {
				name, labels, _ := strings.Cut(strings.TrimSuffix(key, "}"), "{")
				if _, ok := value(fams, name, labels); ok {
					t.Errorf("%s: still exposed", key)
				}
			}
			if n := len(fams["speedia_update_info"].GetMetric()); n != 1 {
				t.Errorf("%d speedia_update_info series, want 1", n)
			}
			var ones int
			for _, s := range fams["speedia_update_phase"].GetMetric() {
				if s.GetGauge().GetValue() == 1 {
					ones++
				}
			}
			if ones != 1 {
				t.Errorf("%d phases are 1, want exactly 1", ones)
			}
		})
	}
}

func TestTypesAndRegistry(t *testing.T) {
	fams := scrape(t, New("x"))
	for name, typ := range map[string]dto.MetricType{
		"speedia_update_reboots_total":   dto.MetricType_COUNTER,
		"speedia_update_rollbacks_total": dto.MetricType_COUNTER,
		"speedia_update_phase":           dto.MetricType_GAUGE,
		"speedia_update_pending":         dto.MetricType_GAUGE,
	} {
		if got := fams[name].GetType(); got != typ {
			t.Errorf("%s: type %v, want %v", name, got, typ)
		}
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
}

// What another package registers globally stays out of the scrape.
func TestOwnRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "speedia_test_global_total", Help: "x"})
	prometheus.MustRegister(c)
	defer prometheus.Unregister(c)
	if fams := scrape(t, New("x")); fams["speedia_test_global_total"] != nil {
		t.Error("a globally registered metric is exposed")
	}
}

func TestLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(New("x").Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "speedia_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func get(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return families(t, resp.Body)
}

func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

func TestListenAndServeOn(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	ls, err := Listen(sock, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", st.Mode())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(sock), ".*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	m := New("1.0")
	m.SetPending(42)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeOn(ctx, ls...) }()

	fams := get(t, unixClient(sock), "http://localhost/metrics")
	if v, _ := value(fams, "speedia_update_pending_snapshot", ""); v != 42 {
		t.Errorf("over the socket: pending snapshot %v, want 42", v)
	}
	fams = get(t, http.DefaultClient, "http://"+ls[1].Addr().String()+"/metrics")
	if v, _ := value(fams, "speedia_update_pending_snapshot", ""); v != 42 {
		t.Errorf("over TCP: pending snapshot %v, want 42", v)
	}
	resp, err := unixClient(sock).Get("http://localhost/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s, want 404", resp.Status)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeOn after cancel: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
	if _, err := net.Dial("tcp", ls[1].Addr().String()); err == nil {
		t.Error("TCP still listening after cancel")
	}
}

func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

// A stale socket (its server was SIGKILLed) is replaced.
func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	staleSocket(t, sock)
	ls, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New("1.0").ServeOn(ctx, ls...) }()
	get(t, unixClient(sock), "http://localhost/metrics")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Serve is Listen and ServeOn: with ctx already done it listens (replacing
// the stale socket), stops at once and removes its socket.
func TestServeStops(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	staleSocket(t, sock)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New("1.0").Serve(ctx, sock, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
	if err := New("1.0").Serve(ctx, sock+"/x", ""); err == nil {
		t.Error("Serve on an impossible path returned nil")
	}
}

func TestListenRefuses(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	l, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o644)

	for _, tc := range []struct {
		name, socket, tcp string
		is                error
		keep              string // must still exist afterwards
	}{
		{"live server", live, "", ErrSocketInUse, live},
		{"regular file", file, "", ErrNotSocket, file},
		{"no directory", filepath.Join(dir, "missing", "m.sock"), "", os.ErrNotExist, ""},
		{"bad tcp", filepath.Join(dir, "ok.sock"), "127.0.0.1:http-not-a-port", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := Listen(tc.socket, tc.tcp)
			if err == nil {
				for _, l := range ls {
					l.Close()
				}
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.keep != "" {
				if _, err := os.Lstat(tc.keep); err != nil {
					t.Errorf("%s removed: %v", tc.keep, err)
				}
			}
			if tc.tcp != "" {
				if _, err := os.Lstat(tc.socket); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket left after the TCP listener failed: %v", err)
				}
			}
		})
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Errorf("the live server's socket broke: %v", err)
	} else {
		c.Close()
	}
}

func TestServeOnListenerError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := New("x").ServeOn(context.Background(), l); err == nil {
		t.Fatal("ServeOn on a closed listener returned nil")
	}
}
