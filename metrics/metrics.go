package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Options configure New. The zero value makes a registry of the Metrics'
// own with the Go runtime and process collectors.
type Options struct {
	// Registry receives the collectors and is what Handler serves; nil: a
	// new registry holding also the Go runtime and process collectors.
	Registry *prometheus.Registry
	// ConstLabels are added to every wsloop_ series, e.g.
	// {"server": "public"}: two servers in one process, each with its own
	// Metrics, can then share one Registry.
	ConstLabels prometheus.Labels
}

// Metrics implements loop.Observer with Prometheus collectors. One Metrics
// observes one Server; all its methods are safe for concurrent use and
// allocate nothing once Started has run (see the package doc for the
// series).
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	state   atomic.Pointer[serverState]

	// vectors of the per-loop series, resolved per loop in Started
	accepted, opened, msgsIn, bytesIn, msgsOut, bytesOut *prometheus.CounterVec
	open                                                 *prometheus.GaugeVec
	lag                                                  *prometheus.HistogramVec

	// resolved at New: the label values are known in advance
	refused         [loop.NumRefuseReasons + 1]prometheus.Counter // + unknown
	failures        [len(statusLabels)]prometheus.Counter
	closed          [len(closeLabels)]prometheus.Counter
	overflow        [len(overflowLabels)]prometheus.Counter
	handshakeOK     prometheus.Observer
	handshakeFailed prometheus.Observer
	fanoutTook      prometheus.Observer
	fanoutMembers   prometheus.Counter
}

// serverState is what Started learned, published at once for the loops.
type serverState struct {
	info  loop.ServerInfo
	loops []*loopSeries
}

// loopSeries are one loop's collectors, resolved once.
type loopSeries struct {
	accepted, opened, msgsIn, bytesIn, msgsOut, bytesOut prometheus.Counter
	open                                                 prometheus.Gauge
	lag                                                  prometheus.Observer
	busy                                                 atomic.Int64 // nanoseconds
}

// Bucket bounds, in seconds. A handshake is at least one round trip and at
// most the handshake timeout (10 s by default); a loop runs its ticks 0-1 ms
// late when healthy, a fan-out part over a few thousand members takes
// tens of microseconds to milliseconds.
var (
	handshakeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	lagBuckets       = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	fanoutBuckets    = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// New makes the collectors and registers them; it fails only when
// opts.Registry already holds series of the same names and labels.
func New(opts Options) (*Metrics, error) {
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{reg: reg}
	cl := opts.ConstLabels
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: cl}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets, ConstLabels: cl}, labels)
	}
	m.accepted = counter("wsloop_connections_accepted_total", "TCP connections accepted.", "loop")
	m.opened = counter("wsloop_connections_opened_total", "WebSocket handshakes completed (101 sent).", "loop")
	m.msgsIn = counter("wsloop_messages_received_total", "Messages delivered to handlers.", "loop")
	m.bytesIn = counter("wsloop_received_bytes_total", "Payload bytes of the messages delivered to handlers.", "loop")
	m.msgsOut = counter("wsloop_messages_sent_total", "Messages accepted for sending (written or queued).", "loop")
	m.bytesOut = counter("wsloop_sent_bytes_total", "Payload bytes of the messages accepted for sending.", "loop")
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wsloop_connections_open", Help: "WebSocket connections opened and not yet closed.", ConstLabels: cl}, []string{"loop"})
	m.lag = histogram("wsloop_loop_lag_seconds", "How late an event loop ran its timer tick.", lagBuckets, "loop")
	refused := counter("wsloop_connections_refused_total", "Connections turned away by a server limit.", "reason")
	failures := counter("wsloop_handshake_failures_total", `Upgrade requests answered with an HTTP error status ("none": the connection ended first).`, "status")
	closed := counter("wsloop_connections_closed_total", "Opened connections closed, by close code.", "code")
	overflow := counter("wsloop_overflow_total", "Times a connection was over HighWater and its overflow policy acted.", "policy")
	handshake := histogram("wsloop_handshake_duration_seconds", "Time from accept to the 101 response (ok) or to the error (failed).", handshakeBuckets, "outcome")
	fanoutTook := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wsloop_fanout_duration_seconds", Help: "Time from Room.Publish or Server.Broadcast to a loop's part of it done.", Buckets: fanoutBuckets, ConstLabels: cl})
	fanoutMembers := prometheus.NewCounter(prometheus.CounterOpts{Name: "wsloop_fanout_members_total", Help: "Connections reached by Room.Publish and Server.Broadcast.", ConstLabels: cl})

	for r := range m.refused {
		m.refused[r] = refused.WithLabelValues(loop.RefuseReason(r).String())
	}
	for i, l := range statusLabels {
		m.failures[i] = failures.WithLabelValues(l)
	}
	for i, l := range closeLabels {
		m.closed[i] = closed.WithLabelValues(l)
	}
	for i, l := range overflowLabels {
		m.overflow[i] = overflow.WithLabelValues(l)
	}
	m.handshakeOK = handshake.WithLabelValues("ok")
	m.handshakeFailed = handshake.WithLabelValues("failed")
	m.fanoutTook = fanoutTook
	m.fanoutMembers = fanoutMembers

	for _, c := range []prometheus.Collector{
		m.accepted, m.opened, m.msgsIn, m.bytesIn, m.msgsOut, m.bytesOut, m.open, m.lag,
		refused, failures, closed, overflow, handshake, fanoutTook, fanoutMembers,
		newSnapshotCollector(m, cl),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("metrics: the registry already holds wsloop series with these labels; give each Metrics of one registry distinct Options.ConstLabels")
			}
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

// Handler serves the registry in the Prometheus text format (or another
// format the scraper asks for in Accept).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry is where the collectors are registered: add the application's
// own there to serve them on the same page.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Started implements loop.Observer: it resolves the per-loop series.
func (m *Metrics) Started(info loop.ServerInfo) {
	st := &serverState{info: info, loops: make([]*loopSeries, max(info.Loops, 0))}
	for i := range st.loops {
		st.loops[i] = m.newLoopSeries(strconv.Itoa(i))
	}
	m.state.Store(st)
}

func (m *Metrics) newLoopSeries(label string) *loopSeries {
	return &loopSeries{
		accepted: m.accepted.WithLabelValues(label),
		opened:   m.opened.WithLabelValues(label),
		msgsIn:   m.msgsIn.WithLabelValues(label),
		bytesIn:  m.bytesIn.WithLabelValues(label),
		msgsOut:  m.msgsOut.WithLabelValues(label),
		bytesOut: m.bytesOut.WithLabelValues(label),
		open:     m.open.WithLabelValues(label),
		lag:      m.lag.WithLabelValues(label),
	}
}

// loop returns loop i's series. An index Started did not announce (a call
// before Started, or an engine bug) is still counted under its own label,
// through the vectors' lookup: slower and allocating, never lost. Its busy
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
	m.handshakeFailed.Observe(seconds(took))
}

// Opened implements loop.Observer.
func (m *Metrics) Opened(loop int, took time.Duration) {
	l := m.loop(loop)
	l.opened.Inc()
	l.open.Inc()
	m.handshakeOK.Observe(seconds(took))
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
	l.lag.Observe(seconds(lag))
	if busy > 0 {
		l.busy.Add(int64(busy))
	}
}

// FanOut implements loop.Observer.
func (m *Metrics) FanOut(_ int, members int, took time.Duration) {
	m.fanoutMembers.Add(count(members))
	m.fanoutTook.Observe(seconds(took))
}

// count guards the counters, which panic on a negative addition: a loop
// must never panic for a wrong figure.
func count(n int) float64 {
	if n < 0 {
		return 0
	}
	return float64(n)
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

var _ loop.Observer = (*Metrics)(nil)
