//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

// Package gnet registers the "gnet" engine: the event-loop design on
// github.com/panjf2000/gnet/v2, under the same core as the epoll engine.
// It is opt-in, so that a program that does not use it links neither gnet
// nor its dependencies (ants starts pool goroutines at init):
//
//	import _ "github.com/wsloop/wsloop/loop/gnet"
//
// gnet owns the sockets, the read buffer (one per loop) and an outbound
// buffer per connection. OnTraffic hands the core every buffered byte in
// place and discards them all: the session keeps the tail of a partial
// frame itself, so gnet's inbound ring buffer stays unallocated. The core
// hands gnet bytes only while gnet's outbound buffer is empty, so gnet
// holds at most one write's worth per connection; the rest waits in the
// core's queue, bounded by HighWater like on the epoll engine. gnet reports
// no writability, so a connection whose bytes wait is looked at again on
// the next tick (100 ms) or traffic: slow peers are served in that rhythm.
//
// gnet's OnTick runs on a goroutine of its own: it only posts a tick task to
// each loop (EventLoop.Execute), which advances the loop's timing wheel.
// gnet closes a socket on EOF, so a client that half-closes while its plain
// HTTP request is answered loses the answer on this engine.
package gnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/loop/internal/core"
)

func init() { core.Register("gnet", New) }

// tick is how often gnet's ticker wakes the loops.
const tick = 100 * time.Millisecond

type engine struct {
	gnet.BuiltinEventEngine

	opts core.Options
	log  *slog.Logger
	g    *core.Group

	eng    gnet.Engine   // set in OnBoot
	laddr  net.Addr      // set in OnBoot
	booted chan struct{} // closed by OnBoot
	done   chan struct{} // closed when gnet.Run has returned
	runErr error         // what gnet.Run returned

	stopping atomic.Bool
	stopOnce sync.Once

	mu    sync.Mutex
	loops []*gloop                  // all, bound to a gnet loop or not yet
	byEL  map[gnet.EventLoop]*gloop // gnet's loop -> ours
}

// New makes a gnet engine.
func New(o *core.Options) (core.Engine, error) {
	if o.TLS != nil {
		return nil, errors.New("TLS is not supported by the gnet engine yet: use -engine goroutine (Options.Engine \"goroutine\") or terminate TLS in a proxy")
	}
	capacity, err := core.ConnLimit(o.MaxConns, o.Loops)
	if err != nil {
		return nil, err
	}
	e := &engine{opts: *o, log: o.Logger, booted: make(chan struct{}), done: make(chan struct{}),
		byEL: make(map[gnet.EventLoop]*gloop)}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.g = core.NewGroup(o.Config, capacity, e.log)
	for i := 0; i < max(o.Loops, 1); i++ {
		l := &gloop{e: e}
		l.drainTask = gnet.RunnableFunc(func(context.Context) error { l.core.RunTasks(); return nil })
		l.tickTask = gnet.RunnableFunc(l.tick)
		l.core = e.g.AddLoop(l, l.wake)
		e.loops = append(e.loops, l)
	}
	return e, nil
}

func (e *engine) Group() *core.Group { return e.g }

func (e *engine) Listen(addr string) error {
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(len(e.loops)),
		gnet.WithTicker(true),
		gnet.WithReuseAddr(true), // like net.Listen: re-listen at once despite TIME_WAIT
		gnet.WithReusePort(true), // worker processes share the port
		gnet.WithLogger(gnetLogger{e.log}),
	}
	if e.opts.SendBuffer > 0 {
		opts = append(opts, gnet.WithSocketSendBuffer(e.opts.SendBuffer))
	}
	go func() {
		defer close(e.done)
		e.runErr = gnet.Run(e, "tcp://"+addr, opts...)
	}()
	select {
	case <-e.booted:
		return nil
	case <-e.done:
		if e.runErr == nil {
			e.runErr = errors.New("gnet stopped before it started")
		}
		return e.runErr
	}
}

func (e *engine) Addr() net.Addr { return e.laddr }

// OnBoot learns the bound address: gnet's listener is private, so it reads
// it from a duplicate of the listening socket.
func (e *engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	if fd, err := eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				e.laddr = &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
			case *unix.SockaddrInet6:
				e.laddr = &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
			}
		}
		unix.Close(fd)
	}
	close(e.booted)
	return gnet.None
}

// loopOf returns our loop for gnet's loop el, binding a free one to it on
// el's first connection.
func (e *engine) loopOf(el gnet.EventLoop) *gloop {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.byEL[el]; l != nil {
		return l
	}
	for _, l := range e.loops {
		if l.el.Load() == nil {
			l.el.Store(&el)
			e.byEL[el] = l
			if l.core.Pending() {
				l.core.RunTasks() // posted before it had a loop to run on
			}
			return l
		}
	}
	panic("wsloop: gnet runs more event loops than it was asked for")
}

func (e *engine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	l := e.loopOf(c.EventLoop())
	l.core.Accepted()
	if e.stopping.Load() {
		l.core.Refused(core.RefuseShuttingDown)
		return nil, gnet.Close // OnClose sees no context and ignores it
	}
	if !e.g.Claim() {
		l.core.Refused(core.RefuseCapacity)
		return core.OverCapacityResponse, gnet.Close
	}
	ref := l.add(c)
	l.inCall = ref
	var peer netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr().Unmap()
	}
	l.core.StartServer(ref.c, peer)
	l.inCall = nil
	return nil, l.afterCall(ref)
}

func (e *engine) OnTraffic(c gnet.Conn) gnet.Action {
	ref, _ := c.Context().(*gref)
	if ref == nil || ref.c == nil {
		_, _ = c.Discard(-1) // a finished connection's input is ignored
		return gnet.None
	}
	l := ref.l
	buf, _ := c.Peek(-1)
	l.inCall = ref
	l.core.Input(ref.c, buf) // may unmask in place: these bytes are discarded below
	l.inCall = nil
	_, _ = c.Discard(-1)
	if ref.c != nil && ref.wantWrite && c.OutboundBuffered() == 0 {
		l.core.Writable(ref.c)
	}
	return l.afterCall(ref)
}

func (e *engine) OnClose(c gnet.Conn, err error) gnet.Action {
	ref, _ := c.Context().(*gref)
	if ref == nil {
		return gnet.None
	}
	ref.gnetClosed = true
	l := ref.l
	delete(l.closing, ref)
	if ref.c != nil {
		if err == nil {
			err = io.EOF
		}
		// gnet has closed the socket already: nothing can be answered.
		l.core.Hangup(ref.c, fmt.Errorf("wsloop: connection closed: %w", err))
	}
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine: it only posts tick tasks.
func (e *engine) OnTick() (time.Duration, gnet.Action) {
	e.mu.Lock()
	loops := append([]*gloop(nil), e.loops...)
	e.mu.Unlock()
	for _, l := range loops {
		el := l.el.Load()
		if el != nil && l.tickQueued.CompareAndSwap(false, true) {
			if err := (*el).Execute(context.Background(), l.tickTask); err != nil {
				l.tickQueued.Store(false)
			}
		}
	}
	return tick, gnet.None
}

func (e *engine) Shutdown(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		if e.eng == (gnet.Engine{}) {
			return
		}
		if _, ok := ctx.Deadline(); !ok && e.opts.ShutdownTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, e.opts.ShutdownTimeout)
			defer cancel()
		}
		err = e.g.Shutdown(ctx, func() { e.stopping.Store(true) }, e.stop)
		<-e.done
	})
	return err
}

// stop tears every loop down on its goroutine, then stops gnet.
func (e *engine) stop() {
	var wg sync.WaitGroup
	for _, l := range e.loops {
		l := l
		el := l.el.Load()
		if el == nil {
			l.core.Teardown() // never ran: nobody else touches it
			continue
		}
		wg.Add(1)
		task := gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			l.core.Teardown()
			for ref := range l.closing {
				_ = (*el).Close(ref.gc)
			}
			return nil
		})
		if (*el).Execute(context.Background(), task) != nil {
			wg.Done()
		}
	}
	wg.Wait()
	// Engine.Stop polls for the end every 500 ms; Run's return is sooner.
	stopCtx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := e.eng.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
			e.log.Debug("gnet stop", "err", err)
		}
	}()
	<-e.done
	cancel()
	<-stopped
}

func (e *engine) Wait() error {
	if e.eng == (gnet.Engine{}) {
		return errors.New("not listening")
	}
	<-e.done
	return e.runErr
}

// gnetLogger routes gnet's logs to slog. gnet's Info lines (its start
// banner) are logged at Debug: the server's own start line says it all.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) log(level slog.Level, format string, args []any) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "engine", "gnet")
	}
}

func (g gnetLogger) Debugf(format string, args ...any) { g.log(slog.LevelDebug, format, args) }
func (g gnetLogger) Infof(format string, args ...any)  { g.log(slog.LevelDebug, format, args) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.log(slog.LevelWarn, format, args) }
func (g gnetLogger) Errorf(format string, args ...any) { g.log(slog.LevelError, format, args) }
func (g gnetLogger) Fatalf(format string, args ...any) { g.log(slog.LevelError, format, args) }
