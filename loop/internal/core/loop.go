package core

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsloop/wsloop/session"
)

// ErrWriteTimeout is the error OnClose receives when the peer took none of
// the queued bytes for Config.WriteTimeout.
var ErrWriteTimeout = errors.New("wsloop: the peer took none of the queued bytes within the write timeout")

// maxKeepOut bounds the capacity a loop keeps in its call output between
// calls: one large message does not pin its size for the loop's life.
const maxKeepOut = 256 << 10

// keyDial marks wheel keys of dial deadlines (the rest is the conn's id).
const keyDial = 1 << 63

// Far deadlines (a keepalive ping 30 s away, an idle timeout) are not put
// in the wheel, where each would cost an entry (16 bytes) per idle
// connection: a sweep of the table every sweepPeriod hands each to the
// wheel once it is within sweepHorizon, so it still fires on time.
var (
	sweepPeriod  = int64(time.Second)
	sweepHorizon = int64(3 * time.Second)
)

// Loop is one event loop's connections and everything the engines share
// about them: the connection table, the calls into each connection's
// machine and what follows them (writes, queues, closes, timers), the task
// queue from other goroutines, fan-out and shutdown. Its Driver only polls
// and moves bytes.
//
// A Loop is used by one goroutine at a time: the driver calls it from the
// loop's goroutine (an engine whose I/O runs on many goroutines serializes
// them). Only Execute, ExecuteAll and Post may be called from anywhere.
type Loop struct {
	g   *Group
	idx int
	drv Driver
	t   table
	w   *wheel
	q   *taskQueue
	io  session.IO // the call in progress (one at a time)

	outs   map[int32]*outQueue // unsent bytes by slot (flagOut)
	spareQ []*outQueue
	pool   blockPool
	iov    [][]byte

	dials map[int32]*dialState

	// TLS connections' state by slot (flagTLS), and the loop's buffers for
	// them: records being read, their plaintext, ciphertext being sent.
	tlss   map[int32]*tlsConn
	rec    []byte
	plain  []byte
	tlsOut []byte

	swept   int   // conns with flagSwept
	sweepAt int64 // when the next sweep is due (0: none)

	cur *Conn // the connection of the call in progress (prep)

	// LoopTick's figures (Observer): since tickAt, the time idle in the
	// poller and the latest a timer ran.
	tickAt, idleAt, idle, lag int64

	sockets atomic.Int32 // connections in the table, for snapshots

	// What the loop's queues hold, for Group.Queued (from any goroutine):
	// pending bytes, and the memory of their blocks.
	queued, queueMem atomic.Int64

	stopped bool

	// funcs made once so that the loop's steady state allocates nothing
	fireFn func(key uint64, at int64)
	taskFn func(t *task)
}

// dialState is what a client connection needs until its handshake is done.
type dialState struct {
	req      *session.ClientRequest
	h        session.Handler
	deadline int64
}

// Index is the loop's position in its group.
func (l *Loop) Index() int { return l.idx }

// Group is the loop's group.
func (l *Loop) Group() *Group { return l.g }

// Stopped reports whether Teardown has run.
func (l *Loop) Stopped() bool { return l.stopped }

// Conns is the number of connections the loop holds.
func (l *Loop) Conns() int { return l.t.n }

// ---- From any goroutine ----

// Execute implements session.Executor.
func (l *Loop) Execute(id uint64, fn func(c *session.Conn), missed func(), cost int) error {
	return l.q.post(task{id: id, fn: fn, missed: missed, cost: cost})
}

// ExecuteAll implements session.Executor.
func (l *Loop) ExecuteAll(ids []uint64, fn func(c *session.Conn), cost int) error {
	if len(ids) == 0 {
		return nil
	}
	return l.q.post(task{ids: ids, fn: fn, cost: cost, start: Now()})
}

// Post runs fn on the loop: engine housekeeping, never refused for the
// queue's bounds (only once the loop has stopped).
func (l *Loop) Post(fn func()) error { return l.q.postControl(fn) }

// ---- For the driver, on the loop's goroutine ----

// Pending reports whether tasks may wait: call RunTasks.
func (l *Loop) Pending() bool { return l.q.pending() }

// RunTasks runs the tasks posted so far.
func (l *Loop) RunTasks() { l.q.drain(l.taskFn) }

// Advance runs the timers that are due.
func (l *Loop) Advance() {
	now := Now()
	l.w.Advance(now, l.fireFn)
	if l.swept > 0 && now >= l.sweepAt {
		l.sweep(now)
	}
	l.tickReport(now)
}

// sweep hands the far deadlines that came near to the wheel.
func (l *Loop) sweep(now int64) {
	l.t.each(func(c *Conn) {
		if c.has(flagSwept) && l.nextAt(c, now)-now <= sweepHorizon {
			l.rearm(c)
		}
	})
	l.sweepAt = 0
	if l.swept > 0 {
		l.sweepAt = now + sweepPeriod
	}
}

// Timeout is how long the loop may sleep before Advance has work: in
// milliseconds, -1 for no limit.
func (l *Loop) Timeout() int {
	next := l.w.Next()
	if l.swept > 0 && (next < 0 || l.sweepAt < next) {
		next = l.sweepAt
	}
	if next < 0 {
		return -1
	}
	d := next - Now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// Lookup returns the live connection of a slot (a poller token), or nil.
func (l *Loop) Lookup(slot int32) *Conn {
	c := l.t.bySlot(slot)
	if c == nil || !c.live() {
		return nil
	}
	return c
}

// NewConn gives a socket a slot; fd is the driver's handle for it. The
// driver has claimed a place (Group.Claim) and then registers the socket
// with c.Slot() as its token and calls StartServer or Connecting, or
// Discard when it cannot register it.
func (l *Loop) NewConn(fd int) *Conn {
	c := l.t.alloc()
	c.fd = int32(fd)
	l.sockets.Add(1)
	return c
}

// Discard frees the slot of a connection that was never started (its
// socket is the driver's to close) and releases its claimed place.
func (l *Loop) Discard(c *Conn) { l.free(c) }

// free gives c's slot and place back.
func (l *Loop) free(c *Conn) {
	l.t.release(c)
	l.sockets.Add(-1)
	// Only now may another connection take the place: handlers never see
	// more than the capacity open.
	l.g.release(l)
}

// StartServer starts a server-role connection on an accepted socket from
// peer (the zero Addr when the driver does not know it): the per-client
// limits may refuse it with a 429 or 503 answer. When the group speaks TLS
// its TLS handshake comes first.
func (l *Loop) StartServer(c *Conn, peer netip.Addr) {
	if lim := l.g.limits; lim != nil {
		if !lim.BeginHandshake() {
			l.refuse(c, RefuseHandshakesInProgress)
			return
		}
		c.flags |= flagHSGate
		switch {
		case !peer.IsValid():
		case lim.Proxied(peer):
			c.flags |= flagProxied
		default:
			t, reason, ok := lim.Admit(peer, Now())
			if !ok {
				l.refuse(c, reason)
				return
			}
			c.ticket = t
		}
	}
	if l.g.tls != nil {
		l.startTLS(c, "")
		return
	}
	c.flags |= flagStarted
	c.m.InitServer(l.prep(c), l.g.cfg)
	l.settle(c)
}

// refuse answers a connection a limit turned away (before its session
// starts) and closes it. A TLS connection gets no answer: a plain one
// would be garbage to its client, and a handshake costs what the limit
// saves.
func (l *Loop) refuse(c *Conn, reason RefuseReason) {
	if l.g.tls == nil {
		_, _ = l.drv.Write(c, [][]byte{RefusalResponse(reason)}) // a new socket's buffer takes it
	}
	l.Refused(reason)
	l.release(c)
	c.flags |= flagClosed
	l.drv.Close(c)
	l.free(c)
}

// endHandshake gives back c's place among the handshakes in progress.
func (l *Loop) endHandshake(c *Conn) {
	if c.has(flagHSGate) {
		c.flags &^= flagHSGate
		l.g.limits.EndHandshake()
	}
}

// release gives back what c holds in the limits.
func (l *Loop) release(c *Conn) {
	lim := l.g.limits
	if lim == nil {
		return
	}
	l.endHandshake(c)
	if c.ticket != 0 {
		lim.Release(c.ticket, Now())
		c.ticket = 0
	}
}

// admitRequest is the session's IO.Admit: a client behind a trusted proxy
// is admitted by the address its request names, once per connection.
func (l *Loop) admitRequest(r *session.Request) error {
	c := l.cur
	if c == nil || !c.has(flagProxied) {
		return nil
	}
	c.flags &^= flagProxied
	lim := l.g.limits
	client := lim.Client(r.RemoteAddrPort().Addr(), r)
	if !client.IsValid() {
		return nil
	}
	t, reason, ok := lim.Admit(client, Now())
	if !ok {
		l.Refused(reason)
		c.flags |= flagCounted
		status := 429
		if reason == RefuseHandshakesInProgress || reason == RefuseCapacity {
			status = 503
		}
		return &session.RejectError{Status: status, Message: reason.String(), Header: "Retry-After: 1"}
	}
	c.ticket = t
	return nil
}

// Input hands bytes read from c's socket to its machine. p may be modified
// in place and is not retained.
func (l *Loop) Input(c *Conn, p []byte) {
	if !c.live() || c.has(flagCloseReq) {
		return
	}
	if c.has(flagTLS) {
		l.tlsInput(c, p)
		return
	}
	if !c.has(flagStarted) {
		return
	}
	c.m.Feed(l.prep(c), p)
	l.settle(c)
}

// Writable says c's socket takes bytes again: what waits is written.
func (l *Loop) Writable(c *Conn) {
	if !c.live() {
		return
	}
	if !c.has(flagOut) {
		l.setWrite(c, false)
		return
	}
	q := l.outs[c.slot]
	defer l.account(q, q.pending())
	tlsc := c.has(flagTLS)
	for !q.empty() {
		if tlsc && q.n == 0 {
			// The next records, sealed as their turn comes and written
			// from the loop's buffer: only what the socket does not take
			// is copied into the queue.
			if !l.writeSealed(c, q) {
				return
			}
			continue
		}
		bufs := q.iovecs(l.iov, !tlsc)
		want := 0
		for _, b := range bufs {
			want += len(b)
		}
		n, err := l.drv.Write(c, bufs)
		clear(bufs)
		if n > 0 {
			q.advance(n, &l.pool)
			q.since = Now()
		}
		if err != nil {
			l.finish(c, err)
			return
		}
		if n < want {
			return // full again: the driver reports the next chance
		}
	}
	l.dropQueue(c)
	if !l.setWrite(c, false) {
		return
	}
	if c.has(flagCloseReq) {
		l.finish(c, nil)
		return
	}
	if c.has(flagStarted) {
		c.m.Drained(l.prep(c))
		l.settle(c)
	}
	if c.live() && !c.has(flagOut) {
		l.rearm(c) // the write timeout no longer applies
	}
}

// Hangup says c's socket is gone (err: io.EOF for an orderly end, or what
// the driver saw). A client that half-closes while its plain HTTP request
// is being answered still gets the answer; an event stream's client that
// does is gone (session.StateStream).
func (l *Loop) Hangup(c *Conn, err error) {
	if !c.live() {
		return
	}
	if err == io.EOF && c.has(flagStarted) && !c.has(flagCloseReq) && c.m.State() == session.StateHTTP {
		if !c.has(flagNoRead) {
			c.flags |= flagNoRead
			l.interest(c)
		}
		return
	}
	if err == io.EOF && c.has(flagCloseReq) && c.has(flagOut) {
		// The peer half-closed behind its close frame (or its last
		// request) and still reads: the close under way ends the
		// connection once what it queued is written, or at its linger.
		if !c.has(flagNoRead) {
			c.flags |= flagNoRead
			l.interest(c)
		}
		return
	}
	if c.has(flagConnecting) {
		l.ConnectFailed(c, err)
		return
	}
	if c.has(flagTLSHS) {
		l.countTLS(c, tlsFailed) // the peer left (or broke) mid-handshake
	}
	if err == ErrWriteTimeout {
		if st := c.m.Config().Stats; st != nil {
			st.SlowClosed.Add(1)
		}
	}
	l.finish(c, err)
}

// Connecting records a client socket whose non-blocking connect is in
// progress: Connected or ConnectFailed follow, at the latest at deadline
// (then ConnectFailed with ETIMEDOUT).
func (l *Loop) Connecting(c *Conn, req *session.ClientRequest, h session.Handler, deadline int64) {
	c.flags |= flagConnecting
	if l.dials == nil {
		l.dials = make(map[int32]*dialState)
	}
	l.dials[c.slot] = &dialState{req: req, h: h, deadline: deadline}
	l.w.Add(c.ID()|keyDial, deadline)
}

// Connected starts the handshake of a client socket whose connect has
// completed.
func (l *Loop) Connected(c *Conn) {
	if !c.live() || !c.has(flagConnecting) {
		return
	}
	ds := l.dials[c.slot]
	if l.g.tls != nil {
		c.flags = c.flags&^flagConnecting | flagDialing
		l.startTLS(c, serverNameOf(ds.req.Host)) // InitClient once it is done
		return
	}
	c.flags = c.flags&^flagConnecting | flagDialing | flagStarted
	c.m.InitClient(l.prep(c), l.g.cfg, ds.req, ds.h)
	l.settle(c)
}

// ConnectFailed ends a client socket whose connect failed: there is no
// session yet, so its handler hears of it directly (OnClose with
// StatusAbnormal and err).
func (l *Loop) ConnectFailed(c *Conn, err error) {
	if !c.live() || !c.has(flagConnecting) {
		return
	}
	ds := l.dials[c.slot]
	delete(l.dials, c.slot)
	c.flags |= flagClosed
	l.drv.Close(c)
	if ds != nil {
		c.m.FailClient(l.prep(c), ds.h, err)
		l.io.Reset()
	}
	l.free(c)
}

// FailDial reports a dial that never got a socket or a slot to h.
func (l *Loop) FailDial(h session.Handler, err error) {
	var m session.Machine // rare: allocated
	m.FailClient(&l.io, h, err)
	l.io.Reset()
}

// ---- Calls and what follows them ----

// prep sets up the loop's IO for a call into c's machine.
func (l *Loop) prep(c *Conn) *session.IO {
	io := &l.io
	io.Now = Now()
	io.Exec, io.ID = l, c.ID()
	l.cur = c
	io.Queued = 0
	if c.has(flagOut) {
		io.Queued = l.outs[c.slot].pending()
	}
	return io
}

// settle acts on what a call into c's machine answered: writes, the close,
// the deadline.
func (l *Loop) settle(c *Conn) {
	io := &l.io
	l.cur = nil
	l.observeCall(c, &io.Events)
	if c.has(flagHSGate) && c.m.State() != session.StateHandshake {
		l.endHandshake(c) // the handshake is over: its place goes (the ticket stays)
	}
	if c.m.State() == session.StateHTTP {
		c.flags |= flagCounted // a plain request: not a handshake
	}
	closeReq, rearm := io.Close, io.Rearm
	if (len(io.Out) > 0 || len(io.Pong) > 0) && c.live() {
		l.send(c, io)
	}
	io.Reset()
	if cap(io.Out) > maxKeepOut {
		io.Out = nil
	}
	if !c.live() {
		return
	}
	if c.has(flagDialing) && c.has(flagStarted) && c.m.State() != session.StateHandshake {
		c.flags &^= flagDialing
		delete(l.dials, c.slot)
	}
	if (closeReq || c.has(flagNoRead) && c.m.State() == session.StateHandshake) && !c.has(flagCloseReq) {
		// (The second: a client that half-closed got its HTTP answer and
		// will send no other request.)
		c.flags |= flagCloseReq
		if c.has(flagTLS) {
			l.closeNotify(c) // behind the machine's last bytes
			if !c.live() {
				return
			}
		}
	}
	if c.has(flagCloseReq) {
		if !c.has(flagOut) {
			l.finish(c, nil)
			return
		}
		l.lingering(c)
		return
	}
	if rearm {
		l.rearm(c)
	}
}

// send writes a call's output: straight to the socket when nothing waits,
// else behind what waits.
func (l *Loop) send(c *Conn, io *session.IO) {
	if c.has(flagTLS) {
		l.sendTLS(c, io)
		return
	}
	if c.has(flagOut) {
		q := l.outs[c.slot]
		defer l.account(q, q.pending())
		if io.Final {
			q.commitPong(&l.pool) // the close frame follows the waiting pong
		}
		q.append(io.Out, &l.pool)
		if len(io.Pong) > 0 {
			q.setPong(io.Pong)
		}
		return // the socket was full: the driver reports when it takes more
	}
	bufs := l.iov[:0]
	if len(io.Out) > 0 {
		bufs = append(bufs, io.Out)
	}
	if len(io.Pong) > 0 {
		bufs = append(bufs, io.Pong)
	}
	n, err := l.drv.Write(c, bufs)
	clear(bufs)
	if err != nil {
		l.finish(c, err)
		return
	}
	if n == len(io.Out)+len(io.Pong) {
		return
	}
	q := l.newQueue(c)
	defer l.account(q, 0)
	if n < len(io.Out) {
		q.append(io.Out[n:], &l.pool)
		if len(io.Pong) > 0 {
			q.setPong(io.Pong)
		}
	} else {
		q.append(io.Pong[n-len(io.Out):], &l.pool) // a pong cut in two: the rest as bytes
	}
	if l.setWrite(c, true) {
		l.rearm(c) // the write timeout
	}
}

// sendRaw sends bytes that are ready for the socket (ciphertext, or a
// plain answer to a connection without a machine) behind what waits; it
// reports whether the socket took them all (false: they wait in c's
// queue, or c was finished for a broken socket).
func (l *Loop) sendRaw(c *Conn, p []byte) bool {
	if c.has(flagOut) {
		q := l.outs[c.slot]
		defer l.account(q, q.pending())
		q.append(p, &l.pool)
		return false
	}
	bufs := append(l.iov[:0], p)
	n, err := l.drv.Write(c, bufs)
	clear(bufs)
	if err != nil {
		l.finish(c, err)
		return false
	}
	if n == len(p) {
		return true
	}
	q := l.newQueue(c)
	defer l.account(q, 0)
	q.append(p[n:], &l.pool)
	if l.setWrite(c, true) {
		l.rearm(c) // the write timeout
	}
	return false
}

// account publishes what the loop's queues hold after a change to q, whose
// pending bytes were before: the methods that change a queue defer it.
func (l *Loop) account(q *outQueue, before int) {
	l.queued.Add(int64(q.pending() - before))
	l.queueMem.Store(int64(l.pool.inUse) * blockSize)
}

func (l *Loop) newQueue(c *Conn) *outQueue {
	var q *outQueue
	if n := len(l.spareQ); n > 0 {
		q = l.spareQ[n-1]
		l.spareQ = l.spareQ[:n-1]
	} else {
		q = new(outQueue)
	}
	q.since = Now()
	l.outs[c.slot] = q
	c.flags |= flagOut
	return q
}

func (l *Loop) dropQueue(c *Conn) {
	q := l.outs[c.slot]
	defer l.account(q, q.pending())
	delete(l.outs, c.slot)
	c.flags &^= flagOut
	q.release(&l.pool)
	if len(l.spareQ) < maxFreeOutBlocks {
		l.spareQ = append(l.spareQ, q)
	}
}

// lingering starts (once) the wait of a closing connection for its queued
// bytes: it reads no more and is closed once they are written, or at
// Group.Linger, whichever comes first.
func (l *Loop) lingering(c *Conn) {
	q := l.outs[c.slot]
	if q.closeBy != 0 {
		return
	}
	q.closeBy = Now() + int64(l.g.linger)
	if l.interest(c) {
		l.rearm(c)
	}
}

// interest tells the driver what c waits for now; false when c was
// finished for the driver's error.
func (l *Loop) interest(c *Conn) bool {
	read := !c.has(flagNoRead | flagCloseReq | flagTLSPause)
	if err := l.drv.Interest(c, read, c.has(flagWrite)); err != nil {
		l.finish(c, err)
		return false
	}
	return true
}

func (l *Loop) setWrite(c *Conn, on bool) bool {
	if c.has(flagWrite) == on {
		return true
	}
	c.flags ^= flagWrite
	return l.interest(c)
}

// finish closes c's socket, tells its machine (OnClose) and frees its slot.
func (l *Loop) finish(c *Conn, err error) {
	if !c.live() {
		return
	}
	if c.has(flagConnecting) {
		l.ConnectFailed(c, err)
		return
	}
	c.flags |= flagClosed
	l.drv.Close(c)
	l.unsweep(c)
	l.release(c)
	if c.has(flagOut) {
		l.dropQueue(c)
	}
	if c.has(flagTLS) {
		l.dropTLS(c)
	}
	var ds *dialState
	if c.has(flagDialing) {
		ds = l.dials[c.slot]
		delete(l.dials, c.slot)
	}
	if !c.has(flagStarted) && ds != nil {
		// A client whose TLS handshake failed: its machine never started,
		// so its handler hears of it directly.
		c.m.FailClient(l.prep(c), ds.h, err)
		l.io.Reset()
		l.cur = nil
	}
	if c.has(flagStarted) {
		if o := l.g.obs; o != nil && !c.has(flagCounted|flagDialing) && c.m.State() == session.StateHandshake {
			o.HandshakeFailed(l.idx, 0, c.m.HandshakeTook(Now())) // it ended before any answer
		}
		c.m.Closed(l.prep(c), err)
		l.observeCall(c, &l.io.Events)
		l.io.Reset()
		l.cur = nil
		// The conn's memory waits for the slot's next connection and must
		// not keep the application's value alive meanwhile.
		c.m.Conn().SetValue(nil)
	}
	l.free(c)
}

// nextAt is c's next decision point: its machine's deadline, the write
// timeout of its queue, or the end of its linger (0: none).
func (l *Loop) nextAt(c *Conn, now int64) int64 {
	var at int64
	if c.has(flagStarted) && !c.has(flagCloseReq) {
		at = c.m.Deadline(now)
	}
	if c.has(flagTLSHS) {
		at = l.tlss[c.slot].mc.hs.deadline
	}
	if c.has(flagOut) {
		q := l.outs[c.slot]
		switch {
		case q.closeBy != 0:
			at = earliest(at, q.closeBy)
		default:
			if wt := c.m.Config().WriteTimeoutOrDefault(); wt > 0 {
				at = earliest(at, q.since+int64(wt))
			}
		}
	}
	return at
}

// rearm asks for c's next decision point: from the wheel when it is near,
// from the loop's sweep when it is far.
func (l *Loop) rearm(c *Conn) {
	now := Now()
	at := l.nextAt(c, now)
	if at != 0 && at-now > sweepHorizon {
		c.timer = 0 // a wheel entry, if any, is stale from now on
		if !c.has(flagSwept) {
			c.flags |= flagSwept
			l.swept++
			if l.sweepAt == 0 {
				l.sweepAt = now + sweepPeriod
			}
		}
		return
	}
	l.unsweep(c)
	if at == 0 {
		c.timer = 0
		return
	}
	if s := msStamp(at); s != c.timer {
		c.timer = s
		l.w.Add(c.ID(), at)
	}
}

func (l *Loop) unsweep(c *Conn) {
	if c.has(flagSwept) {
		c.flags &^= flagSwept
		l.swept--
	}
}

func earliest(a, b int64) int64 {
	if a == 0 || b < a {
		return b
	}
	return a
}

// staleTimer reports whether a wheel entry no longer matters: its
// connection is gone or has asked for another time since.
func (l *Loop) staleTimer(key uint64, at int64) bool {
	if key&keyDial != 0 {
		c := l.t.byID(key &^ keyDial)
		return c == nil || !c.has(flagConnecting|flagDialing)
	}
	c := l.t.byID(key)
	return c == nil || c.timer != msStamp(at)
}

func (l *Loop) fire(key uint64, at int64) {
	if key&keyDial != 0 {
		l.dialTimeout(key&^keyDial, at)
		return
	}
	if l.staleTimer(key, at) {
		return
	}
	c := l.t.byID(key)
	c.timer = 0
	now := Now()
	if d := now - at; d > l.lag {
		l.lag = d
	}
	if c.has(flagOut) {
		q := l.outs[c.slot]
		if q.closeBy != 0 {
			if now >= q.closeBy {
				l.finish(c, nil) // linger over: what is left is dropped
				return
			}
		} else if wt := c.m.Config().WriteTimeoutOrDefault(); wt > 0 && now-q.since >= int64(wt) {
			if st := c.m.Config().Stats; st != nil {
				st.SlowClosed.Add(1)
			}
			l.finish(c, ErrWriteTimeout)
			return
		}
	}
	if c.has(flagTLSHS) && now >= l.tlss[c.slot].mc.hs.deadline {
		l.countTLS(c, tlsTimedOut)
		l.finish(c, ErrTLSHandshakeTimeout)
		return
	}
	if c.has(flagStarted) && !c.has(flagCloseReq) {
		c.m.Tick(l.prep(c))
		l.settle(c)
	}
	if c.live() && c.timer == 0 {
		l.rearm(c)
	}
}

// dialTimeout fails a client connection whose connect or handshake
// outlived its deadline.
func (l *Loop) dialTimeout(id uint64, at int64) {
	c := l.t.byID(id)
	if c == nil {
		return
	}
	ds := l.dials[c.slot]
	if ds == nil || ds.deadline != at {
		return
	}
	timedOut := os.NewSyscallError("connect", syscall.ETIMEDOUT)
	switch {
	case c.has(flagConnecting):
		l.ConnectFailed(c, timedOut)
	case c.has(flagTLSHS):
		l.finish(c, timedOut)
	case c.has(flagDialing) && c.m.State() == session.StateHandshake:
		l.finish(c, timedOut)
	}
}

// ---- Tasks ----

func (l *Loop) runTask(t *task) {
	switch {
	case t.run != nil:
		l.safely(t.run)
	case t.ids != nil:
		n := 0
		for _, id := range t.ids {
			if c := l.t.byID(id); c != nil && l.run(c, t.fn) {
				n++
			}
		}
		if o := l.g.obs; o != nil {
			o.FanOut(l.idx, n, time.Duration(Now()-t.start))
		}
	default:
		c := l.t.byID(t.id)
		if (c == nil || !l.run(c, t.fn)) && t.missed != nil {
			l.safely(t.missed)
		}
	}
}

// run runs a task for c; false when c no longer takes tasks.
func (l *Loop) run(c *Conn, fn func(c *session.Conn)) bool {
	if !c.has(flagStarted) || c.has(flagCloseReq) {
		return false
	}
	ran := c.m.Run(l.prep(c), fn)
	l.settle(c)
	return ran
}

// safely runs fn, keeping a panic in it from taking the loop (and every
// connection on it) down.
func (l *Loop) safely(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if st := l.g.cfg.Stats; st != nil {
				st.Panics.Add(1)
			}
			l.g.log.Error("wsloop: task panicked", "loop", l.idx, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// RemoteAddrPort returns the peer address of connection id without
// allocating where the driver can (session's lookup for
// Request.RemoteAddrPort).
func (l *Loop) RemoteAddrPort(id uint64) netip.AddrPort {
	c := l.t.byID(id)
	if c == nil {
		return netip.AddrPort{}
	}
	if d, ok := l.drv.(interface{ RemoteAddrPort(*Conn) netip.AddrPort }); ok {
		return d.RemoteAddrPort(c)
	}
	if a, ok := l.drv.RemoteAddr(c).(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// TLS reports whether connection id came over TLS (session's lookup for
// Request.TLS).
func (l *Loop) TLS(id uint64) bool {
	c := l.t.byID(id)
	return c != nil && c.has(flagTLS)
}

// RemoteAddr returns the peer address of connection id (session's lookup
// for Conn.RemoteAddr).
func (l *Loop) RemoteAddr(id uint64) net.Addr {
	c := l.t.byID(id)
	if c == nil {
		return nil
	}
	return l.drv.RemoteAddr(c)
}

// ---- Fan-out and shutdown ----

// broadcast writes m to every open connection of the loop; start is when
// Broadcast was called.
func (l *Loop) broadcast(m *session.Prepared, start int64) {
	send := func(sc *session.Conn) { _ = sc.SendPrepared(m) }
	n := 0
	l.t.each(func(c *Conn) {
		if c.has(flagStarted) && !c.has(flagCloseReq) && c.m.Open() && l.run(c, send) {
			n++
		}
	})
	if o := l.g.obs; o != nil {
		o.FanOut(l.idx, n, time.Duration(Now()-start))
	}
}

// goAway starts the close handshake (1001) on every open connection, ends
// event streams (once what they queued is written) and drops connections
// still in their opening handshake; plain HTTP exchanges get their answer.
func (l *Loop) goAway() {
	bye := func(sc *session.Conn) { _ = sc.Close(session.StatusGoingAway, "server shutting down") }
	l.t.each(func(c *Conn) {
		switch {
		case c.has(flagConnecting):
			l.ConnectFailed(c, session.ErrClosed)
		case c.has(flagTLSHS):
			l.finish(c, session.ErrClosed)
		case !c.has(flagStarted) || c.has(flagCloseReq):
		case c.m.State() == session.StateOpen, c.m.State() == session.StateStream:
			l.run(c, bye)
		case c.m.State() == session.StateHandshake:
			l.finish(c, session.ErrClosed)
		}
	})
}

// Teardown runs on the loop's goroutine when the engine stops it: every
// connection is finished (OnClose with session.ErrClosed), tasks still
// queued are dropped except engine housekeeping, which runs so that
// nothing it holds leaks. The driver closes its poller after it.
func (l *Loop) Teardown() {
	l.stopped = true
	l.t.each(func(c *Conn) { l.finish(c, session.ErrClosed) })
	for _, t := range l.q.close() {
		if t.run != nil {
			l.safely(t.run)
		}
	}
}

// Timers is the number of entries in the loop's timing wheel (stale ones
// included until they are dropped).
func (l *Loop) Timers() int { return l.w.Len() }
