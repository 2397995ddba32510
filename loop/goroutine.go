package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
// Write policy: writes go straight to the net.Conn with a write deadline
// (goroutineWriteTimeout); nothing is buffered, so Transport.Write reports 0
// bytes waiting and the high-water policy never triggers. A peer that does
// not read blocks its writer for at most the deadline, after which the
// connection is closed. Timers are one time.AfterFunc per connection: honest
// for this engine, whose per-connection cost is a goroutine anyway.

const (
	goroutineReadBuffer   = 4 << 10
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

	wg   sync.WaitGroup // accept loop and connection goroutines
	done chan struct{}  // closed when everything has stopped
}

func newGoroutineEngine(opts *Options, cfg *session.Config) (engine, error) {
	limit, err := connLimit(opts.MaxConns, 0)
	if err != nil {
		return nil, err
	}
	e := &goroutineEngine{
		opts:  opts,
		cfg:   cfg,
		log:   opts.Logger,
		cap:   limit,
		table: make(map[uint64]*goConn),
		done:  make(chan struct{}),
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
		if errors.Is(err, net.ErrClosed) {
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
	c.nc.Close()
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
	if len(p) == 0 {
		return 0, nil // nothing ever waits here
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(goroutineWriteTimeout))
	if _, err := c.nc.Write(p); err != nil {
		// A peer that does not read (deadline) or is gone: the connection
		// is over; the session learns it when its current call returns.
		c.closeAsked = true
		return 0, err
	}
	return 0, nil
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
