//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/session"
)

// The gnet engine: the event-loop design on github.com/panjf2000/gnet/v2.
//
// gnet owns the sockets, the read buffer (one per loop) and the outbound
// buffers. OnTraffic hands the session every buffered byte in place and
// discards them all: the session keeps the tail of a partial frame itself,
// so gnet's per-connection inbound ring buffer stays unallocated.
//
// Everything that touches a connection runs on its loop: tasks from other
// goroutines and timer ticks go through gnet's EventLoop.Execute. gnet's
// OnTick runs on a goroutine of its own, so it only posts a tick task to
// each loop that has timers pending; the loop advances its own timing
// wheel. Connections are named by (slot, generation) in a per-loop table;
// the loop (a gnetLoop) is the session.Executor of its connections.
//
// gnet's outbound buffer is unbounded; Transport.Write reports its size
// (Conn.OutboundBuffered) so that the session's high-water policy bounds it.

func init() { registerEngine("gnet", newGnetEngine) }

// gnetFlushTimeout bounds how long a closing connection waits for gnet's
// outbound buffer to drain before its socket is closed anyway.
const gnetFlushTimeout = 5 * time.Second

type gnetEngine struct {
	gnet.BuiltinEventEngine

	opts *Options
	cfg  *session.Config
	log  *slog.Logger
	cap  int

	eng    gnet.Engine   // set in OnBoot
	laddr  net.Addr      // set in OnBoot
	booted chan struct{} // closed by OnBoot
	done   chan struct{} // closed when gnet.Run has returned
	runErr error         // what gnet.Run returned

	stopping atomic.Bool
	nconns   atomic.Int64

	mu    sync.RWMutex
	loops []*gnetLoop                  // in order of first connection
	byEL  map[gnet.EventLoop]*gnetLoop // gnet's loop -> ours
}

func newGnetEngine(opts *Options, cfg *session.Config) (engine, error) {
	limit, err := connLimit(opts.MaxConns, opts.Loops)
	if err != nil {
		return nil, err
	}
	return &gnetEngine{
		opts:   opts,
		cfg:    cfg,
		log:    opts.Logger,
		cap:    limit,
		booted: make(chan struct{}),
		done:   make(chan struct{}),
		byEL:   make(map[gnet.EventLoop]*gnetLoop),
	}, nil
}

func (e *gnetEngine) listen(addr string) error {
	go func() {
		defer close(e.done)
		e.runErr = gnet.Run(e, "tcp://"+addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(e.opts.Loops),
			gnet.WithTicker(true),
			gnet.WithReuseAddr(true), // like net.Listen: re-listen at once despite TIME_WAIT
			gnet.WithLogger(gnetLogger{e.log}),
		)
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

func (e *gnetEngine) addr() net.Addr { return e.laddr }

func (e *gnetEngine) capacity() int { return e.cap }

func (e *gnetEngine) conns() int { return int(e.nconns.Load()) }

// OnBoot learns the bound address: gnet's listener is private, so it reads
// it from a duplicate of the listening socket.
func (e *gnetEngine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	if fd, err := eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			e.laddr = gnetListenAddr(sa)
		}
		unix.Close(fd)
	}
	close(e.booted)
	return gnet.None
}

func gnetListenAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	}
	return nil
}

// loopOf returns our state for gnet's loop el, creating it on the loop's
// first connection.
func (e *gnetEngine) loopOf(el gnet.EventLoop) *gnetLoop {
	e.mu.RLock()
	l := e.byEL[el]
	e.mu.RUnlock()
	if l != nil {
		return l
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if l = e.byEL[el]; l == nil {
		l = &gnetLoop{e: e, el: el, wheel: newWheel(defaultTick, defaultWheelSlots, engineClock())}
		l.tickTask = gnet.RunnableFunc(l.tick)
		l.runOne = l.runTask
		l.drainTask = gnet.RunnableFunc(func(context.Context) error {
			l.q.drain(l.runOne)
			return nil // an error would stop the loop
		})
		l.q = newTaskQueue(func() error { return l.el.Execute(context.Background(), l.drainTask) })
		e.byEL[el] = l
		e.loops = append(e.loops, l)
	}
	return l
}

func (e *gnetEngine) snapshotLoops() []*gnetLoop {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return append([]*gnetLoop(nil), e.loops...)
}

func (e *gnetEngine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if e.stopping.Load() {
		return nil, gnet.Close // OnClose sees no context and ignores it
	}
	for { // loops open connections concurrently: claim a place atomically
		n := e.nconns.Load()
		if n >= int64(e.cap) {
			return overCapacityResponse, gnet.Close
		}
		if e.nconns.CompareAndSwap(n, n+1) {
			break
		}
	}
	l := e.loopOf(c.EventLoop())
	gc := &gnetConn{gc: c, loop: l}
	gc.id = l.attach(gc)
	c.SetContext(gc)
	gc.inCallback = true
	gc.depth++
	gc.sc.Init(e.cfg, gc, engineClock())
	gc.leave()
	gc.inCallback = false
	return nil, gc.afterCallback()
}

func (e *gnetEngine) OnTraffic(c gnet.Conn) gnet.Action {
	gc, _ := c.Context().(*gnetConn)
	if gc == nil || gc.closeAsked || gc.finished {
		_, _ = c.Discard(-1) // a closing connection's input is ignored
		return gnet.None
	}
	buf, _ := c.Peek(-1)
	gc.inCallback = true
	gc.depth++
	gc.sc.Feed(buf, engineClock()) // may unmask in place: these bytes are discarded below
	gc.leave()
	gc.inCallback = false
	_, _ = c.Discard(-1)
	return gc.afterCallback()
}

func (e *gnetEngine) OnClose(c gnet.Conn, err error) gnet.Action {
	gc, _ := c.Context().(*gnetConn)
	if gc == nil {
		return gnet.None
	}
	gc.gnetClosed = true
	if gc.depth > 0 {
		// A write failed inside a session call: report once it returns.
		gc.loop.setCloseErr(gc.id, err)
		gc.askClose()
		return gnet.None
	}
	gc.finish(err)
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine: it only posts tick tasks.
func (e *gnetEngine) OnTick() (time.Duration, gnet.Action) {
	for _, l := range e.snapshotLoops() {
		if l.timers.Load() > 0 && l.tickQueued.CompareAndSwap(false, true) {
			if err := l.el.Execute(context.Background(), l.tickTask); err != nil {
				l.tickQueued.Store(false)
			}
		}
	}
	return defaultTick, gnet.None
}

func (e *gnetEngine) broadcast(m *session.Prepared) {
	send := func(c *session.Conn) { _ = c.SendPrepared(m) }
	for _, l := range e.snapshotLoops() {
		_ = l.post(func() {
			l.each(func(gc *gnetConn) {
				if gc.usable() && gc.sc.State() == session.StateOpen {
					gc.call(send)
				}
			})
		})
	}
}

func (e *gnetEngine) shutdown(ctx context.Context) error {
	if e.eng == (gnet.Engine{}) {
		return nil
	}
	e.stopping.Store(true)
	for _, l := range e.snapshotLoops() {
		_ = l.post(func() {
			l.each(func(gc *gnetConn) {
				if !gc.usable() {
					return
				}
				gc.call(func(c *session.Conn) {
					switch c.State() {
					case session.StateOpen:
						_ = c.Close(session.StatusGoingAway, "server shutting down")
					case session.StateHandshake, session.StateHTTP:
						gc.askClose() // not a WebSocket yet: nothing to say goodbye with
					}
				})
			})
		})
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for e.nconns.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	// gnet closes what is left (OnClose reports each to its session) and
	// returns from Run once every loop has stopped.
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
	return nil
}

func (e *gnetEngine) wait() error {
	if e.eng == (gnet.Engine{}) {
		return errors.New("not listening")
	}
	<-e.done
	return e.runErr
}

// gnetLoop is our state for one gnet event loop. Apart from the atomics,
// its fields are touched only on that loop.
type gnetLoop struct {
	e     *gnetEngine
	el    gnet.EventLoop
	table []*gnetChunk // connections by slot, in chunks: growth copies no slots
	free  []uint32
	wheel *wheel

	// closeErrs holds why gnet closed a socket during a session call, until
	// the call returns (rare: a failed write); nil when empty.
	closeErrs map[uint64]error

	// q carries tasks from other goroutines in order: gnet's own task
	// queues (EventLoop.Execute) may reorder tasks under load, so Execute
	// only carries the wake-up that drains q.
	q         *taskQueue
	drainTask gnet.Runnable
	runOne    func(t *task)

	timers     atomic.Int32 // wheel.Len(), for OnTick
	tickQueued atomic.Bool  // a tick task is posted and has not run yet
	tickTask   gnet.Runnable
}

// gnetChunkSize slots make one chunk of a loop's table.
const gnetChunkSize = 512

type gnetChunk struct {
	conns [gnetChunkSize]*gnetConn // nil: free
	gens  [gnetChunkSize]uint32    // generation of each slot, bumped when it is freed
}

// attach gives gc a slot and returns its id: generation<<32 | slot.
func (l *gnetLoop) attach(gc *gnetConn) uint64 {
	var i uint32
	if n := len(l.free); n > 0 {
		i = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		// A new chunk; its slots go to the free list, lowest last.
		base := uint32(len(l.table) * gnetChunkSize)
		l.table = append(l.table, new(gnetChunk))
		for j := uint32(gnetChunkSize - 1); j > 0; j-- {
			l.free = append(l.free, base+j)
		}
		i = base
	}
	ch := l.table[i/gnetChunkSize]
	ch.conns[i%gnetChunkSize] = gc
	return uint64(ch.gens[i%gnetChunkSize])<<32 | uint64(i)
}

func (l *gnetLoop) detach(id uint64) {
	i := uint32(id)
	ch := l.table[i/gnetChunkSize]
	ch.conns[i%gnetChunkSize] = nil
	ch.gens[i%gnetChunkSize]++
	l.free = append(l.free, i)
}

// lookup returns the connection id names, or nil when it is gone.
func (l *gnetLoop) lookup(id uint64) *gnetConn {
	i := uint32(id)
	if int(i/gnetChunkSize) >= len(l.table) {
		return nil
	}
	ch := l.table[i/gnetChunkSize]
	if ch.gens[i%gnetChunkSize] != uint32(id>>32) {
		return nil
	}
	return ch.conns[i%gnetChunkSize]
}

// each calls fn for every connection of the loop.
func (l *gnetLoop) each(fn func(gc *gnetConn)) {
	for _, ch := range l.table {
		for _, gc := range ch.conns {
			if gc != nil {
				fn(gc)
			}
		}
	}
}

func (l *gnetLoop) setCloseErr(id uint64, err error) {
	if err == nil {
		return
	}
	if l.closeErrs == nil {
		l.closeErrs = make(map[uint64]error)
	}
	l.closeErrs[id] = err
}

// takeCloseErr returns and forgets what setCloseErr kept for id.
func (l *gnetLoop) takeCloseErr(id uint64) error {
	err, ok := l.closeErrs[id]
	if ok {
		delete(l.closeErrs, id)
		if len(l.closeErrs) == 0 {
			l.closeErrs = nil
		}
	}
	return err
}

// post runs fn on the loop, after every task posted before.
func (l *gnetLoop) post(fn func()) error { return l.enqueue(task{run: fn}) }

func (l *gnetLoop) enqueue(t task) error {
	if err := l.q.post(t); err != nil {
		return session.ErrClosed
	}
	return nil
}

// runTask runs one task of q on the loop.
func (l *gnetLoop) runTask(t *task) {
	switch {
	case t.run != nil:
		t.run()
	case t.ids != nil:
		for _, id := range t.ids {
			if gc := l.lookup(id); gc != nil && gc.usable() {
				gc.call(t.fn)
			}
		}
	default:
		if gc := l.lookup(t.id); gc != nil && gc.usable() {
			gc.call(t.fn)
		}
	}
}

// Execute implements session.Executor. Tasks of one loop run in the order
// they were posted.
func (l *gnetLoop) Execute(id uint64, fn func(c *session.Conn)) error {
	return l.enqueue(task{id: id, fn: fn})
}

// ExecuteAll implements session.Executor. ids must not change until the
// task has run (Room hands over a list it no longer modifies).
func (l *gnetLoop) ExecuteAll(ids []uint64, fn func(c *session.Conn)) error {
	if len(ids) == 0 {
		return nil
	}
	return l.enqueue(task{ids: ids, fn: fn})
}

// tick is the loop's timer task.
func (l *gnetLoop) tick(context.Context) error {
	l.tickQueued.Store(false)
	now := engineClock()
	l.wheel.Advance(now, func(id uint64, at int64) {
		gc := l.lookup(id)
		if gc == nil || gc.finished {
			return
		}
		if gc.closeAsked {
			gc.flush(now)
			return
		}
		if gc.timerAt == 0 || gc.timerAt != at {
			return // replaced or cancelled: lazy deletion
		}
		gc.timerAt = 0
		gc.depth++
		gc.sc.Tick(now)
		gc.leave()
	})
	l.timers.Store(int32(l.wheel.Len()))
	return nil
}

func (l *gnetLoop) addTimer(id uint64, at int64) {
	l.wheel.Add(id, at)
	l.timers.Store(int32(l.wheel.Len()))
}

// gnetConn is one connection of the gnet engine; gnet's Conn context points
// to it. All fields are touched only on its loop.
type gnetConn struct {
	sc   session.Conn
	gc   gnet.Conn
	loop *gnetLoop
	id   uint64
	// timerAt is the session's timer (0: none); once the connection is
	// closing, when to stop waiting for its outbound buffer.
	timerAt int64

	depth      int32 // nesting of session calls
	inCallback bool  // inside OnOpen or OnTraffic: close by returning gnet.Close
	closeAsked bool  // Transport.Close was called (or the socket failed)
	gnetClosed bool  // gnet has closed the socket
	finished   bool  // the session was told (TransportClosed)
}

// askClose marks the connection for closing once the current session call
// returns; timerAt becomes the flush deadline (set by flush).
func (gc *gnetConn) askClose() {
	if !gc.closeAsked {
		gc.closeAsked = true
		gc.timerAt = 0
	}
}

// usable reports whether tasks may still run on the connection.
func (gc *gnetConn) usable() bool { return !gc.closeAsked && !gc.finished }

// call runs a task on the connection, recovering a panic in it (a bug in
// the caller's function must not stop the loop): the connection is closed.
func (gc *gnetConn) call(fn func(c *session.Conn)) {
	gc.depth++
	defer func() {
		if v := recover(); v != nil {
			gc.loop.e.log.Error("panic in a connection task; closing the connection", "panic", fmt.Sprint(v))
			if s := gc.loop.e.cfg.Stats; s != nil {
				s.Panics.Add(1)
			}
			gc.askClose()
		}
		gc.leave()
	}()
	fn(&gc.sc)
}

// leave ends a session call; the outermost one carries out a close the
// session asked for meanwhile.
func (gc *gnetConn) leave() {
	gc.depth--
	if gc.depth > 0 || !gc.closeAsked || gc.finished {
		return
	}
	if gc.gnetClosed {
		gc.finish(gc.loop.takeCloseErr(gc.id))
		return
	}
	if gc.inCallback {
		return // OnOpen/OnTraffic returns gnet.Close (afterCallback)
	}
	gc.flush(engineClock())
}

// afterCallback is the action OnOpen and OnTraffic return.
func (gc *gnetConn) afterCallback() gnet.Action {
	if !gc.closeAsked || gc.finished || gc.gnetClosed {
		return gnet.None
	}
	if gc.gc.OutboundBuffered() > 0 {
		gc.flush(engineClock()) // waits for the buffer on the loop's ticks
		return gnet.None
	}
	return gnet.Close
}

// flush closes the socket once gnet's outbound buffer is empty, or at
// gnetFlushTimeout after the close was asked; until then it rechecks on
// the loop's ticks. (Shutdown's deadline ends the wait too: gnet then
// closes every socket.)
func (gc *gnetConn) flush(now int64) {
	if gc.timerAt == 0 {
		gc.timerAt = now + int64(gnetFlushTimeout)
	}
	if gc.gc.OutboundBuffered() > 0 && now < gc.timerAt {
		gc.loop.addTimer(gc.id, now+int64(defaultTick))
		return
	}
	_ = gc.loop.el.Close(gc.gc) // calls OnClose, which finishes
}

// finish tells the session its socket is gone and frees the slot.
func (gc *gnetConn) finish(err error) {
	gc.finished = true
	gc.closeAsked = true
	gc.timerAt = 0
	l := gc.loop
	l.detach(gc.id)
	gc.depth++ // a handler's calls from OnClose must not re-enter finish
	gc.sc.TransportClosed(err)
	gc.depth--
	gc.gc.SetContext(nil)
	// Only now may another loop admit a connection in this one's place:
	// handlers must never see more than MaxConns open at once.
	l.e.nconns.Add(-1)
}

// ---- session.Transport ----

func (gc *gnetConn) Write(p []byte) (int, error) {
	if gc.finished || gc.gnetClosed {
		return 0, session.ErrClosed
	}
	if len(p) == 0 {
		return gc.gc.OutboundBuffered(), nil // the session asks how much waits
	}
	if _, err := gc.gc.Write(p); err != nil {
		return 0, err
	}
	if gc.gnetClosed { // the write failed and gnet closed the socket
		return 0, session.ErrClosed
	}
	return gc.gc.OutboundBuffered(), nil
}

func (gc *gnetConn) Close() { gc.askClose() }

func (gc *gnetConn) SetTimer(at int64) {
	if gc.closeAsked {
		return // timerAt is the flush deadline now
	}
	gc.timerAt = at
	if at != 0 {
		gc.loop.addTimer(gc.id, at)
	}
}

func (gc *gnetConn) Handle() session.Handle { return session.NewHandle(gc.loop, gc.id) }

func (gc *gnetConn) RemoteAddr() net.Addr { return gc.gc.RemoteAddr() }

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
