package admin

import (
	"io"
	"net/http"
	"net/http/pprof"

	"github.com/wsloop/wsloop/session"
)

// Options say what the admin endpoints show.
type Options struct {
	// Metrics serves /metrics, e.g. (*metrics.Metrics).Handler(); nil: 404.
	Metrics http.Handler
	// Stats, when set, are published in /debug/vars as "wsloop" (opened,
	// closed, messages, dropped, slow_closed, protocol_errors, panics).
	Stats *session.Stats
}

// Handler returns the admin routes (see the package doc). Every other path
// is 404; nothing else of the process is reachable through it.
func Handler(opts Options) http.Handler {
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol) // go tool pprof posts addresses
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /debug/vars", varsHandler(opts.Stats))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if opts.Metrics != nil {
			io.WriteString(w, "/metrics          Prometheus metrics\n")
		}
		io.WriteString(w, "/debug/pprof/     profiles (go tool pprof http://ADDR/debug/pprof/heap)\n/debug/vars       expvar JSON\n")
	})
	return mux
}
