package metrics

import (
	"math"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// scrape serves m.Handler once and parses the page with the Prometheus text
// parser, as a Prometheus server would read it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// scrapeRaw serves m.Handler once, from any goroutine (t.Fatal is for the
// test's own).
func scrapeRaw(m *Metrics) int {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.Len()
}

// series finds the one series of family name whose labels include want
// ("k=v" pairs), failing the test when there is none or several.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
	var found []*dto.Metric
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		found = append(found, m)
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0]
}

// value is the value of a counter, gauge or untyped series.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	m := series(t, fams, name, want...)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v is not a counter or gauge", name, want)
	return 0
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// checkHistogram compares a histogram series with its expected count, sum
// and cumulative bucket counts (upper bound -> count).
func checkHistogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, count uint64, sum float64, buckets map[float64]uint64, want ...string) {
	t.Helper()
	h := series(t, fams, name, want...).Histogram
	if h == nil {
		t.Fatalf("%s%v is not a histogram", name, want)
	}
	if h.GetSampleCount() != count || !near(h.GetSampleSum(), sum) {
		t.Errorf("%s%v: count %d sum %g, want %d and %g", name, want, h.GetSampleCount(), h.GetSampleSum(), count, sum)
	}
	seen := 0
	for _, b := range h.Bucket {
		if c, ok := buckets[b.GetUpperBound()]; ok {
			seen++
			if b.GetCumulativeCount() != c {
				t.Errorf("%s%v bucket le=%g: %d, want %d", name, want, b.GetUpperBound(), b.GetCumulativeCount(), c)
			}
		}
	}
	if seen != len(buckets) {
		t.Errorf("%s%v: %d of the %d expected buckets exist", name, want, seen, len(buckets))
	}
}

func newMetrics(t *testing.T, opts Options) *Metrics {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func twoLoops(engine string) loop.ServerInfo {
	return loop.ServerInfo{
		Engine: engine, Loops: 2, Capacity: 1000,
		Snapshot: func(i int) loop.LoopSnapshot {
			return loop.LoopSnapshot{Sockets: 3 + i, QueuedBytes: int64(1000 * (i + 1)), QueuedTasks: 7 * i}
		},
	}
}

// TestExposition drives every Observer method with known values and checks
// every resulting series in the parsed exposition.
func TestExposition(t *testing.T) {
	m := newMetrics(t, Options{})
	var o loop.Observer = m
	o.Started(twoLoops("epoll"))

	for range 3 {
		o.Accepted(0)
	}
	for range 2 {
		o.Accepted(1)
	}
	for r := range loop.NumRefuseReasons {
		for range int(r) + 1 {
			o.Refused(int(r)%2, r)
		}
	}
	o.Refused(0, loop.RefuseReason(200))
	o.HandshakeFailed(0, 400, 2*time.Millisecond)
	o.HandshakeFailed(1, 400, 4*time.Millisecond)
	o.HandshakeFailed(1, 0, 10*time.Second)
	o.HandshakeFailed(0, 299, time.Millisecond)
	o.HandshakeFailed(0, 429, 30*time.Second)
	o.Opened(0, 3*time.Millisecond)
	o.Opened(0, 3*time.Millisecond)
	o.Opened(1, 20*time.Millisecond)
	o.Closed(0, session.StatusNormal)
	o.Closed(1, 4001)
	o.Closed(0, 1006)
	o.Opened(1, 0)
	o.MessagesIn(0, 1, 5)
	o.MessagesIn(0, 10, 1000)
	o.MessagesIn(1, 2, 7)
	o.MessagesOut(1, 100, 6400)
	o.MessagesOut(0, 1, 0)
	o.Overflowed(0, session.OverflowDrop)
	o.Overflowed(1, session.OverflowDrop)
	o.Overflowed(1, session.OverflowClose1008)
	o.Overflowed(0, session.OverflowError)
	o.Overflowed(0, session.Overflow(99))
	o.LoopTick(0, 0, 5*time.Millisecond)
	o.LoopTick(0, 3*time.Millisecond, 10*time.Millisecond)
	o.LoopTick(1, 2*time.Second, time.Second)
	o.FanOut(0, 10, 40*time.Microsecond)
	o.FanOut(1, 0, 2*time.Millisecond)

	f := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wsloop_server_info", []string{"engine=epoll"}, 1},
		{"wsloop_server_loops", nil, 2},
		{"wsloop_server_capacity_connections", nil, 1000},
		{"wsloop_connections_accepted_total", []string{"loop=0"}, 3},
		{"wsloop_connections_accepted_total", []string{"loop=1"}, 2},
		{"wsloop_connections_refused_total", []string{"reason=capacity"}, 1},
		{"wsloop_connections_refused_total", []string{"reason=per_ip"}, 2},
		{"wsloop_connections_refused_total", []string{"reason=handshake_rate"}, 3},
		{"wsloop_connections_refused_total", []string{"reason=handshakes_in_progress"}, 4},
		{"wsloop_connections_refused_total", []string{"reason=shutting_down"}, 5},
		{"wsloop_connections_refused_total", []string{"reason=unknown"}, 1},
		{"wsloop_handshake_failures_total", []string{"status=400"}, 2},
		{"wsloop_handshake_failures_total", []string{"status=none"}, 1},
		{"wsloop_handshake_failures_total", []string{"status=other"}, 1},
		{"wsloop_handshake_failures_total", []string{"status=429"}, 1},
		{"wsloop_handshake_failures_total", []string{"status=404"}, 0},
		{"wsloop_connections_opened_total", []string{"loop=0"}, 2},
		{"wsloop_connections_opened_total", []string{"loop=1"}, 2},
		{"wsloop_connections_open", []string{"loop=0"}, 0},
		{"wsloop_connections_open", []string{"loop=1"}, 1},
		{"wsloop_connections_closed_total", []string{"code=1000"}, 1},
		{"wsloop_connections_closed_total", []string{"code=1006"}, 1},
		{"wsloop_connections_closed_total", []string{"code=4000-4999"}, 1},
		{"wsloop_connections_closed_total", []string{"code=1001"}, 0},
		{"wsloop_messages_received_total", []string{"loop=0"}, 11},
		{"wsloop_received_bytes_total", []string{"loop=0"}, 1005},
		{"wsloop_messages_received_total", []string{"loop=1"}, 2},
		{"wsloop_received_bytes_total", []string{"loop=1"}, 7},
		{"wsloop_messages_sent_total", []string{"loop=0"}, 1},
		{"wsloop_sent_bytes_total", []string{"loop=0"}, 0},
		{"wsloop_messages_sent_total", []string{"loop=1"}, 100},
		{"wsloop_sent_bytes_total", []string{"loop=1"}, 6400},
		{"wsloop_overflow_total", []string{"policy=drop"}, 2},
		{"wsloop_overflow_total", []string{"policy=close_1008"}, 1},
		{"wsloop_overflow_total", []string{"policy=close_1013"}, 0},
		{"wsloop_overflow_total", []string{"policy=error"}, 1},
		{"wsloop_overflow_total", []string{"policy=other"}, 1},
		{"wsloop_loop_busy_seconds_total", []string{"loop=0"}, 0.015},
		{"wsloop_loop_busy_seconds_total", []string{"loop=1"}, 1},
		{"wsloop_loop_sockets", []string{"loop=0"}, 3},
		{"wsloop_loop_sockets", []string{"loop=1"}, 4},
		{"wsloop_loop_queued_bytes", []string{"loop=0"}, 1000},
		{"wsloop_loop_queued_bytes", []string{"loop=1"}, 2000},
		{"wsloop_loop_queued_tasks", []string{"loop=0"}, 0},
		{"wsloop_loop_queued_tasks", []string{"loop=1"}, 7},
		{"wsloop_fanout_members_total", nil, 10},
	}
	for _, c := range checks {
		if got := value(t, f, c.name, c.labels...); !near(got, c.want) {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	checkHistogram(t, f, "wsloop_handshake_duration_seconds", 4, 0.026,
		map[float64]uint64{.0005: 1, .0025: 1, .005: 3, .01: 3, .025: 4, 10: 4, math.Inf(1): 4}, "outcome=ok")
	checkHistogram(t, f, "wsloop_handshake_duration_seconds", 5, 40.007,
		map[float64]uint64{.001: 1, .0025: 2, .005: 3, 5: 3, 10: 4, math.Inf(1): 5}, "outcome=failed")
	checkHistogram(t, f, "wsloop_loop_lag_seconds", 2, 0.003,
		map[float64]uint64{.0001: 1, .0025: 1, .005: 2, 1: 2, math.Inf(1): 2}, "loop=0")
	checkHistogram(t, f, "wsloop_loop_lag_seconds", 1, 2,
		map[float64]uint64{1: 0, math.Inf(1): 1}, "loop=1")
	checkHistogram(t, f, "wsloop_fanout_duration_seconds", 2, 0.00204,
		map[float64]uint64{.00005: 1, .001: 1, .0025: 2, math.Inf(1): 2})

	// Every wsloop family on the page was checked above.
	checked := map[string]bool{"wsloop_handshake_duration_seconds": true, "wsloop_loop_lag_seconds": true, "wsloop_fanout_duration_seconds": true}
	for _, c := range checks {
		checked[c.name] = true
	}
	for name := range f {
		if strings.HasPrefix(name, "wsloop_") && !checked[name] {
			t.Errorf("family %s is not checked by this test", name)
		}
	}

	// The Go runtime and process metrics Handler adds.
	if value(t, f, "go_goroutines") < 1 {
		t.Error("go_goroutines < 1")
	}
	if _, ok := f["process_resident_memory_bytes"]; !ok && runtime.GOOS == "linux" {
		t.Error("no process_resident_memory_bytes")
	}
}

// TestLabelSetsAreFixed: a peer chooses close codes and its requests
// choose statuses; whatever they are, the series stay the fixed sets.
func TestLabelSetsAreFixed(t *testing.T) {
	m := newMetrics(t, Options{})
	m.Started(twoLoops("gnet"))
	for code := range 1 << 16 {
		m.Closed(0, session.StatusCode(code))
	}
	for status := -1; status < 1000; status++ {
		m.HandshakeFailed(1, status, time.Millisecond)
	}
	for p := range 256 {
		m.Overflowed(0, session.Overflow(p))
	}
	f := scrape(t, m)
	sizes := map[string]int{
		"wsloop_connections_closed_total": len(closeLabels),
		"wsloop_handshake_failures_total": len(statusLabels),
		"wsloop_overflow_total":           len(overflowLabels),
	}
	for name, n := range sizes {
		if got := len(f[name].Metric); got != n {
			t.Errorf("%s: %d series, want %d", name, got, n)
		}
	}
	want := map[string]float64{
		"1000": 1, "1004": 1, "1015": 1, "3000-3999": 1000, "4000-4999": 1000,
		"other": float64(1<<16 - 16 - 2000),
	}
	for code, n := range want {
		if got := value(t, f, "wsloop_connections_closed_total", "code="+code); got != n {
			t.Errorf("code %s: %g, want %g", code, got, n)
		}
	}
	if got := value(t, f, "wsloop_handshake_failures_total", "status=other"); got != 1001-14 {
		t.Errorf("status other: %g, want %d", got, 1001-14)
	}
	if got := value(t, f, "wsloop_overflow_total", "policy=other"); got != 252 {
		t.Errorf("policy other: %g, want 252", got)
	}
	// Opened 0, closed 65,536 times: the gauge says what it was told.
	if got := value(t, f, "wsloop_connections_open", "loop=0"); got != -(1 << 16) {
		t.Errorf("open: %g", got)
	}
}

// TestBadFiguresNeverPanic: negative counts and durations, loop indexes
// that Started did not announce, calls before Started: nothing panics (a
// panic would take a loop down), nothing is lost that can be kept.
func TestBadFiguresNeverPanic(t *testing.T) {
	m := newMetrics(t, Options{})
	m.Accepted(5) // before Started
	m.Started(twoLoops("epoll"))
	m.MessagesIn(0, -1, -100)
	m.MessagesOut(1, -1, -100)
	m.FanOut(0, -5, -time.Second)
	m.Opened(-1, -time.Second)
	m.LoopTick(7, -time.Second, -time.Second)
	m.LoopTick(0, -time.Second, -time.Second)
	m.Accepted(2)
	f := scrape(t, m)
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"wsloop_connections_accepted_total", "loop=5", 1},
		{"wsloop_connections_accepted_total", "loop=2", 1},
		{"wsloop_connections_opened_total", "loop=-1", 1},
		{"wsloop_messages_received_total", "loop=0", 0},
		{"wsloop_received_bytes_total", "loop=0", 0},
		{"wsloop_loop_busy_seconds_total", "loop=0", 0},
	} {
		if got := value(t, f, c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %g, want %g", c.name, c.label, got, c.want)
		}
	}
	checkHistogram(t, f, "wsloop_loop_lag_seconds", 1, 0, map[float64]uint64{.0001: 1}, "loop=7")
	checkHistogram(t, f, "wsloop_handshake_duration_seconds", 1, 0, map[float64]uint64{.0005: 1}, "outcome=ok")
}

// TestBeforeStarted: a scrape before the server has started shows no
// server description and no per-loop gauges, and parses.
func TestBeforeStarted(t *testing.T) {
	f := scrape(t, newMetrics(t, Options{}))
	for _, name := range []string{"wsloop_server_info", "wsloop_loop_sockets", "wsloop_connections_accepted_total"} {
		if _, ok := f[name]; ok {
			t.Errorf("%s before Started", name)
		}
	}
	if _, ok := f["wsloop_connections_refused_total"]; !ok {
		t.Error("the fixed series (refused by reason) are missing before Started")
	}
}

// TestSharedSet: two servers' Metrics in one Set, told apart by
// ConstLabels, on one page; the same labels twice and bad labels are clear
// errors.
func TestSharedSet(t *testing.T) {
	set := vm.NewSet()
	pub := newMetrics(t, Options{Set: set, ConstLabels: map[string]string{"server": "public"}})
	tls := newMetrics(t, Options{Set: set, ConstLabels: map[string]string{"server": `t"l\s`, "dc": "a"}})
	pub.Started(twoLoops("epoll"))
	tls.Started(loop.ServerInfo{Engine: "goroutine", Loops: 1})
	pub.Accepted(1)
	tls.Accepted(0)
	tls.Accepted(0)
	if pub.Set() != set {
		t.Fatal("Set")
	}
	f := scrape(t, pub) // pub's handler serves the shared set
	if got := value(t, f, "wsloop_connections_accepted_total", "server=public", "loop=1"); got != 1 {
		t.Errorf("public: %g", got)
	}
	if got := value(t, f, "wsloop_connections_accepted_total", `server=t"l\s`, "dc=a", "loop=0"); got != 2 {
		t.Errorf("tls: %g", got)
	}
	if value(t, f, "wsloop_server_info", `server=t"l\s`, "engine=goroutine") != 1 {
		t.Error("tls server_info")
	}
	_, err := New(Options{Set: set, ConstLabels: map[string]string{"server": "public"}})
	if err == nil || !strings.Contains(err.Error(), "ConstLabels") {
		t.Errorf("same labels twice: %v, want an error naming ConstLabels", err)
	}
	for _, bad := range []string{"loop", "code", "0x", "a-b", "__name", ""} {
		if _, err := New(Options{ConstLabels: map[string]string{bad: "v"}}); err == nil {
			t.Errorf("const label %q: no error", bad)
		}
	}
}

// TestStartedAgain: a Metrics given to a server that starts anew keeps its
// counts and reads the new server's snapshot.
func TestStartedAgain(t *testing.T) {
	m := newMetrics(t, Options{})
	m.Started(twoLoops("epoll"))
	m.Accepted(0)
	second := twoLoops("epoll")
	second.Snapshot = func(i int) loop.LoopSnapshot { return loop.LoopSnapshot{QueuedBytes: 42} }
	m.Started(second)
	m.Accepted(0)
	f := scrape(t, m)
	if v := value(t, f, "wsloop_connections_accepted_total", "loop=0"); v != 2 {
		t.Errorf("accepted: %g, want 2", v)
	}
	if v := value(t, f, "wsloop_loop_queued_bytes", "loop=1"); v != 42 {
		t.Errorf("queued bytes: %g, want the new server's 42", v)
	}
}

// TestConcurrentObservations runs the loops' calls and scrapes at once
// (for the race detector) and checks the totals after.
func TestConcurrentObservations(t *testing.T) {
	m := newMetrics(t, Options{})
	m.Started(twoLoops("epoll"))
	const n = 2000
	done := make(chan struct{})
	for l := range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range n {
				m.Accepted(l)
				m.Opened(l, time.Millisecond)
				m.MessagesIn(l, 1, 10)
				m.LoopTick(l, 0, time.Microsecond)
				m.Closed(l, session.StatusGoingAway)
				if i%500 == 0 {
					scrapeRaw(m) // concurrent with the loops' calls
				}
			}
		}()
	}
	<-done
	<-done
	f := scrape(t, m)
	for _, l := range []string{"loop=0", "loop=1"} {
		if v := value(t, f, "wsloop_connections_accepted_total", l); v != n {
			t.Errorf("accepted %s: %g", l, v)
		}
		if v := value(t, f, "wsloop_received_bytes_total", l); v != 10*n {
			t.Errorf("bytes %s: %g", l, v)
		}
		if v := value(t, f, "wsloop_connections_open", l); v != 0 {
			t.Errorf("open %s: %g", l, v)
		}
		if v := value(t, f, "wsloop_loop_busy_seconds_total", l); !near(v, n*1e-6) {
			t.Errorf("busy %s: %g", l, v)
		}
	}
	if v := value(t, f, "wsloop_connections_closed_total", "code=1001"); v != 2*n {
		t.Errorf("closed 1001: %g", v)
	}
}

// observations are one call of each Observer method a loop makes.
var observations = []struct {
	name string
	fn   func(m *Metrics)
}{
	{"Accepted", func(m *Metrics) { m.Accepted(1) }},
	{"Refused", func(m *Metrics) { m.Refused(1, loop.RefusePerIP) }},
	{"HandshakeFailed", func(m *Metrics) { m.HandshakeFailed(1, 400, time.Millisecond) }},
	{"Opened", func(m *Metrics) { m.Opened(1, time.Millisecond) }},
	{"Closed", func(m *Metrics) { m.Closed(1, session.StatusGoingAway) }},
	{"MessagesIn", func(m *Metrics) { m.MessagesIn(1, 1, 64) }},
	{"MessagesOut", func(m *Metrics) { m.MessagesOut(1, 1, 64) }},
	{"Overflowed", func(m *Metrics) { m.Overflowed(1, session.OverflowDrop) }},
	{"LoopTick", func(m *Metrics) { m.LoopTick(1, 300*time.Microsecond, 40*time.Millisecond) }},
	{"FanOut", func(m *Metrics) { m.FanOut(1, 5000, 800*time.Microsecond) }},
}

// TestObservationsAllocateNothing: the loop's hot path.
func TestObservationsAllocateNothing(t *testing.T) {
	m := newMetrics(t, Options{})
	m.Started(twoLoops("epoll"))
	for _, o := range observations {
		if a := testing.AllocsPerRun(1000, func() { o.fn(m) }); a != 0 {
			t.Errorf("%s: %g allocations per call, want 0", o.name, a)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	m, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	m.Started(twoLoops("epoll"))
	for _, o := range observations {
		b.Run(o.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.fn(m)
			}
		})
	}
}
