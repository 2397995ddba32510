package admin

import (
	"expvar"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/wsloop/wsloop/session"
)

// expvar variables are process-wide and can be published only once, so
// "wsloop" reads whichever Stats the latest Handler was given.
var (
	currentStats atomic.Pointer[session.Stats]
	publishOnce  sync.Once
)

// varsHandler serves expvar's JSON (memstats, cmdline, and the variables
// published below).
func varsHandler(stats *session.Stats) http.Handler {
	if stats != nil {
		currentStats.Store(stats)
	}
	publishOnce.Do(func() {
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		expvar.Publish("wsloop", expvar.Func(func() any {
			s := currentStats.Load()
			if s == nil {
				return nil
			}
			return map[string]uint64{
				"opened":          s.Opened.Load(),
				"closed":          s.Closed.Load(),
				"messages":        s.Messages.Load(),
				"dropped":         s.Dropped.Load(),
				"slow_closed":     s.SlowClosed.Load(),
				"protocol_errors": s.ProtocolErrors.Load(),
				"panics":          s.Panics.Load(),
				"compressed":      s.Compressed.Load(),
				"deflated":        s.Deflated.Load(),
				"inflated":        s.Inflated.Load(),
			}
		}))
	})
	return expvar.Handler()
}
