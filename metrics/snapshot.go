package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshotCollector reports at scrape time what the loops hold now (through
// ServerInfo.Snapshot) and the server's description: nothing of it costs
// the loops anything between scrapes.
type snapshotCollector struct {
	m                                       *Metrics
	info, loops, capacity                   *prometheus.Desc
	busy, sockets, queuedBytes, queuedTasks *prometheus.Desc
}

func newSnapshotCollector(m *Metrics, cl prometheus.Labels) *snapshotCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, cl)
	}
	return &snapshotCollector{
		m:           m,
		info:        desc("wsloop_server_info", "The server's engine; always 1.", "engine"),
		loops:       desc("wsloop_server_loops", "Event loops of the server."),
		capacity:    desc("wsloop_server_capacity_connections", "Most connections the server holds at once."),
		busy:        desc("wsloop_loop_busy_seconds_total", "Time the event loop spent working rather than waiting for events.", "loop"),
		sockets:     desc("wsloop_loop_sockets", "Sockets the event loop holds (handshaking, open or closing).", "loop"),
		queuedBytes: desc("wsloop_loop_queued_bytes", "Outbound bytes accepted for sending that the kernel has not taken yet.", "loop"),
		queuedTasks: desc("wsloop_loop_queued_tasks", "Tasks waiting in the event loop's queue.", "loop"),
	}
}

// Describe implements prometheus.Collector.
func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.loops, c.capacity, c.busy, c.sockets, c.queuedBytes, c.queuedTasks} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Before Started it reports
// nothing: there is no server to describe yet.
func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.state.Load()
	if st == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, st.info.Engine)
	ch <- prometheus.MustNewConstMetric(c.loops, prometheus.GaugeValue, float64(st.info.Loops))
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(st.info.Capacity))
	for i, l := range st.loops {
		label := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, float64(l.busy.Load())/1e9, label)
		if st.info.Snapshot == nil {
			continue
		}
		s := st.info.Snapshot(i)
		ch <- prometheus.MustNewConstMetric(c.sockets, prometheus.GaugeValue, float64(s.Sockets), label)
		ch <- prometheus.MustNewConstMetric(c.queuedBytes, prometheus.GaugeValue, float64(s.QueuedBytes), label)
		ch <- prometheus.MustNewConstMetric(c.queuedTasks, prometheus.GaugeValue, float64(s.QueuedTasks), label)
	}
}
