//go:build linux || darwin || freebsd || netbsd || openbsd

package loop

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/wsloop/wsloop/session"
	"golang.org/x/sys/unix"
)

// Poller tokens that are not connection slots.
const (
	tokenWake   int32 = -1
	tokenListen int32 = -2
	tokenNone   int32 = -3
)

const (
	readBufferSize = 64 << 10
	// acceptRetry is how long a loop waits before accepting again after
	// the process ran out of file descriptors for a reason it cannot see
	// end (another component's fds): it never spins on EMFILE.
	acceptRetry = 250 * time.Millisecond
	// acceptBurst bounds accepts per readiness event, so a connection storm
	// does not starve the loop's established connections.
	acceptBurst = 256
	// lingerTimeout bounds how long a closed connection's unsent bytes may
	// take to drain before the socket is closed anyway.
	lingerTimeout = 5 * time.Second
)

// group is what the loops of one engine (a server or a Dialer) share.
type group struct {
	cfg   *session.Config
	log   *slog.Logger
	loops []*eventLoop
	wg    sync.WaitGroup

	count  atomic.Int64 // open connections, including those connecting
	max    int64        // capacity
	paused atomic.Int32 // loops whose listener is out of their poller

	next atomic.Uint32 // round-robin for dials

	// accept is the accept(2) wrapper; tests replace it to simulate EMFILE.
	accept func(lfd int) (int, error)
	// onFatal, when set, hears of a loop that cannot go on (its poller failed).
	onFatal func(err error)
	// linger bounds how long a closed connection's unsent bytes may take to
	// drain; lingerTimeout unless a test shortens it.
	linger time.Duration
}

func (g *group) now() int64 { return engineClock() }

// newGroup makes n loops with their pollers; start runs them.
func newGroup(n int, max int, cfg *session.Config, log *slog.Logger) (*group, error) {
	g := &group{cfg: cfg, log: log, max: int64(max), accept: accept, linger: lingerTimeout}
	for i := 0; i < n; i++ {
		l, err := newEventLoop(g, i, max)
		if err != nil {
			for _, l := range g.loops {
				l.p.close()
			}
			return nil, err
		}
		g.loops = append(g.loops, l)
	}
	return g, nil
}

func (g *group) startLoops() {
	for _, l := range g.loops {
		g.wg.Add(1)
		go l.run()
	}
}

// stopLoops asks every loop to close its connections and exit, and waits.
func (g *group) stopLoops() {
	for _, l := range g.loops {
		if l.q.post(task{run: l.stopFn}) != nil {
			continue // already stopping
		}
	}
	g.wg.Wait()
}

// released is called by a loop when one of its connections is gone.
func (g *group) released(from *eventLoop) {
	g.count.Add(-1)
	if g.paused.Load() == 0 {
		return
	}
	for _, l := range g.loops {
		if !l.acceptPaused.Load() {
			continue
		}
		if l == from {
			l.resumeAccept()
		} else {
			_ = l.q.post(task{run: l.resumeFn})
		}
	}
}

// eventLoop owns a poller and every connection registered in it. All its
// fields are touched only by its goroutine, except q and acceptPaused.
type eventLoop struct {
	g   *group
	idx int
	p   *poller
	q   *taskQueue
	w   *wheel
	buf []byte

	// The connection table: the conns themselves, in chunks of
	// connChunkLen (slot = chunk index * connChunkLen + index in chunk).
	// A chunk is allocated when every earlier one is full and dropped when
	// it and the one before it are empty; conns never move (handlers hold
	// *session.Conn pointers into them). New connections take the lowest
	// chunk with room, so that the table shrinks back after a peak.
	chunks []*connChunk
	low    int    // no chunk below this index has room
	gen    uint32 // last generation handed out

	lfd          int // listening socket, -1: none
	ownsLfd      bool
	listening    bool // lfd is in the poller
	paused       bool
	acceptPaused atomic.Bool
	retryAt      int64 // when a paused-on-EMFILE loop tries accepting again; 0: on release only
	stopped      bool
	emfileLogged int64

	dials map[int32]*dialState
	// outs holds the unsent bytes of the connections that have some, by
	// slot (flagOut says which): an idle connection pays no pointer for
	// them.
	outs    map[int32]*outBuf
	outFree []*outBuf

	// funcs made once so the loop's steady state allocates nothing
	fireFn   func(key uint64, at int64)
	taskFn   func(t *task)
	stopFn   func()
	resumeFn func()
}

func newEventLoop(g *group, idx, max int) (*eventLoop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &eventLoop{
		g:   g,
		idx: idx,
		p:   p,
		w:   newWheel(defaultTick, defaultWheelSlots, g.now()),
		buf: make([]byte, readBufferSize),
		// Reserved, not touched: appending makes no garbage, and the
		// untouched pages of these allocations are not resident.
		chunks: make([]*connChunk, 0, (max+int(connChunkLen)-1)/int(connChunkLen)),
		lfd:    -1,
		outs:   make(map[int32]*outBuf),
	}
	l.q = newTaskQueue(p.wake)
	l.fireFn = l.fire
	l.w.Stale = l.staleTimer
	l.taskFn = l.runTask
	l.stopFn = func() { l.stopped = true }
	l.resumeFn = l.resumeAccept
	return l, nil
}

// Execute implements session.Executor.
func (l *eventLoop) Execute(id uint64, fn func(c *session.Conn)) error {
	return l.q.post(task{id: id, fn: fn})
}

// ExecuteAll implements session.Executor.
func (l *eventLoop) ExecuteAll(ids []uint64, fn func(c *session.Conn)) error {
	return l.q.post(task{ids: ids, fn: fn})
}

// post runs fn on the loop.
func (l *eventLoop) post(fn func()) error { return l.q.post(task{run: fn}) }

func (l *eventLoop) run() {
	defer l.g.wg.Done()
	for !l.stopped {
		n, err := l.p.wait(l.timeout())
		if err != nil {
			l.g.log.Error("wsloop: event loop failed", "loop", l.idx, "err", err)
			if l.g.onFatal != nil {
				l.g.onFatal(fmt.Errorf("wsloop: event loop %d: %w", l.idx, err))
			}
			break
		}
		now := l.g.now()
		for i := 0; i < n; i++ {
			tok, r, w := l.p.event(i)
			switch {
			case tok >= 0:
				l.ioEvent(tok, r, w, now)
			case tok == tokenWake:
				l.p.drainWake()
			case tok == tokenListen:
				l.acceptReady(now)
			}
		}
		if l.q.pending() {
			l.q.drain(l.taskFn)
		}
		l.w.Advance(l.g.now(), l.fireFn)
		if l.paused && l.retryAt != 0 && l.g.now() >= l.retryAt {
			l.retryAt = 0
			l.resumeAccept()
		}
	}
	l.shutdown()
}

// timeout is how long the next wait may block: until the next timer.
func (l *eventLoop) timeout() int {
	next := l.w.Next()
	if l.paused && l.retryAt != 0 && (next < 0 || l.retryAt < next) {
		next = l.retryAt
	}
	if next < 0 {
		return -1
	}
	d := next - l.g.now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

func (l *eventLoop) runTask(t *task) {
	if t.run != nil {
		t.run()
		return
	}
	if t.ids == nil {
		l.runOn(t.id, t.fn)
		return
	}
	for _, id := range t.ids {
		l.runOn(id, t.fn)
	}
}

func (l *eventLoop) runOn(id uint64, fn func(c *session.Conn)) {
	c := l.lookup(id)
	if c == nil || !c.usable() {
		return
	}
	defer l.recoverTask(c)
	fn(&c.ws)
	l.settle(c)
}

// recoverTask keeps a panicking task from taking the loop, and every
// connection on it, down: the connection it ran for is closed.
func (l *eventLoop) recoverTask(c *conn) {
	if r := recover(); r != nil {
		l.g.log.Error("wsloop: task panicked", "panic", r, "stack", string(debug.Stack()))
		if !c.has(flagClosed) {
			c.fail(causePanic)
			l.settle(c)
		}
	}
}

func (l *eventLoop) lookup(id uint64) *conn {
	c := l.slotConn(int32(id >> 32 & 0x7fffffff))
	if c == nil || c.has(flagClosed) || c.gen() != uint32(id) {
		return nil
	}
	return c
}

// slotConn returns the conn of slot, in use or free, or nil when the slot
// is not in the table (never used, or its chunk was dropped).
func (l *eventLoop) slotConn(slot int32) *conn {
	k, i := slot/connChunkLen, slot%connChunkLen
	if slot < 0 || int(k) >= len(l.chunks) || i >= l.chunks[k].top {
		return nil
	}
	return &l.chunks[k].conns[i]
}

// connChunk is a block of a loop's connection table. The table holds the
// conns themselves rather than pointers to conns allocated one by one: an
// idle connection costs its conn and nothing else (no table pointer, no
// malloc size-class rounding), the loop makes no garbage as connections
// come and go, and a garbage collection marks a few dozen chunks rather
// than one object per connection. A chunk's pages become resident as its
// conns are first used (top grows), not when it is allocated.
type connChunk struct {
	loop  *eventLoop // so that a conn needs no pointer to its loop
	live  int32      // conns in use
	top   int32      // conns[:top] have been used: in use, or free
	free  int32      // the first free conn below top (-1: none); each free conn's fd links the next
	conns [connChunkLen]conn
}

// connChunkHeader is the size of a connChunk's fields before conns.
const connChunkHeader = unsafe.Sizeof(uintptr(0)) + 3*unsafe.Sizeof(int32(0))

// connChunkLen makes a chunk just under 64 KiB, a whole number of the
// heap's 8 KiB pages.
const connChunkLen = int32((64<<10 - connChunkHeader - 7) / unsafe.Sizeof(conn{}))

func (ch *connChunk) full() bool { return ch.free < 0 && ch.top == connChunkLen }

// chunk returns the chunk c lives in, found from c's address and its index
// in the chunk (c.slot modulo the chunk length): every conn lives in one.
func (c *conn) chunk() *connChunk {
	back := unsafe.Offsetof(connChunk{}.conns) + uintptr(c.slot%connChunkLen)*unsafe.Sizeof(conn{})
	return (*connChunk)(unsafe.Add(unsafe.Pointer(c), -int(back)))
}

// loop returns the event loop that owns c.
func (c *conn) loop() *eventLoop { return c.chunk().loop }

// newConn gives socket fd a slot, a generation and a reset conn, and adds
// it to the poller.
func (l *eventLoop) newConn(fd int, read, write bool) (*conn, error) {
	for l.low < len(l.chunks) && l.chunks[l.low].full() {
		l.low++
	}
	if l.low == len(l.chunks) {
		l.chunks = append(l.chunks, &connChunk{loop: l, free: -1})
	}
	ch := l.chunks[l.low]
	i := ch.free
	if i >= 0 {
		ch.free = ch.conns[i].fd
	} else {
		i = ch.top
		ch.top++
	}
	ch.live++
	l.gen = (l.gen + 1) & (1<<genBits - 1)
	if l.gen == 0 {
		l.gen = 1
	}
	slot := int32(l.low)*connChunkLen + i
	c := &ch.conns[i]
	*c = conn{fd: int32(fd), slot: slot, bits: l.gen << 8}
	if err := l.p.add(fd, slot, read, write); err != nil {
		l.unslot(c)
		return nil, err
	}
	return c, nil
}

// unslot frees c's slot (c's socket is closed or was never added): c's
// memory is reused by a later connection given the slot. When the last two
// chunks are empty, the last one is dropped (one empty chunk stays, so
// that a count going up and down across a chunk boundary does not
// allocate and drop a chunk each time).
func (l *eventLoop) unslot(c *conn) {
	ch := c.chunk()
	c.set(flagClosed)
	c.fd = ch.free
	ch.free = c.slot % connChunkLen
	ch.live--
	if k := int(c.slot / connChunkLen); k < l.low {
		l.low = k
	}
	for n := len(l.chunks); n >= 2 && l.chunks[n-1].live == 0 && l.chunks[n-2].live == 0; n-- {
		l.chunks[n-1] = nil
		l.chunks = l.chunks[:n-1]
		l.low = min(l.low, n-1)
	}
}

func (l *eventLoop) ioEvent(slot int32, readable, writable bool, now int64) {
	c := l.slotConn(slot)
	if c == nil || c.has(flagClosed) {
		return // closed earlier in this batch
	}
	if c.has(flagConnecting) {
		if readable || writable {
			l.connectDone(c, now)
		}
		return
	}
	if writable && c.has(flagOut) {
		l.flush(c)
	}
	if readable && !c.has(flagCloseReq|flagDead) {
		l.read(c, now)
	}
	l.settle(c)
}

// maxReadsPerEvent bounds the full buffers read from one socket per
// readiness event, so a fast sender cannot starve the loop's other
// connections (level-triggered: the rest is reported again).
const maxReadsPerEvent = 4

func (l *eventLoop) read(c *conn, now int64) {
	for reads := 0; reads < maxReadsPerEvent; {
		n, err := unix.Read(int(c.fd), l.buf)
		if n > 0 {
			c.ws.Feed(l.buf[:n], now)
			if n < len(l.buf) || c.has(flagCloseReq|flagDead|flagClosed) {
				return
			}
			reads++
			continue
		}
		switch err {
		case nil:
			c.fail(causeEOF)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			c.fail(errnoCause(err))
		}
		return
	}
}

// settle finishes what a call into the session left to do: close the
// socket it asked to close (once the outbound bytes are out) or that failed.
// Calls into the session never re-enter it through the engine.
func (l *eventLoop) settle(c *conn) {
	switch {
	case c.has(flagClosed):
	case c.has(flagDead):
		l.finish(c, c.err())
	case c.has(flagCloseReq) && !c.has(flagOut):
		l.finish(c, nil)
	case c.has(flagDialing) && c.ws.State() != session.StateHandshake:
		c.clear(flagDialing)
		delete(l.dials, c.slot)
	}
}

// finish closes c's socket, frees its slot and tells its session.
func (l *eventLoop) finish(c *conn, err error) {
	unix.Close(int(c.fd)) // also leaves the poller
	l.unslot(c)
	l.releaseOut(c)
	if c.has(flagDialing) {
		delete(l.dials, c.slot)
	}
	c.ws.TransportClosed(err)
	// OnClose has returned: the conn's memory waits for the slot's next
	// connection, and must not keep the application's value alive meanwhile.
	c.ws.SetValue(nil)
	// Only now may another connection take the place: handlers never see
	// more than capacity connections open.
	l.g.released(l)
}

// staleTimer reports whether a wheel entry no longer matters: its
// connection is gone or has asked for another time since.
func (l *eventLoop) staleTimer(key uint64, at int64) bool {
	if key&keyDial != 0 {
		c := l.lookup(key &^ keyDial)
		return c == nil || !c.has(flagConnecting|flagDialing)
	}
	c := l.lookup(key)
	return c == nil || c.has(flagClosed|flagDead) || c.timer != msStamp(at)
}

func (l *eventLoop) fire(key uint64, at int64) {
	if key&keyDial != 0 {
		l.dialTimeout(key&^keyDial, at)
		return
	}
	if l.staleTimer(key, at) {
		return
	}
	c := l.lookup(key)
	c.timer = 0
	now := l.g.now()
	if c.has(flagCloseReq) {
		l.finish(c, nil) // linger over: unsent bytes are dropped
		return
	}
	c.ws.Tick(now)
	l.settle(c)
}

// Accepting.

func (l *eventLoop) setListener(fd int, owns bool) {
	l.lfd, l.ownsLfd = fd, owns
	l.resumeListening()
}

func (l *eventLoop) resumeListening() {
	if l.lfd < 0 || l.listening || l.stopped {
		return
	}
	if err := l.p.add(l.lfd, tokenListen, true, false); err != nil {
		l.g.log.Error("wsloop: cannot watch the listener", "err", err)
		return
	}
	l.listening = true
}

func (l *eventLoop) stopListening() {
	if l.listening {
		_ = l.p.del(l.lfd)
		l.listening = false
	}
}

func (l *eventLoop) closeListener() {
	l.stopListening()
	if l.paused {
		l.paused = false
		l.acceptPaused.Store(false)
		l.g.paused.Add(-1)
	}
	if l.lfd >= 0 && l.ownsLfd {
		unix.Close(l.lfd)
	}
	l.lfd = -1
}

// pauseAccept takes the listener out of the poller until a connection is
// released (or, after EMFILE, until retryAt): a full server never spins.
func (l *eventLoop) pauseAccept(retryAt int64) {
	l.stopListening()
	if !l.paused {
		l.paused = true
		l.acceptPaused.Store(true)
		l.g.paused.Add(1)
	}
	if retryAt != 0 {
		l.retryAt = retryAt
		return
	}
	// A release that ran before we were marked paused did not see us; the
	// count it left tells us. (Both sides write, then read the other's
	// atomic: at least one of them sees the other.)
	if l.g.count.Load() < l.g.max {
		l.resumeAccept()
	}
}

func (l *eventLoop) resumeAccept() {
	if !l.paused || l.stopped || l.lfd < 0 {
		return
	}
	if l.retryAt == 0 && l.g.count.Load() >= l.g.max {
		return
	}
	l.paused = false
	l.acceptPaused.Store(false)
	l.g.paused.Add(-1)
	l.retryAt = 0
	l.resumeListening()
}

func (l *eventLoop) acceptReady(now int64) {
	for i := 0; i < acceptBurst && l.listening; i++ {
		if l.g.count.Add(1) > l.g.max {
			l.g.count.Add(-1)
			l.pauseAccept(0)
			return
		}
		fd, err := l.g.accept(l.lfd)
		if err != nil {
			l.g.count.Add(-1)
			switch err {
			case unix.EAGAIN, unix.ECONNABORTED:
				return
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				if now-l.emfileLogged > int64(10*time.Second) || l.emfileLogged == 0 {
					l.emfileLogged = now
					l.g.log.Warn("wsloop: out of file descriptors; accepting paused",
						"err", err, "open", l.g.count.Load(),
						"hint", "raise the open-file limit or lower MaxConns")
				}
				l.pauseAccept(now + int64(acceptRetry))
				return
			default:
				l.g.log.Error("wsloop: accept", "err", err)
				return
			}
		}
		l.serve(fd, now)
	}
}

// serve starts a server-role session on an accepted socket.
func (l *eventLoop) serve(fd int, now int64) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c, err := l.newConn(fd, true, false)
	if err != nil {
		unix.Close(fd)
		l.g.count.Add(-1)
		l.g.log.Error("wsloop: register connection", "err", err)
		return
	}
	c.ws.Init(l.g.cfg, c, now)
	l.settle(c)
}

// shutdown runs on the loop's goroutine after it stopped: every socket and
// the poller are closed; tasks still queued are dropped, except engine
// housekeeping, which runs so that nothing it holds leaks.
func (l *eventLoop) shutdown() {
	l.stopped = true
	l.closeListener()
	// (A chunk dropped meanwhile is still walked: its conns are all closed.)
	for _, ch := range l.chunks {
		for i := range ch.top {
			c := &ch.conns[i]
			switch {
			case c.has(flagClosed):
			case c.has(flagConnecting):
				l.failDial(c, session.ErrClosed)
			default:
				l.finish(c, session.ErrClosed)
			}
		}
	}
	for _, t := range l.q.close() {
		if t.run != nil {
			t.run()
		}
	}
	if err := l.p.close(); err != nil {
		l.g.log.Warn("wsloop: closing poller", "err", fmt.Errorf("loop %d: %w", l.idx, err))
	}
}
