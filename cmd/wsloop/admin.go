package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/wsloop/wsloop/admin"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/metrics"
	"github.com/wsloop/wsloop/session"
)

// adminConfig are the flags of the admin listener.
type adminConfig struct {
	addr   string
	expvar bool // removed flag, kept to say where its page went
}

func (a *adminConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&a.addr, "admin-addr", "", `serve /metrics (Prometheus), /debug/pprof/ and /debug/vars (expvar) on this address, e.g. "127.0.0.1:9090"; off when empty. Keep it private: profiles show memory contents`)
	fs.BoolVar(&a.expvar, "expvar", false, "removed: /debug/vars moved to the admin listener (-admin-addr)")
}

// errExpvarMoved: a script that still passes -expvar would otherwise look
// for /debug/vars on the public port and silently find nothing.
var errExpvarMoved = errors.New("-expvar was removed: /debug/vars is no longer served on the public port; use -admin-addr 127.0.0.1:9090 and read http://127.0.0.1:9090/debug/vars (metrics and pprof are there too)")

func (a *adminConfig) check() error {
	if a.expvar {
		return errExpvarMoved
	}
	return nil
}

// startAdmin starts the admin listener when -admin-addr is given, with
// metrics as the server's Observer. stop shuts it down; call it after the
// public server has stopped, so the drain can be watched to the end.
func startAdmin(a *adminConfig, opts *loop.Options, stats *session.Stats, log *slog.Logger) (stop func(), err error) {
	if a.addr == "" {
		return func() {}, nil
	}
	m, err := metrics.New(metrics.Options{})
	if err != nil {
		return nil, err
	}
	opts.Observer = m
	srv, err := admin.Listen(a.addr, admin.Options{Metrics: m.Handler(), Stats: stats})
	if err != nil {
		return nil, err
	}
	bound := srv.Addr()
	if !bound.IP.IsLoopback() {
		log.Warn("admin listener is not on a loopback address: anyone who can reach it reads profiles and statistics", "addr", bound.String())
	}
	log.Info("admin listener", "addr", bound.String(), "paths", "/metrics /debug/pprof/ /debug/vars")
	return func() {
		// A profile being streamed is cut after a second: stopping must not
		// wait for an operator's 30-second CPU profile.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("admin listener shutdown", "err", err)
		}
	}, nil
}
