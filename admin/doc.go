// Package admin serves a process's operational endpoints (Prometheus
// metrics, pprof profiles, expvar statistics) on a listener of their own,
// apart from the public port: what they show (heap contents through
// profiles, the command line through expvar, traffic figures) is for the
// operator, so the listener belongs on a loopback or otherwise private
// address.
//
//	srv, err := admin.Listen("127.0.0.1:9090", admin.Options{Metrics: m.Handler(), Stats: stats})
//	defer srv.Shutdown(ctx)
//
// Routes:
//
//	/metrics           Options.Metrics (404 when nil)
//	/debug/pprof/...   net/http/pprof: index, profile, trace, heap, goroutine, ...
//	/debug/vars        expvar JSON: memstats, cmdline, goroutines, and with
//	                   Options.Stats the connection counters as "wsloop"
//	/                  a plain-text index of the above
//
// This package imports net/http/pprof and expvar, which (like any importer
// of them) register their handlers on http.DefaultServeMux as well: never
// serve http.DefaultServeMux on a public port in a program that links them.
package admin
