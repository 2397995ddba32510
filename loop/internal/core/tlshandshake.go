package core

import (
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
)

// TLS handshakes run off the loops, so that a flood of them never stalls
// the established connections the loops serve.
//
// crypto/tls's handshake is a blocking call that cannot resume after a
// would-block, so each handshake in progress has a goroutine of its own
// (with its stack: about 8-32 KiB while it lasts, nothing after). Two
// bounds, per group (a server or a Dialer):
//
//   - At most MaxHandshakes in progress (DefaultMaxTLSHandshakes). Past it a
//     new TLS connection waits, first come first served, for one to end:
//     its socket is held, its first bytes are kept, its handshake deadline
//     runs (counted in Stats.TLSHandshakeWaits; cut at the deadline like a
//     stalled one). It is not refused: a burst of honest clients gets
//     served a little later rather than reset.
//   - At most handshakeCPU of them compute at once: on a server half the
//     CPUs (at least one), so that the loops always have the other half
//     of the machine for established connections; on a Dialer (a load
//     generator) every CPU. A handshake holds a CPU token only while it
//     runs: one that waits for its peer's next flight gives it back, so
//     slow peers cannot keep fast ones from being served.
//
// A server connection's handshake goroutine starts only once its first
// TLS record (the ClientHello) is complete, and its first bytes are
// checked on the loop: a peer that sends something else (garbage, plain
// HTTP: answered with a plain-text 400) is cut at once, and one that sends
// nothing, or stalls mid-handshake, costs no goroutine until it has sent a
// record and is cut at its deadline, Config.HandshakeTimeout, kept by the
// core (the machine has not started). Cuts are counted in
// Stats.TLSHandshakeErrors and Stats.TLSHandshakeTimeouts.
//
// The WebSocket (or HTTP) handshake that follows has its own
// HandshakeTimeout, from the moment TLS is up.

// DefaultMaxTLSHandshakes bounds the TLS handshakes in progress per server or
// Dialer.
const DefaultMaxTLSHandshakes = 1024

// Bounds of what a peer may send before its handshake is done: past
// hsPauseInput the loop stops reading from it until the handshake ends;
// past hsMaxInput (a driver that cannot stop reading) it is cut.
const (
	hsPauseInput = 64 << 10
	hsMaxInput   = 1 << 20
)

func defaultHandshakeCPU(client bool) int {
	if client {
		return runtime.GOMAXPROCS(0)
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// handshake is one TLS handshake in progress: shared between the loop and
// the handshake's goroutine under mu (the fields marked loop are the
// loop's own).
type handshake struct {
	l    *Loop
	id   uint64 // the connection
	t    *tlsConn
	pool *handshakePool

	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte // ciphertext from the loop not yet read by crypto/tls
	aborted bool

	remote   net.Addr // the peer's address, for ClientHelloInfo.Conn
	deadline int64    // loop
	started  bool     // loop: submitted to the pool
	holdsCPU bool     // the goroutine's
}

// read is memConn.Read during the handshake, on the handshake's goroutine:
// it waits (without a CPU token) for bytes from the loop.
func (h *handshake) read(p []byte) (int, error) {
	h.mu.Lock()
	if len(h.buf) == 0 && !h.aborted && h.holdsCPU {
		h.pool.releaseCPU()
		h.holdsCPU = false
	}
	for len(h.buf) == 0 && !h.aborted {
		h.cond.Wait()
	}
	if h.aborted {
		h.mu.Unlock()
		return 0, session.ErrClosed
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	if len(h.buf) == 0 {
		h.buf = nil
	}
	h.mu.Unlock()
	if !h.holdsCPU {
		h.pool.acquireCPU()
		h.holdsCPU = true
	}
	return n, nil
}

// write is memConn.Write during the handshake: the bytes go to the loop,
// which sends them behind what it sent before. It never fails: a
// handshake whose connection is gone fails at its next read.
func (h *handshake) write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	l := h.l
	_ = l.Post(func() { l.handshakeWrite(h, b) })
	return len(p), nil
}

// abort ends the handshake from the loop: its goroutine's read fails.
func (h *handshake) abort() {
	h.mu.Lock()
	h.aborted = true
	h.buf = nil
	h.cond.Broadcast()
	h.mu.Unlock()
}

// run is the handshake's goroutine.
func (h *handshake) run() {
	defer h.pool.finished()
	h.pool.acquireCPU()
	h.holdsCPU = true
	err := h.t.tc.Handshake()
	if h.holdsCPU {
		h.pool.releaseCPU()
	}
	l := h.l
	_ = l.Post(func() { l.handshakeDone(h, err) })
}

// ---- The pool ----

type handshakePool struct {
	mu      sync.Mutex
	max     int
	running int
	waiting []*handshake
	closed  bool
	cpu     chan struct{}
	wg      sync.WaitGroup
}

func newHandshakePool(max, cpu int) *handshakePool {
	return &handshakePool{max: max, cpu: make(chan struct{}, cpu)}
}

func (p *handshakePool) acquireCPU() { p.cpu <- struct{}{} }
func (p *handshakePool) releaseCPU() { <-p.cpu }

// submit starts h, or queues it when the pool is full; it reports whether
// h had to wait.
func (p *handshakePool) submit(h *handshake) (waits bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false // the loops are stopping: h is aborted with its conn
	}
	if p.running < p.max {
		p.running++
		p.wg.Add(1)
		go h.run()
		return false
	}
	p.waiting = append(p.waiting, h)
	return true
}

// finished runs as a handshake's goroutine ends: the next waiting
// handshake, if any, takes its place.
func (p *handshakePool) finished() {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.waiting) > 0 && !p.closed {
		h := p.waiting[0]
		p.waiting[0] = nil
		p.waiting = p.waiting[1:]
		h.mu.Lock()
		gone := h.aborted
		h.mu.Unlock()
		if gone {
			continue
		}
		p.wg.Add(1)
		go h.run()
		return
	}
	if len(p.waiting) == 0 {
		p.waiting = nil
	}
	p.running--
}

// close stops the pool and waits for every handshake goroutine to end
// (their connections are finished, so their reads fail at once).
func (p *handshakePool) close() {
	p.mu.Lock()
	p.closed = true
	p.waiting = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// InFlight is the number of handshake goroutines running and of
// handshakes waiting for one.
func (p *handshakePool) inFlight() (running, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, len(p.waiting)
}

// StopHandshakes waits for the group's TLS handshake goroutines to end,
// once its loops have torn down; engines call it as they stop.
func (g *Group) StopHandshakes() {
	if g.hs != nil {
		g.hs.close()
	}
}

// Handshakes reports the group's TLS handshakes in progress: running on a
// goroutine, and waiting for a place.
func (g *Group) Handshakes() (running, waiting int) {
	if g.hs == nil {
		return 0, 0
	}
	return g.hs.inFlight()
}

// ---- On the loop ----

func (l *Loop) submitHandshake(c *Conn, h *handshake) {
	h.started = true
	if l.g.hs.submit(h) {
		if st := l.g.cfg.Stats; st != nil {
			st.TLSHandshakeWaits.Add(1)
		}
	}
}

// handshakeInput takes ciphertext for a connection whose handshake is in
// progress.
func (l *Loop) handshakeInput(c *Conn, t *tlsConn, p []byte) {
	h := t.mc.hs
	h.mu.Lock()
	h.buf = append(h.buf, p...)
	n := len(h.buf)
	var verdict helloVerdict
	if !h.started && !l.g.tlsClient {
		verdict = checkHello(h.buf)
	}
	h.cond.Signal()
	h.mu.Unlock()
	switch {
	case verdict == helloPlainHTTP:
		l.countTLS(c, tlsFailed)
		l.refuseNotTLS(c)
		return
	case verdict == helloGarbage:
		l.countTLS(c, tlsFailed)
		l.finish(c, ErrNotTLS)
		return
	case n > hsMaxInput:
		l.countTLS(c, tlsFailed)
		l.finish(c, errTLSInputOverflow)
		return
	case verdict == helloComplete:
		l.submitHandshake(c, h)
	}
	if n > hsPauseInput && !c.has(flagTLSPause) {
		c.flags |= flagTLSPause
		l.interest(c)
	}
}

// handshakeConn is the connection whose handshake h is, or nil when it was
// finished meanwhile.
func (l *Loop) handshakeConn(h *handshake) *Conn {
	c := l.t.byID(h.id)
	if c == nil || !c.has(flagTLSHS) || l.tlss[c.slot].mc.hs != h {
		return nil
	}
	return c
}

// handshakeWrite sends bytes a handshake wrote, if it is still c's.
func (l *Loop) handshakeWrite(h *handshake, p []byte) {
	if c := l.handshakeConn(h); c != nil {
		l.sendRaw(c, p)
	}
}

// handshakeDone takes a connection back from its handshake: the machine
// starts on top of TLS, and what the peer sent behind its last handshake
// message is read.
func (l *Loop) handshakeDone(h *handshake, err error) {
	c := l.handshakeConn(h)
	if c == nil {
		return // finished meanwhile
	}
	if err != nil {
		l.countTLS(c, tlsFailed)
		l.finish(c, err)
		return
	}
	t := h.t
	h.mu.Lock()
	rest := h.buf
	h.buf = nil
	h.mu.Unlock()
	t.mc.hs = nil
	t.trimHandshake()
	c.flags &^= flagTLSHS
	l.countTLS(c, tlsDone)
	if c.has(flagTLSPause) {
		c.flags &^= flagTLSPause
		if !l.interest(c) {
			return
		}
	}
	c.flags |= flagStarted
	if c.has(flagDialing) {
		ds := l.dials[c.slot]
		c.m.InitClient(l.prep(c), l.g.cfg, ds.req, ds.h)
	} else {
		c.m.InitServer(l.prep(c), l.g.cfg)
	}
	l.settle(c)
	if c.live() && !c.has(flagCloseReq) {
		// crypto/tls may hold a whole record already (a request sent right
		// behind the client's Finished), so this reads even when rest is
		// empty.
		l.tlsRead(c, t, rest)
	}
}

// TLS handshake outcomes, as countTLS counts them.
const (
	tlsFailed = iota
	tlsDone
	tlsTimedOut
)

// countTLS counts a TLS handshake's outcome in Stats; a server's failure
// is also an Observer.HandshakeFailed (status 0: no HTTP answer), as a
// WebSocket handshake that ends before its answer is.
func (l *Loop) countTLS(c *Conn, outcome int) {
	if st := l.g.cfg.Stats; st != nil {
		switch outcome {
		case tlsDone:
			st.TLSHandshakes.Add(1)
		case tlsFailed:
			st.TLSHandshakeErrors.Add(1)
		case tlsTimedOut:
			st.TLSHandshakeTimeouts.Add(1)
		}
	}
	if o := l.g.obs; o != nil && outcome != tlsDone && !c.has(flagDialing|flagCounted) && c.has(flagTLSHS) {
		c.flags |= flagCounted
		h := l.tlss[c.slot].mc.hs
		took := Now() - (h.deadline - int64(l.g.cfg.HandshakeTimeoutOrDefault()))
		o.HandshakeFailed(l.idx, 0, time.Duration(took))
	}
}

// refuseNotTLS answers a plain HTTP request sent to the TLS port in
// plain text and closes the connection once the answer is written.
func (l *Loop) refuseNotTLS(c *Conn) {
	l.sendRaw(c, plainHTTPResponse)
	if !c.live() {
		return
	}
	c.flags |= flagCloseReq
	if !c.has(flagOut) {
		l.finish(c, ErrNotTLS)
		return
	}
	l.lingering(c)
}

// plainHTTPResponse answers a plain HTTP request sent to a TLS port (as
// net/http does).
var plainHTTPResponse = []byte("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")

type helloVerdict uint8

const (
	helloPartial   helloVerdict = iota // not enough bytes to tell
	helloComplete                      // a whole handshake record: start
	helloGarbage                       // not TLS
	helloPlainHTTP                     // a plain HTTP request
)

// checkHello judges the first bytes of a server connection: a TLS record
// header of type handshake (22), version 3.x and a plausible length, then
// the whole record.
func checkHello(b []byte) helloVerdict {
	if len(b) == 0 {
		return helloPartial
	}
	if b[0] != 22 {
		if looksLikeHTTP(b) {
			return helloPlainHTTP
		}
		return helloGarbage
	}
	if len(b) < 5 {
		if len(b) >= 2 && b[1] != 3 {
			return helloGarbage
		}
		return helloPartial
	}
	n := int(b[3])<<8 | int(b[4])
	if b[1] != 3 || b[2] > 4 || n == 0 || n > maxRecord-5 {
		return helloGarbage
	}
	if len(b) < 5+n {
		return helloPartial
	}
	return helloComplete
}

// looksLikeHTTP reports whether b starts like an HTTP request line.
func looksLikeHTTP(b []byte) bool {
	for _, m := range [...]string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT "} {
		k := min(len(b), len(m))
		if string(b[:k]) == m[:k] {
			return true
		}
	}
	return false
}
