// Package goroutine is the goroutine-per-connection engine: blocking I/O on
// a net.Listener (with crypto/tls when configured), under the same core as
// the event loops. It is the baseline the event loops are measured
// against, and the engine for platforms without epoll or kqueue.
//
// Each connection has a reader goroutine with its own 4 KiB buffer; a
// connection that is sent data it did not ask for (a broadcast, a task)
// also gets a writer goroutine. Connections are spread over a few core
// loops, each serialized by a mutex: a reader feeds its bytes under its
// loop's mutex, and a loop goroutine runs the loop's tasks and timers. What
// a connection sends is handed to its writer (at most writeChunk at a time;
// the core queues the rest, bounded by HighWater like on the event loops),
// so a slow peer stalls only its own writer, never a publisher or the loop.
// A reader writes its own connection's replies itself once its call
// returns: a peer that does not read stops its own reader, nothing else.
package goroutine

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/loop/internal/core"
)

func init() { core.Register("goroutine", New) }

const (
	readBuffer = 4 << 10
	// writeChunk bounds what a writer takes from the core at once: like a
	// socket buffer, it lets a burst through while the writer works.
	writeChunk = 256 << 10
)

type engine struct {
	opts  core.Options
	log   *slog.Logger
	g     *core.Group
	loops []*gloop
	next  atomic.Uint32

	ln       net.Listener
	stopping atomic.Bool
	stopOnce sync.Once
	wg       sync.WaitGroup // accept loop, loop, reader and writer goroutines
	done     chan struct{}
	err      error
}

// New makes a goroutine engine.
func New(o *core.Options) (core.Engine, error) {
	capacity, err := core.ConnLimit(o.MaxConns, 0)
	if err != nil {
		return nil, err
	}
	e := &engine{opts: *o, log: o.Logger, done: make(chan struct{})}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.g = core.NewGroup(o.Config, capacity, e.log)
	for i := 0; i < max(o.Loops, 1); i++ {
		l := &gloop{e: e, wake: make(chan struct{}, 1)}
		l.core = e.g.AddLoop(l, l.signal)
		e.loops = append(e.loops, l)
	}
	return e, nil
}

func (e *engine) Group() *core.Group { return e.g }

func (e *engine) Listen(addr string) error {
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if e.opts.TLS != nil {
		ln = tls.NewListener(ln, e.opts.TLS)
	}
	e.ln = ln
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
	e.wg.Add(1)
	go e.acceptLoop()
	return nil
}

func (e *engine) Addr() net.Addr {
	if e.ln == nil {
		return nil
	}
	return e.ln.Addr()
}

func (e *engine) acceptLoop() {
	defer e.wg.Done()
	var delay time.Duration
	for {
		nc, err := e.ln.Accept()
		if err != nil {
			if e.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off as net/http does, then retry.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			e.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		l := e.loops[int(e.next.Add(1))%len(e.loops)]
		l.core.Accepted() // (the Observer's calls are safe from any goroutine)
		if e.stopping.Load() {
			l.core.Refused(core.RefuseShuttingDown)
			nc.Close()
			continue
		}
		if !e.g.Claim() {
			l.core.Refused(core.RefuseCapacity)
			// The socket buffer of a new connection is empty: this write
			// does not block (a TLS connection gets no answer: its
			// handshake would).
			if _, isTLS := nc.(*tls.Conn); !isTLS {
				_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = nc.Write(core.OverCapacityResponse)
			}
			nc.Close()
			continue
		}
		l.serve(nc)
	}
}

func (e *engine) Shutdown(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		defer close(e.done)
		if e.ln == nil {
			return
		}
		if _, ok := ctx.Deadline(); !ok && e.opts.ShutdownTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, e.opts.ShutdownTimeout)
			defer cancel()
		}
		err = e.g.Shutdown(ctx, func() {
			e.stopping.Store(true)
			e.ln.Close()
		}, func() {
			for _, l := range e.loops {
				l := l
				_ = l.core.Post(func() { l.stop = true })
			}
			e.wg.Wait()
		})
	})
	<-e.done
	return err
}

func (e *engine) Wait() error {
	if e.ln == nil {
		return errors.New("not listening")
	}
	<-e.done
	return e.err
}
