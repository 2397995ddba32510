package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/session"
)

// The goroutine engine: one goroutine per connection on a net.Listener,
// the baseline the event loops are measured against and the engine for TLS.
//
// Each connection's goroutine reads into its own 4 KiB buffer and feeds the
// session under the connection's mutex. Work from other goroutines (Handle
// tasks, timers) takes the same mutex: a task is queued on the connection
// and run by whichever goroutine holds or next takes the mutex, so a handler
// that sends to its own connection never deadlocks and tasks keep their
// order.
//
// Write policy (plain TCP): a write goes straight to the socket with a short
// deadline (goroutineStall). What the kernel does not take by then is copied
// to the connection's outbound buffer and a flusher goroutine, started only
// for such a slow peer, writes it (goroutineWriteTimeout per chunk) while
// later writes queue behind it. Transport.Write reports the queued bytes, so
// Config.HighWater and Config.Overflow apply as on the event loops; a writer
// waits at most goroutineStall for a slow peer.
//
// Write policy (TLS): a timed-out write breaks a tls.Conn, so there is no
// short deadline: a write blocks for at most goroutineWriteTimeout, after
// which the connection is closed; nothing is queued and Overflow never
// applies.
//
// Timers are one time.AfterFunc per connection: honest for this engine,
// whose per-connection cost is a goroutine anyway.

const (
	goroutineReadBuffer   = 4 << 10
	goroutineStall        = 10 * time.Millisecond
	goroutineWriteTimeout = 5 * time.Second
)

func init() { registerEngine("goroutine", newGoroutineEngine) }

type goroutineEngine struct {
	opts *Options
	cfg  *session.Config
	log  *slog.Logger
	cap  int

	ln       net.Listener
	stopping atomic.Bool

	mu    sync.Mutex
	table map[uint64]*goConn // open connections by id
	next  uint64             // last id given; ids are never reused
	// lingering are closed connections whose flusher still writes their
	// last bytes; Shutdown cuts them off at its deadline.
	lingering map[*goConn]struct{}

	wg   sync.WaitGroup // accept loop and connection goroutines
	done chan struct{}  // closed when everything has stopped
}

func newGoroutineEngine(opts *Options, cfg *session.Config) (engine, error) {
	limit, err := connLimit(opts.MaxConns, 0)
	if err != nil {
		return nil, err
	}
	e := &goroutineEngine{
		opts:      opts,
		cfg:       cfg,
		log:       opts.Logger,
		cap:       limit,
		table:     make(map[uint64]*goConn),
		lingering: make(map[*goConn]struct{}),
		done:      make(chan struct{}),
	}
	return e, nil
}

func (e *goroutineEngine) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if e.opts.TLSConfig != nil {
		ln = tls.NewListener(ln, e.opts.TLSConfig)
	}
	e.ln = ln
	e.wg.Add(1)
	go e.acceptLoop()
	go func() { e.wg.Wait(); close(e.done) }()
	return nil
}

func (e *goroutineEngine) addr() net.Addr {
	if e.ln == nil {
		return nil
	}
	return e.ln.Addr()
}

func (e *goroutineEngine) capacity() int { return e.cap }

func (e *goroutineEngine) conns() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.table)
}

func (e *goroutineEngine) acceptLoop() {
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
		e.mu.Lock()
		if e.stopping.Load() || len(e.table) >= e.cap {
			full := !e.stopping.Load()
			e.mu.Unlock()
			if full {
				// The socket buffer of a new connection is empty: this
				// write does not block.
				_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = nc.Write(overCapacityResponse)
			}
			nc.Close()
			continue
		}
		e.next++
		c := &goConn{eng: e, nc: nc, id: e.next}
		_, c.isTLS = nc.(*tls.Conn)
		c.mu.Lock() // until serve has run Init: tasks wait for it
		e.table[c.id] = c
		e.wg.Add(1)
		e.mu.Unlock()
		go c.serve()
	}
}

// Execute implements session.Executor; see the engine comment for where fn runs.
func (e *goroutineEngine) Execute(id uint64, fn func(c *session.Conn)) error {
	e.mu.Lock()
	c := e.table[id]
	e.mu.Unlock()
	if c == nil {
		if e.stopping.Load() {
			return session.ErrClosed
		}
		return nil
	}
	c.post(fn)
	return nil
}

// ExecuteAll implements session.Executor. ids is not retained.
func (e *goroutineEngine) ExecuteAll(ids []uint64, fn func(c *session.Conn)) error {
	for _, id := range ids {
		if err := e.Execute(id, fn); err != nil {
			return err
		}
	}
	return nil
}

// snapshot returns the open connections.
func (e *goroutineEngine) snapshot() []*goConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := make([]*goConn, 0, len(e.table))
	for _, c := range e.table {
		cs = append(cs, c)
	}
	return cs
}

func (e *goroutineEngine) broadcast(m *session.Prepared) {
	send := func(c *session.Conn) {
		if c.State() == session.StateOpen {
			_ = c.SendPrepared(m)
		}
	}
	for _, c := range e.snapshot() {
		c.post(send)
	}
}

func (e *goroutineEngine) shutdown(ctx context.Context) error {
	if e.ln == nil {
		return nil
	}
	e.stopping.Store(true)
	e.ln.Close()
	// Each goodbye may block on its write (goroutineWriteTimeout), so they
	// go out in parallel; closing the sockets below ends any still blocked.
	var byes sync.WaitGroup
	for _, c := range e.snapshot() {
		byes.Add(1)
		go func() {
			defer byes.Done()
			c.post(func(sc *session.Conn) {
				switch sc.State() {
				case session.StateOpen:
					_ = sc.Close(session.StatusGoingAway, "server shutting down")
				case session.StateHandshake, session.StateHTTP:
					c.closeAsked = true // not a WebSocket yet: nothing to say goodbye with
				}
			})
		}()
	}
	// Wait for the close handshakes (each ends with the session closing its
	// socket) until ctx is done.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for e.conns() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	// Whatever is left loses its socket: its goroutine's read fails and
	// reports the close to the session.
	for _, c := range e.snapshot() {
		c.nc.Close()
	}
	e.mu.Lock()
	for c := range e.lingering {
		c.nc.Close()
	}
	e.mu.Unlock()
	byes.Wait()
	<-e.done
	return nil
}

// wait returns once shutdown has finished; the accept loop never stops on
// its own (it retries failed accepts).
func (e *goroutineEngine) wait() error {
	if e.ln == nil {
		return errors.New("not listening")
	}
	<-e.done
	return nil
}

// goConn is one connection of the goroutine engine.
type goConn struct {
	sc  session.Conn
	eng *goroutineEngine
	nc  net.Conn
	id  uint64

	mu     sync.Mutex // held while the session runs
	closed bool       // the socket is closed and the session told (under mu)
	// inSession counts nested session calls (under mu): a Transport.Close
	// from inside the session is reported to it only once the outermost
	// call returns.
	inSession  int
	closeAsked bool

	timer   *time.Timer // under mu
	timerAt int64       // under mu; 0: none
	isTLS   bool

	// The slow-peer path (see Write policy). While flushing, the flusher
	// goroutine owns the socket's writes and Write only appends to out.
	wmu        sync.Mutex
	out        []byte // waiting for the flusher
	inflight   int    // bytes the flusher is writing now
	flushing   bool
	closeAfter bool  // the connection is finished: close once out is written
	writeErr   error // why the flusher gave up

	qmu   sync.Mutex
	tasks []func(c *session.Conn)
}

func (c *goConn) serve() {
	defer c.eng.wg.Done()
	// mu is held since the accept loop.
	c.enter()
	c.sc.Init(c.eng.cfg, c, engineClock())
	c.leave()
	c.mu.Unlock()
	c.drain()

	buf := make([]byte, goroutineReadBuffer)
	var err error
	for {
		var n int
		n, err = c.nc.Read(buf)
		if n > 0 {
			c.mu.Lock()
			if !c.closed {
				c.enter()
				c.sc.Feed(buf[:n], engineClock())
				c.leave()
			}
			c.runTasks()
			c.mu.Unlock()
			c.drain()
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	if !c.closed {
		c.wmu.Lock()
		werr := c.writeErr
		c.wmu.Unlock()
		if werr != nil {
			err = werr // the flusher failed and closed the socket
		} else if errors.Is(err, net.ErrClosed) {
			err = nil // closed by the engine (shutdown)
		}
		c.finish(err)
	}
	c.mu.Unlock()
}

// enter and leave bracket every session call (under mu).
func (c *goConn) enter() { c.inSession++ }

func (c *goConn) leave() {
	c.inSession--
	if c.inSession == 0 && c.closeAsked && !c.closed {
		c.finish(nil)
	}
}

// finish closes the socket and tells the session, once (under mu, outside
// any session call).
func (c *goConn) finish(err error) {
	c.closed = true
	c.wmu.Lock()
	linger := c.flushing && err == nil
	c.closeAfter = linger
	c.wmu.Unlock()
	if linger {
		// A clean close (say, after the close handshake) whose last
		// frames still wait: the flusher closes the socket when done.
		c.eng.mu.Lock()
		c.eng.lingering[c] = struct{}{}
		c.eng.mu.Unlock()
	} else {
		c.nc.Close()
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timerAt = 0
	c.sc.TransportClosed(err)
	e := c.eng
	e.mu.Lock()
	delete(e.table, c.id)
	e.mu.Unlock()
	c.qmu.Lock()
	c.tasks = nil
	c.qmu.Unlock()
}

// post queues fn and runs the queue if no one else holds the connection.
func (c *goConn) post(fn func(c *session.Conn)) {
	c.qmu.Lock()
	c.tasks = append(c.tasks, fn)
	c.qmu.Unlock()
	c.drain()
}

// drain runs queued tasks unless another goroutine holds mu, in which case
// that goroutine runs them before it lets go (runTasks) and checks again
// after (drain): no task is left behind.
func (c *goConn) drain() {
	for {
		c.qmu.Lock()
		empty := len(c.tasks) == 0
		c.qmu.Unlock()
		if empty || !c.mu.TryLock() {
			return
		}
		c.runTasks()
		c.mu.Unlock()
	}
}

// runTasks runs the queued tasks (under mu).
func (c *goConn) runTasks() {
	for {
		c.qmu.Lock()
		tasks := c.tasks
		c.tasks = nil
		c.qmu.Unlock()
		if len(tasks) == 0 {
			return
		}
		for _, fn := range tasks {
			if c.closed {
				return
			}
			c.call(fn)
		}
	}
}

// call runs a task, recovering a panic in it: a bug in the poster's
// function must not leave mu locked or crash the poster; the connection is
// closed.
func (c *goConn) call(fn func(c *session.Conn)) {
	c.enter()
	defer func() {
		if v := recover(); v != nil {
			c.eng.log.Error("panic in a connection task; closing the connection", "panic", fmt.Sprint(v))
			if s := c.eng.cfg.Stats; s != nil {
				s.Panics.Add(1)
			}
			c.closeAsked = true
		}
		c.leave()
	}()
	fn(&c.sc)
}

// ---- session.Transport ----

func (c *goConn) Write(p []byte) (int, error) {
	if c.closed || c.closeAsked {
		return 0, session.ErrClosed
	}
	c.wmu.Lock()
	if c.flushing {
		c.out = append(c.out, p...)
		n, err := len(c.out)+c.inflight, c.writeErr
		c.wmu.Unlock()
		return n, err
	}
	c.wmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if c.isTLS {
		_ = c.nc.SetWriteDeadline(time.Now().Add(goroutineWriteTimeout))
		if _, err := c.nc.Write(p); err != nil {
			c.closeAsked = true // the session learns it when its call returns
			return 0, err
		}
		return 0, nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(goroutineStall))
	n, err := c.nc.Write(p)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.closeAsked = true // the peer is gone
		return 0, err
	}
	// A slow peer: the rest waits for a flusher. No flusher runs (flushing
	// was false) and Writes are serialized by mu, so nothing races here.
	c.wmu.Lock()
	c.out = append(c.out[:0], p[n:]...)
	c.flushing = true
	waiting := len(c.out)
	c.wmu.Unlock()
	c.eng.wg.Add(1) // the connection's own goroutine still counts: wg > 0
	go c.flushLoop()
	return waiting, nil
}

// flushLoop writes out until it is empty, then hands writing back to Write
// (or closes the socket of a finished connection).
func (c *goConn) flushLoop() {
	defer c.eng.wg.Done()
	for {
		c.wmu.Lock()
		if len(c.out) == 0 {
			c.flushing = false
			linger := c.closeAfter
			c.wmu.Unlock()
			if linger {
				c.linger()
			}
			return
		}
		buf := c.out
		c.out = nil
		c.inflight = len(buf)
		c.wmu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(goroutineWriteTimeout))
		_, err := c.nc.Write(buf)
		c.wmu.Lock()
		c.inflight = 0
		if err != nil {
			// Give up: closing the socket ends the reader, which reports
			// writeErr to the session.
			c.writeErr = err
			c.out = nil
			c.flushing = false
			linger := c.closeAfter
			c.wmu.Unlock()
			if linger {
				c.linger()
			} else {
				c.nc.Close()
			}
			return
		}
		c.wmu.Unlock()
	}
}

// linger closes the socket of a finished connection whose last bytes are
// written (or given up on).
func (c *goConn) linger() {
	c.nc.Close()
	c.eng.mu.Lock()
	delete(c.eng.lingering, c)
	c.eng.mu.Unlock()
}

func (c *goConn) Close() {
	if !c.closed {
		c.closeAsked = true
	}
}

func (c *goConn) SetTimer(at int64) {
	c.timerAt = at
	if at == 0 {
		if c.timer != nil {
			c.timer.Stop()
		}
		return
	}
	d := time.Duration(at - engineClock())
	if d < 0 {
		d = 0
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.fire)
	} else {
		c.timer.Reset(d)
	}
}

// fire runs on the timer's goroutine.
func (c *goConn) fire() {
	c.post(func(*session.Conn) {
		now := engineClock()
		if c.timerAt != 0 && now >= c.timerAt {
			c.timerAt = 0
			c.sc.Tick(now)
		} else if c.timerAt != 0 {
			c.SetTimer(c.timerAt) // fired early after a Reset race: re-arm
		}
	})
}

func (c *goConn) Handle() session.Handle { return session.NewHandle(c.eng, c.id) }

func (c *goConn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
