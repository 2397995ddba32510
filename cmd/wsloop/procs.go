package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/bus/natsbus"
	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/supervisor"
)

// scaleConfig is the flags for more than one process: -procs (worker
// processes on one port) and -nats (the bus their rooms share).
type scaleConfig struct {
	procs      int
	nats       string
	natsBuffer int
}

func (s *scaleConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&s.procs, "procs", 1, "worker processes sharing -addr (SO_REUSEPORT; Linux); chat rooms and the push feed span them over NATS")
	fs.StringVar(&s.nats, "nats", "", "NATS server URL(s), e.g. nats://127.0.0.1:4222 (comma-separated for a cluster): chat rooms and the push feed span every wsloop on it; with -procs and no -nats, an embedded server on loopback")
	fs.IntVar(&s.natsBuffer, "nats-buffer", natsbus.DefaultReconnectBuffer, "bytes of outgoing bus messages kept while NATS is unreachable; beyond it they are dropped and counted")
}

func (s *scaleConfig) check(c *config) error {
	switch {
	case s.procs < 1:
		return fmt.Errorf("-procs %d: give 1 or more", s.procs)
	case s.procs > 1 && runtime.GOOS != "linux":
		return fmt.Errorf("-procs %d needs Linux, whose SO_REUSEPORT spreads connections over processes; elsewhere run one wsloop per port behind a proxy", s.procs)
	case s.natsBuffer == 0:
		return errors.New("-nats-buffer 0: give a size in bytes, or -1 to keep nothing while NATS is unreachable")
	}
	return nil
}

// supervising reports whether this process is to start workers rather than
// serve.
func (s *scaleConfig) supervising() bool {
	_, worker := supervisor.Worker()
	return s.procs > 1 && !worker
}

// supervise runs -procs workers of this binary on one port: it reserves the
// port, starts the embedded NATS server unless -nats names one, and hands
// both to the workers through their flags (the last -addr and -nats win).
func (s *scaleConfig) supervise(ctx context.Context, c *config, args []string, log *slog.Logger) error {
	addr, release, err := supervisor.ReservePort(c.addr)
	if err != nil {
		return fmt.Errorf("-procs: %w", err)
	}
	defer release()
	url := s.nats
	if url == "" {
		u, stop, err := startEmbeddedNATS(log)
		if err != nil {
			return fmt.Errorf("-procs: embedded NATS server: %w", err)
		}
		defer stop() // after the workers: they shut down with their bus up
		url = u
		log.Info("embedded NATS server for the workers", "url", url)
	}
	wargs := append(append([]string(nil), args...), "-addr", addr, "-nats", url)
	return supervisor.Run(ctx, supervisor.Config{
		Procs:       s.procs,
		Args:        wargs,
		StopTimeout: c.shutdownTimeout + 10*time.Second,
		Logger:      log,
	})
}

// connect opens the bus of a serving process: NATS when -nats is given,
// none otherwise. close is always safe to call.
func (s *scaleConfig) connect(log *slog.Logger) (b bus.Bus, close func(), err error) {
	if s.nats == "" {
		return nil, func() {}, nil
	}
	name := "wsloop"
	if i, ok := supervisor.Worker(); ok {
		name += "-worker-" + strconv.Itoa(i)
	}
	nb, err := natsbus.Connect(s.nats, natsbus.Options{Name: name, ReconnectBuffer: s.natsBuffer, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("-nats: %w", err)
	}
	log.Debug("bus connected", "nats", s.nats)
	busVarsOf.bus.Store(nb)
	return nb, func() { _ = nb.Close(); busVarsOf.bus.CompareAndSwap(nb, nil) }, nil
}

// serving is called once the server listens: it publishes the bus counters
// (on the admin listener's /debug/vars) and tells a supervisor this worker
// is ready.
func (s *scaleConfig) serving(c *config, srv *loop.Server, d *demo.Demo, log *slog.Logger) {
	busVarsOf.chat.Store(d.Chat)
	if c.admin.addr != "" {
		publishBusOnce.Do(func() { expvar.Publish("bus", expvar.Func(busVars)) })
	}
	if err := supervisor.Ready(supervisor.Info{Addr: srv.Addr().String(), Capacity: srv.Capacity()}); err != nil {
		log.Warn("telling the supervisor this worker is ready", "err", err)
	}
}

// busVarsOf is what the "bus" expvar reads (expvar variables are process-wide
// and published once).
var busVarsOf struct {
	bus  atomic.Pointer[natsbus.Bus]
	chat atomic.Pointer[demo.Chat]
}

var publishBusOnce sync.Once

func busVars() any {
	out := map[string]any{}
	if b := busVarsOf.bus.Load(); b != nil {
		out["nats"] = b.Stats()
	}
	if ch := busVarsOf.chat.Load(); ch != nil {
		out["chat"] = ch.Stats()
	}
	return out
}
