// Package metrics exposes what a wsloop Server does in the Prometheus text
// format, through github.com/VictoriaMetrics/metrics. A *Metrics is a
// loop.Observer: give it to the server (loop.Options.Observer) and serve
// Handler, preferably on an admin listener that the public cannot reach
// (package admin).
//
//	m, err := metrics.New(metrics.Options{})
//	opts := loop.Options{Observer: m}
//	http.Handle("/metrics", m.Handler())
//
// Why not the official client (prometheus/client_golang v1.25.0): measured
// on linux/arm64 with -trimpath -ldflags='-s -w', it adds 2.6 MB to a
// program (protobuf and its descriptors come with it) where this one adds
// 0.5 MB, and its package initialisation alone raised wsloop's RSS at
// start from 6.3 MB to 10.4 MB (this one: 6.6 MB). An observation costs
// the same in both (tens of nanoseconds, no allocation). The exposition is
// the same text format, parsed by Prometheus's own parser in the tests.
//
// Package loop does not import this package nor any Prometheus code: a
// program that never calls metrics.New links none of it.
//
// Every observation is a few atomic operations on collectors resolved in
// advance (per loop, per close code, per status, per reason): no lookup, no
// lock, no allocation on the loop's hot path.
//
// # Series
//
// Counters and gauges (loop is the event loop's index, "0" for the
// goroutine engine):
//
//	wsloop_server_info{engine}                 1, names the engine
//	wsloop_server_loops                        event loops
//	wsloop_server_capacity_connections         most connections held at once
//	wsloop_connections_accepted_total{loop}    TCP connections accepted
//	wsloop_connections_refused_total{reason}   turned away by a limit: capacity, per_ip,
//	                                           handshake_rate, handshakes_in_progress, shutting_down
//	wsloop_handshake_failures_total{status}    upgrades answered with an HTTP error; status
//	                                           "none" when the connection ended before any answer,
//	                                           "other" for a status not listed in the package
//	wsloop_connections_opened_total{loop}      handshakes completed (101 sent)
//	wsloop_connections_closed_total{code}      opened connections closed, by close code
//	                                           ("3000-3999", "4000-4999" for application codes,
//	                                           "other" for anything else)
//	wsloop_connections_open{loop}              opened and not yet closed
//	wsloop_messages_received_total{loop}       messages delivered to handlers
//	wsloop_received_bytes_total{loop}          their payload bytes
//	wsloop_messages_sent_total{loop}           messages accepted for sending
//	wsloop_sent_bytes_total{loop}              their payload bytes
//	wsloop_overflow_total{policy}              HighWater reached and the policy acted: error
//	                                           (Send refused), drop, close_1008, close_1013
//	wsloop_loop_busy_seconds_total{loop}       time the loop spent working (rate = utilisation)
//	wsloop_loop_sockets{loop}                  sockets held, any state (read at scrape)
//	wsloop_loop_queued_bytes{loop}             outbound bytes the kernel has not taken (at scrape)
//	wsloop_loop_queued_tasks{loop}             tasks waiting in the loop's queue (at scrape)
//	wsloop_fanout_members_total                connections reached by Publish/Broadcast
//
// Histograms (seconds):
//
//	wsloop_handshake_duration_seconds{outcome} accept to 101 ("ok") or to the error ("failed")
//	wsloop_loop_lag_seconds{loop}              how late a loop ran its timer tick
//	wsloop_fanout_duration_seconds             Publish/Broadcast call to a loop's part done
//
// A registry made by New also holds the Go runtime (go_*) and process
// (process_*: RSS, open fds, CPU) collectors.
package metrics
