package core

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/wsloop/wsloop/session"
)

// TLS is a byte transform between a connection's socket and its machine,
// written once here for every engine: drivers move ciphertext, machines see
// plaintext, and neither knows.
//
// The design, verified against the crypto/tls of the Go version in go.mod:
//
//   - Each TLS connection has a tls.Conn over a memConn, an in-memory
//     net.Conn (side map tlss by slot, like outs: plain connections pay
//     nothing).
//   - The handshake runs off the loops (tlshandshake.go): it is CPU-heavy
//     and cannot resume after a would-block, so it runs on a goroutine of
//     its own whose memConn.Read waits for the bytes the loop hands it, and
//     whose writes go back to the loop as tasks. The core owns its deadline
//     (the machine is not started yet).
//   - After the handshake, reads are driven from the loop: Input hands the
//     ciphertext to crypto/tls and calls tls.Conn.Read until it would
//     block. crypto/tls latches only non-temporary read errors and keeps a
//     partial record in its rawInput, so the next Input goes on where this
//     one stopped; memConn reports "would block" as a temporary net.Error.
//     (Where tlsbuf.go knows crypto/tls's layout the bytes are put in
//     rawInput directly and Read is called only while a whole record is
//     there: no memConn read, no allocation.) The plaintext goes to
//     Machine.Feed.
//   - Writes: what a machine answers (IO.Out, IO.Pong) is sealed by
//     tls.Conn.Write, whose memConn.Write appends the records to the loop's
//     ciphertext buffer and never fails (a failed write is permanent in
//     crypto/tls). With nothing queued, the records go straight to the
//     socket and what it does not take waits as ciphertext; behind a queue,
//     output waits as plaintext and is sealed a block at a time when the
//     socket takes more (sendTLS, writeSealed), so records are sealed in
//     the order they are sent, a backlog of small messages becomes a few
//     full records, and pongs coalesce as on a plain connection (the pong
//     slot holds plaintext until its turn). HighWater, the write timeout
//     and Queued apply to what waits, plaintext and ciphertext alike.
//   - A close the machine asks for (after the close handshake, or once an
//     HTTP answer is queued) seals what waits and queues close_notify
//     behind it; a connection that fails or is dropped sends none.
//
// Memory: see tlsbuf.go.

// Errors connections cut during the TLS handshake end with (a client's
// OnClose receives them).
var (
	ErrTLSHandshakeTimeout = errors.New("wsloop: TLS handshake not completed within the handshake timeout")
	ErrNotTLS              = errors.New("wsloop: the peer did not start a TLS handshake")
	errTLSInputOverflow    = errors.New("wsloop: the peer sent too much during the TLS handshake")
)

// tlsConn is a TLS connection's state beside its Conn.
type tlsConn struct {
	tc       *tls.Conn
	mc       memConn
	partial  *[]byte // pooled buffer holding rawInput's partial record (see detach)
	attached bool    // rawInput is the loop's record buffer (during a read)
	notified bool    // close_notify is queued
}

// memConn is the net.Conn under a tls.Conn. During the handshake (hs set)
// its Read waits for bytes from the loop and its Write posts them to the
// loop (tlshandshake.go); after it, both run on the loop: Read takes from
// in, the bytes being fed, and reports errWouldBlock when they are used up;
// Write appends to out, the loop's ciphertext buffer.
type memConn struct {
	in  []byte
	out *[]byte
	hs  *handshake
}

// errWouldBlock is memConn's "no more bytes now": temporary, so crypto/tls
// does not latch it.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "wsloop: tls input would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (m *memConn) Read(p []byte) (int, error) {
	if h := m.hs; h != nil {
		return h.read(p)
	}
	if len(m.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(p, m.in)
	m.in = m.in[n:]
	return n, nil
}

func (m *memConn) Write(p []byte) (int, error) {
	if h := m.hs; h != nil {
		return h.write(p)
	}
	*m.out = append(*m.out, p...)
	return len(p), nil
}

// Close is called by crypto/tls only from tls.Conn.Close, which the core
// never calls: the driver closes the socket.
func (m *memConn) Close() error { return nil }

func (m *memConn) LocalAddr() net.Addr { return memAddr{} }

// RemoteAddr is the peer's address during the handshake (for
// GetCertificate and friends, through ClientHelloInfo.Conn).
func (m *memConn) RemoteAddr() net.Addr {
	if h := m.hs; h != nil && h.remote != nil {
		return h.remote
	}
	return memAddr{}
}

// Deadlines are the core's (the wheel): crypto/tls's own are no-ops.
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "wsloop" }
func (memAddr) String() string  { return "wsloop-tls" }

// ---- Setup ----

// UseTLS makes every connection of the group speak TLS with o.TLS
// (cloned), when it is set: servers when the group's Config has the server
// role, clients otherwise. Both sides get TLS 1.2 at least and ALPN
// "http/1.1" unless the config names its own protocols; o.MaxTLSHandshakes
// bounds the handshakes in progress (DefaultMaxTLSHandshakes). Engines call it
// before the group has connections.
func (g *Group) UseTLS(o *Options) error {
	cfg := o.TLS
	if cfg == nil {
		return nil
	}
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.MaxVersion != 0 && c.MaxVersion < c.MinVersion {
		return fmt.Errorf("TLS MaxVersion %#x is below TLS 1.2", c.MaxVersion)
	}
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{"http/1.1"}
	}
	client := g.cfg.Role == session.Client
	if !client && len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
		return errors.New("TLS config has no certificate (Certificates, GetCertificate or GetConfigForClient)")
	}
	g.tls = c
	g.tlsClient = client
	inFlight := o.MaxTLSHandshakes
	if inFlight <= 0 {
		inFlight = DefaultMaxTLSHandshakes
	}
	g.hs = newHandshakePool(inFlight, defaultHandshakeCPU(client))
	return nil
}

// TLS reports whether the group's connections speak TLS.
func (g *Group) TLS() bool { return g.tls != nil }

// ---- On the loop ----

// startTLS begins the TLS handshake of a connection (server: on accept;
// client: once connected): nothing reaches its machine until it is done.
func (l *Loop) startTLS(c *Conn, serverName string) {
	t := &tlsConn{}
	h := &handshake{l: l, id: c.ID(), t: t, pool: l.g.hs}
	h.cond.L = &h.mu
	t.mc.hs = h
	if l.g.tlsClient {
		t.tc = tls.Client(&t.mc, l.g.clientTLS(serverName))
	} else {
		t.tc = tls.Server(&t.mc, l.g.tls)
		h.remote = l.drv.RemoteAddr(c)
	}
	if l.tlss == nil {
		l.tlss = make(map[int32]*tlsConn)
	}
	l.tlss[c.slot] = t
	c.flags |= flagTLS | flagTLSHS
	h.deadline = Now() + int64(l.g.cfg.HandshakeTimeoutOrDefault())
	if l.g.tlsClient {
		l.submitHandshake(c, h) // the client speaks first
	}
	l.rearm(c)
}

// recordBuf returns the loop's buffer for records being read.
func (l *Loop) recordBuf() []byte {
	if l.rec == nil {
		l.rec = make([]byte, 0, recordBufSize)
	}
	return l.rec[:0]
}

func (l *Loop) plainBuf() []byte {
	if l.plain == nil {
		l.plain = make([]byte, plainBufSize)
	}
	return l.plain
}

// plainBufSize is the loop's buffer for decrypted bytes: they go to the
// machine in batches of up to this much (several small records at once).
const plainBufSize = 64 << 10

// tlsInput takes ciphertext read from c's socket.
func (l *Loop) tlsInput(c *Conn, p []byte) {
	t := l.tlss[c.slot]
	if c.has(flagTLSHS) {
		l.handshakeInput(c, t, p)
		return
	}
	l.tlsRead(c, t, p)
}

// tlsRead decrypts what p and the connection's partial record hold and
// feeds the plaintext to the machine, until the input is used up, the
// connection asks to close or is finished.
func (l *Loop) tlsRead(c *Conn, t *tlsConn, p []byte) {
	direct := t.attach(l.recordBuf(), p)
	if !direct {
		t.mc.in = p // crypto/tls reads p through memConn
	}
	t.mc.out = &l.tlsOut
	plain := l.plainBuf()
	for c.live() && !c.has(flagCloseReq) {
		n := 0
		var err error
		for n < len(plain) {
			if direct && !t.readable() {
				err = errWouldBlock // the rest is a partial record
				break
			}
			var k int
			k, err = t.tc.Read(plain[n:])
			n += k
			if len(l.tlsOut) > 0 {
				// Bytes the read made crypto/tls send (a KeyUpdate answer,
				// an alert) go out before anything the plaintext causes.
				l.flushTLS(c)
			}
			if err != nil {
				break
			}
		}
		if n > 0 && c.live() && !c.has(flagCloseReq) {
			c.m.Feed(l.prep(c), plain[:n])
			l.settle(c)
		}
		if err == nil {
			continue
		}
		if err != errWouldBlock && c.live() {
			// io.EOF is close_notify: an orderly end. Anything else is a
			// broken record or a fatal alert; crypto/tls has queued its own
			// alert above.
			t.mc.in = nil
			t.detach()
			if err == io.EOF && c.has(flagCloseReq) {
				// A close frame and close_notify in one read: the close is
				// under way, and what it queued (the reply) goes out first.
				return
			}
			l.Hangup(c, err)
			return
		}
		break
	}
	t.mc.in = nil
	t.detach()
	if cap(l.tlsOut) > maxKeepOut {
		l.tlsOut = nil
	}
}

// seal encrypts p into records appended to the loop's ciphertext buffer
// and returns that buffer; nil when the connection no longer sends
// (close_notify was sent, or crypto/tls failed).
func (l *Loop) seal(t *tlsConn, p []byte) []byte {
	t.mc.out = &l.tlsOut
	if len(p) > 0 {
		if _, err := t.tc.Write(p); err != nil {
			l.tlsOut = l.tlsOut[:0]
			return nil
		}
	}
	return l.tlsOut
}

// flushTLS sends what crypto/tls wrote outside a seal (on a read, or
// close_notify) behind everything c has sealed.
func (l *Loop) flushTLS(c *Conn) {
	ct := l.tlsOut
	l.tlsOut = l.tlsOut[:0]
	if len(ct) > 0 && c.live() {
		l.sendRaw(c, ct)
	}
}

// sendTLS is send for a TLS connection. With nothing queued, io's output
// is sealed and written at once; what the socket does not take waits as
// ciphertext, and a pong that cannot go out waits as plaintext. Behind a
// queue, output waits as plaintext and is sealed when its turn comes
// (writeSealed): records are sealed in the order they are sent, pongs coalesce
// as on a plain connection, and a backlog of small messages becomes a few
// full records instead of one record (and 22-29 bytes) per message.
func (l *Loop) sendTLS(c *Conn, io *session.IO) {
	t := l.tlss[c.slot]
	if c.has(flagOut) {
		q := l.outs[c.slot]
		defer l.account(q, q.pending())
		if io.Final && q.pongLen > 0 {
			q.commitPlainPong(&l.pool) // the close frame follows the waiting pong
		}
		q.plain.append(io.Out, &l.pool)
		if len(io.Pong) > 0 {
			q.setPong(io.Pong)
		}
		return
	}
	ct := l.seal(t, io.Out)
	all := len(ct) == 0 || l.sendRaw(c, ct)
	l.tlsOut = l.tlsOut[:0]
	if len(io.Pong) == 0 || !c.live() {
		return
	}
	if !all {
		q := l.outs[c.slot]
		defer l.account(q, q.pending())
		q.setPong(io.Pong)
		return
	}
	if ct = l.seal(t, io.Pong); len(ct) > 0 {
		l.sendRaw(c, ct)
	}
	l.tlsOut = l.tlsOut[:0]
}

// sealChunk is the plaintext sealed at once behind a queue: its records
// fit a queue block (less room for the records' overhead), so a TLS queue
// holds at most about one block more than its plaintext.
const sealChunk = blockSize - 512

// sealNext seals q's next plaintext, at most sealChunk (or, once that is
// gone, its pong), into the loop's ciphertext buffer and returns it.
func (l *Loop) sealNext(t *tlsConn, q *outQueue) []byte {
	t.mc.out = &l.tlsOut
	failed := false
	for taken := 0; q.plain.n > 0 && taken < sealChunk; {
		p := q.plain.front()
		p = p[:min(len(p), sealChunk-taken)]
		if !failed {
			if _, err := t.tc.Write(p); err != nil {
				failed = true // no more records: what waits is dropped
			}
		}
		taken += len(p)
		q.plain.drop(len(p), &l.pool)
	}
	if q.plain.n == 0 && q.pongLen > 0 && len(l.tlsOut) == 0 {
		n := q.pongLen
		q.pongLen = 0
		if !failed {
			_, _ = t.tc.Write(q.pong[:n])
		}
	}
	return l.tlsOut
}

// writeSealed seals q's next records and writes them; what the socket does
// not take waits in q's bytes. It reports whether the socket took them all
// (false: full, or c was finished).
func (l *Loop) writeSealed(c *Conn, q *outQueue) bool {
	ct := l.sealNext(l.tlss[c.slot], q)
	defer func() { l.tlsOut = l.tlsOut[:0] }()
	if len(ct) == 0 {
		return true
	}
	bufs := append(l.iov[:0], ct)
	n, err := l.drv.Write(c, bufs)
	clear(bufs)
	if n > 0 {
		q.since = Now()
	}
	if err != nil {
		l.finish(c, err)
		return false
	}
	if n < len(ct) {
		q.append(ct[n:], &l.pool)
		return false
	}
	return true
}

// closeNotify queues close_notify once, behind c's last bytes.
func (l *Loop) closeNotify(c *Conn) {
	t := l.tlss[c.slot]
	if t == nil || t.notified || c.has(flagTLSHS) {
		return
	}
	t.notified = true
	if c.has(flagOut) {
		q := l.outs[c.slot]
		defer l.account(q, q.pending())
		for q.plain.n > 0 || q.pongLen > 0 {
			// Everything before close_notify is sealed before it.
			q.append(l.sealNext(t, q), &l.pool)
			l.tlsOut = l.tlsOut[:0]
		}
	}
	t.mc.out = &l.tlsOut
	if err := t.tc.CloseWrite(); err != nil {
		l.tlsOut = l.tlsOut[:0]
		return
	}
	l.flushTLS(c)
}

// dropTLS forgets c's TLS state as it finishes, stopping its handshake if
// one is under way.
func (l *Loop) dropTLS(c *Conn) {
	t := l.tlss[c.slot]
	delete(l.tlss, c.slot)
	if t == nil {
		return
	}
	if h := t.mc.hs; h != nil {
		h.abort()
	}
	if t.partial != nil {
		putRecordBuf(t.partial)
		t.partial = nil
	}
}

// TLSState returns the TLS connection state of connection id (for the
// HTTP bridge's Request.TLS); ok false for a plain connection or one that
// is gone. On the loop only.
func (l *Loop) TLSState(id uint64) (tls.ConnectionState, bool) {
	c := l.t.byID(id)
	if c == nil || !c.has(flagTLS) || c.has(flagTLSHS) {
		return tls.ConnectionState{}, false
	}
	return l.tlss[c.slot].tc.ConnectionState(), true
}

// clientTLS is the client config for a dial to serverName: the group's,
// or a clone naming the server when the group's names none (one per name,
// shared by its connections).
func (g *Group) clientTLS(serverName string) *tls.Config {
	if g.tls.ServerName != "" || serverName == "" {
		return g.tls
	}
	g.tlsMu.Lock()
	defer g.tlsMu.Unlock()
	if c := g.tlsByName[serverName]; c != nil {
		return c
	}
	if g.tlsByName == nil {
		g.tlsByName = make(map[string]*tls.Config)
	}
	c := g.tls.Clone()
	c.ServerName = serverName
	if len(g.tlsByName) < maxServerNames {
		g.tlsByName[serverName] = c
	}
	return c
}

// maxServerNames bounds the client configs a group keeps by server name.
const maxServerNames = 64

// serverNameOf is the TLS server name for a Host header value (host[:port]).
func serverNameOf(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.Trim(host, "[]")
}
