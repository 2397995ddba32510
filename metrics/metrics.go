package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Options configure New. The zero value is ready to use.
type Options struct {
	// Set receives the series; nil: a new one of the Metrics' own. Give two
	// servers' Metrics one Set (and distinct ConstLabels) to serve both on
	// one page: a family's lines must stay together, which two separate
	// pages concatenated would break.
	Set *vm.Set
	// ConstLabels are added to every wsloop_ series, e.g.
	// {"server": "public"}.
	ConstLabels map[string]string
}

// Metrics implements loop.Observer with VictoriaMetrics/metrics collectors.
// One Metrics observes one Server; all its methods are safe for concurrent
// use and allocate nothing once Started has run (see the package doc for
// the series).
type Metrics struct {
	set    *vm.Set
	labels string // the const labels, rendered: `a="x",b="y"` or ""
	state  atomic.Pointer[serverState]

	// resolved at New: the label values are known in advance
	refused         [loop.NumRefuseReasons + 1]*vm.Counter // + unknown
	failures        [len(statusLabels)]*vm.Counter
	closed          [len(closeLabels)]*vm.Counter
	overflow        [len(overflowLabels)]*vm.Counter
	handshakeOK     *vm.PrometheusHistogram
	handshakeFailed *vm.PrometheusHistogram
	fanoutTook      *vm.PrometheusHistogram
	fanoutMembers   *vm.Counter
}

// serverState is what Started learned, published at once for the loops.
type serverState struct {
	info  loop.ServerInfo
	loops []*loopSeries
}

// loopSeries are one loop's collectors, resolved once.
type loopSeries struct {
	accepted, opened, msgsIn, bytesIn, msgsOut, bytesOut *vm.Counter
	open                                                 *vm.Gauge
	lag                                                  *vm.PrometheusHistogram
	busy                                                 *vm.FloatCounter // nil for a loop Started did not announce
}

// Bucket bounds, in seconds. A handshake is at least one round trip and at
// most the handshake timeout (10 s by default); a loop runs its ticks 0-1 ms
// late when healthy; a fan-out part over a few thousand members takes
// tens of microseconds to milliseconds.
var (
	handshakeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	lagBuckets       = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	fanoutBuckets    = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// ownLabels are the label names the package sets itself.
var ownLabels = map[string]bool{"loop": true, "reason": true, "status": true, "code": true, "policy": true, "outcome": true, "engine": true, "le": true}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// New makes the series. It turns on the # HELP and # TYPE lines of
// VictoriaMetrics/metrics for the whole process (vm.ExposeMetadata), so
// that scrapers see counters, gauges and histograms typed. It fails for an
// invalid const label or when opts.Set already holds these series.
func New(opts Options) (*Metrics, error) {
	vm.ExposeMetadata(true)
	set := opts.Set
	if set == nil {
		set = vm.NewSet()
	}
	keys := make([]string, 0, len(opts.ConstLabels))
	for k := range opts.ConstLabels {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") || ownLabels[k] {
			return nil, fmt.Errorf("metrics: const label %q: want a Prometheus label name that is not one of the package's own (loop, code, ...)", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + quote(opts.ConstLabels[k]))
	}
	m := &Metrics{set: set, labels: b.String()}
	first := m.name("wsloop_fanout_members_total")
	for _, n := range set.ListMetricNames() {
		if n == first {
			return nil, errors.New("metrics: the Set already holds wsloop series with these labels; give each Metrics of one Set distinct Options.ConstLabels")
		}
	}
	for r := range m.refused {
		m.refused[r] = set.NewCounter(m.name("wsloop_connections_refused_total", "reason", loop.RefuseReason(r).String()))
	}
	for i, l := range statusLabels {
		m.failures[i] = set.NewCounter(m.name("wsloop_handshake_failures_total", "status", l))
	}
	for i, l := range closeLabels {
		m.closed[i] = set.NewCounter(m.name("wsloop_connections_closed_total", "code", l))
	}
	for i, l := range overflowLabels {
		m.overflow[i] = set.NewCounter(m.name("wsloop_overflow_total", "policy", l))
	}
	m.handshakeOK = set.NewPrometheusHistogramExt(m.name("wsloop_handshake_duration_seconds", "outcome", "ok"), handshakeBuckets)
	m.handshakeFailed = set.NewPrometheusHistogramExt(m.name("wsloop_handshake_duration_seconds", "outcome", "failed"), handshakeBuckets)
	m.fanoutTook = set.NewPrometheusHistogramExt(m.name("wsloop_fanout_duration_seconds"), fanoutBuckets)
	m.fanoutMembers = set.NewCounter(first)
	return m, nil
}

// quote renders a label value as the text format wants it.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

// name renders a series name with the const labels and label pairs kv.
func (m *Metrics) name(family string, kv ...string) string {
	labels := m.labels
	for i := 0; i+1 < len(kv); i += 2 {
		if labels != "" {
			labels += ","
		}
		labels += kv[i] + "=" + quote(kv[i+1])
	}
	if labels == "" {
		return family
	}
	return family + "{" + labels + "}"
}

// Handler serves the series and the Go runtime (go_*) and process
// (process_*: RSS, open fds, CPU) metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.set.WritePrometheus(w)
		vm.WriteProcessMetrics(w)
	})
}

// Set is where the series are: add the application's own there to serve
// them on the same page.
func (m *Metrics) Set() *vm.Set { return m.set }

// Started implements loop.Observer: it makes the per-loop series and the
// server's description. Calling it again (a server started anew) keeps
// the series and their counts.
func (m *Metrics) Started(info loop.ServerInfo) {
	st := &serverState{info: info, loops: make([]*loopSeries, max(info.Loops, 0))}
	s := m.set
	for i := range st.loops {
		label := strconv.Itoa(i)
		l := m.newLoopSeries(label)
		l.busy = s.GetOrCreateFloatCounter(m.name("wsloop_loop_busy_seconds_total", "loop", label))
		st.loops[i] = l
		// The gauges read through m.state, so that a server started anew
		// is read, not the one that made them.
		s.GetOrCreateGauge(m.name("wsloop_loop_sockets", "loop", label), func() float64 { return float64(m.snapshot(i).Sockets) })
		s.GetOrCreateGauge(m.name("wsloop_loop_queued_bytes", "loop", label), func() float64 { return float64(m.snapshot(i).QueuedBytes) })
		s.GetOrCreateGauge(m.name("wsloop_loop_queued_tasks", "loop", label), func() float64 { return float64(m.snapshot(i).QueuedTasks) })
	}
	s.GetOrCreateGauge(m.name("wsloop_server_info", "engine", info.Engine), func() float64 { return 1 })
	s.GetOrCreateGauge(m.name("wsloop_server_loops"), nil).Set(float64(info.Loops))
	s.GetOrCreateGauge(m.name("wsloop_server_capacity_connections"), nil).Set(float64(info.Capacity))
	m.state.Store(st)
}

// snapshot is loop i's state now, at scrape time.
func (m *Metrics) snapshot(i int) loop.LoopSnapshot {
	st := m.state.Load()
	if st == nil || st.info.Snapshot == nil || i >= st.info.Loops {
		return loop.LoopSnapshot{}
	}
	return st.info.Snapshot(i)
}

func (m *Metrics) newLoopSeries(label string) *loopSeries {
	s := m.set
	return &loopSeries{
		accepted: s.GetOrCreateCounter(m.name("wsloop_connections_accepted_total", "loop", label)),
		opened:   s.GetOrCreateCounter(m.name("wsloop_connections_opened_total", "loop", label)),
		msgsIn:   s.GetOrCreateCounter(m.name("wsloop_messages_received_total", "loop", label)),
		bytesIn:  s.GetOrCreateCounter(m.name("wsloop_received_bytes_total", "loop", label)),
		msgsOut:  s.GetOrCreateCounter(m.name("wsloop_messages_sent_total", "loop", label)),
		bytesOut: s.GetOrCreateCounter(m.name("wsloop_sent_bytes_total", "loop", label)),
		open:     s.GetOrCreateGauge(m.name("wsloop_connections_open", "loop", label), nil),
		lag:      s.GetOrCreatePrometheusHistogramExt(m.name("wsloop_loop_lag_seconds", "loop", label), lagBuckets),
	}
}

// loop returns loop i's series. An index Started did not announce (a call
// before Started, or an engine bug) is still counted under its own label,
// through the Set's lookup: slower and allocating, never lost. Its busy
// time is not kept.
func (m *Metrics) loop(i int) *loopSeries {
	if st := m.state.Load(); st != nil && uint(i) < uint(len(st.loops)) {
		return st.loops[i]
	}
	return m.newLoopSeries(strconv.Itoa(i))
}

// Accepted implements loop.Observer.
func (m *Metrics) Accepted(loop int) { m.loop(loop).accepted.Inc() }

// Refused implements loop.Observer.
func (m *Metrics) Refused(_ int, reason loop.RefuseReason) {
	m.refused[min(int(reason), len(m.refused)-1)].Inc()
}

// HandshakeFailed implements loop.Observer.
func (m *Metrics) HandshakeFailed(_ int, status int, took time.Duration) {
	m.failures[statusIndex(status)].Inc()
	m.handshakeFailed.Update(seconds(took))
}

// Opened implements loop.Observer.
func (m *Metrics) Opened(loop int, took time.Duration) {
	l := m.loop(loop)
	l.opened.Inc()
	l.open.Inc()
	m.handshakeOK.Update(seconds(took))
}

// Closed implements loop.Observer.
func (m *Metrics) Closed(loop int, code session.StatusCode) {
	m.loop(loop).open.Dec()
	m.closed[closeIndex(uint16(code))].Inc()
}

// MessagesIn implements loop.Observer.
func (m *Metrics) MessagesIn(loop, messages, bytes int) {
	l := m.loop(loop)
	l.msgsIn.Add(count(messages))
	l.bytesIn.Add(count(bytes))
}

// MessagesOut implements loop.Observer.
func (m *Metrics) MessagesOut(loop, messages, bytes int) {
	l := m.loop(loop)
	l.msgsOut.Add(count(messages))
	l.bytesOut.Add(count(bytes))
}

// Overflowed implements loop.Observer.
func (m *Metrics) Overflowed(_ int, policy session.Overflow) {
	m.overflow[overflowIndex(policy)].Inc()
}

// LoopTick implements loop.Observer.
func (m *Metrics) LoopTick(loop int, lag, busy time.Duration) {
	l := m.loop(loop)
	l.lag.Update(seconds(lag))
	if busy > 0 && l.busy != nil {
		l.busy.Add(busy.Seconds())
	}
}

// FanOut implements loop.Observer.
func (m *Metrics) FanOut(_ int, members int, took time.Duration) {
	m.fanoutMembers.Add(count(members))
	m.fanoutTook.Update(seconds(took))
}

// count guards the counters, which would wrap around on a negative
// addition: a wrong figure from the core is dropped, never a panic.
func count(n int) int { return max(n, 0) }

func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

var _ loop.Observer = (*Metrics)(nil)
