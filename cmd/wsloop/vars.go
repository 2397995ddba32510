package main

import (
	"expvar"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/wsloop/wsloop/session"
)

// current is the Stats of the server this process runs; expvar variables are
// process-wide and published once, so they read through it.
var (
	current     atomic.Pointer[session.Stats]
	publishOnce sync.Once
)

// withVars serves expvar's /debug/vars (memstats, cmdline, goroutines and
// the connection counters of stats) in front of next.
func withVars(next http.Handler, stats *session.Stats) http.Handler {
	current.Store(stats)
	publishOnce.Do(func() {
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		expvar.Publish("wsloop", expvar.Func(func() any {
			s := current.Load()
			return map[string]uint64{
				"opened":          s.Opened.Load(),
				"closed":          s.Closed.Load(),
				"messages":        s.Messages.Load(),
				"dropped":         s.Dropped.Load(),
				"protocol_errors": s.ProtocolErrors.Load(),
				"panics":          s.Panics.Load(),
				"compressed":      s.Compressed.Load(),
				"deflated":        s.Deflated.Load(),
				"inflated":        s.Inflated.Load(),
			}
		}))
	})
	vars := expvar.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/vars" {
			vars.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
