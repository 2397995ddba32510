package loop_test

// The cross-engine integration suite: every TestIntegration* test runs the
// same scenario on each engine over real loopback sockets, with clients that
// share no code with the server (github.com/coder/websocket, or a raw client
// built here on net.Dial with hand-built frames).
//
// This file holds the harness: server start and teardown with goroutine and
// file-descriptor leak checks, a recording handler that checks the Handler
// contract (OnClose exactly once, nothing after it), and the raw client.
//
// Every engine runs the suite twice: plain, and as "<engine>+tls", where
// the server speaks TLS (the core's layer, below the session) and every
// client of the harness (coder/websocket, the raw client, the Dialer)
// speaks it too, so that each scenario also runs over wss.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/testcert"
	"github.com/wsloop/wsloop/loop"
	_ "github.com/wsloop/wsloop/loop/gnet" // the gnet engine, opt-in
	"github.com/wsloop/wsloop/session"
)

// engines are the engine names every integration test runs on: each plain
// and over TLS.
var engines = []string{"epoll", "gnet", "goroutine", "epoll+tls", "gnet+tls", "goroutine+tls"}

// baseEngines are the engines without the TLS variants, for tests that are
// about TLS themselves.
var baseEngines = []string{"epoll", "gnet", "goroutine"}

// splitEngine returns an engine list entry's engine and whether it is the
// TLS variant.
func splitEngine(name string) (engine string, overTLS bool) {
	return strings.CutSuffix(name, "+tls")
}

// tlsOverhead bounds what TLS adds to a queue's bytes in the bounds tests
// check: a queue holds ciphertext, up to 29 bytes more per record of at
// most 16 KiB (TLS 1.2 AES-GCM; 22 in TLS 1.3), and a message may be sealed
// in two records.
const tlsOverhead = 2 * 29

// tlsQueueBlock is the most memory a TLS connection's queue holds beyond a
// plain one's: one block of sealed records being written (the core's
// sealChunk).
const tlsQueueBlock = 16 << 10

// serverOptions are the options of a server on an engine list entry: its
// engine, and a TLSConfig for a TLS variant.
func serverOptions(t testing.TB, engine string) loop.Options {
	base, overTLS := splitEngine(engine)
	o := loop.Options{Engine: base, Loops: 2}
	if overTLS {
		o.TLSConfig = harnessCert(t).ServerConfig()
	}
	return o
}

// harnessCert is the certificate every TLS variant serves.
func harnessCert(t testing.TB) testcert.Cert { return testcert.Shared(t) }

// waitTimeout bounds every wait for an event; generous, never asserted as speed.
const waitTimeout = 10 * time.Second

// forEachEngine runs fn as one subtest per engine. A panic on the test
// goroutine (an unimplemented function, a bug) fails only that subtest.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			fn(t, e)
		})
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- recording handler ----

// connInfo is the user value the recorder gives each connection.
type connInfo struct {
	id       int64
	remote   string // the peer's address as the server saw it at open
	handle   session.Handle
	messages atomic.Int64
	closes   atomic.Int32
	extra    any // for a test's own use
}

// preOpen is the Accept.Value the harness's UpgradeFunc gives a connection.
type preOpen struct {
	id    int64
	value any // what the test's own UpgradeFunc returned as Value
}

// connIDHeader carries the connection's recorder id in the 101 response.
const connIDHeader = "X-Test-Conn"

// upgrade wraps a test's UpgradeFunc (nil: accept all): it numbers each
// accepted connection and tells the client the number in a header.
func (r *recorder) upgrade(inner session.UpgradeFunc) session.UpgradeFunc {
	return func(req *session.Request) (session.Accept, error) {
		var a session.Accept
		if inner != nil {
			var err error
			if a, err = inner(req); err != nil {
				return a, err
			}
		}
		id := r.nextID.Add(1)
		a.Header = append(append([]byte(nil), a.Header...), fmt.Sprintf("%s: %d\r\n", connIDHeader, id)...)
		a.Value = &preOpen{id: id, value: a.Value}
		return a, nil
	}
}

// closeEvent is one OnClose call.
type closeEvent struct {
	id     int64
	code   session.StatusCode
	reason string
	err    error
}

// recorder is a session.Handler that records every callback, checks the
// contract (one OnClose per opened connection, no callback after it) and
// delegates behaviour to optional functions.
type recorder struct {
	open    func(c *session.Conn)
	message func(c *session.Conn, op session.Opcode, p []byte)
	close   func(c *session.Conn, code session.StatusCode, reason string, err error)
	drain   func(c *session.Conn)

	nextID atomic.Int64
	mu     sync.Mutex
	conns  []*connInfo
	closed []closeEvent
	errs   []string // contract violations seen in callbacks
}

func newRecorder() *recorder {
	return &recorder{}
}

// echoRecorder echoes every message back with the same opcode.
func echoRecorder() *recorder {
	r := newRecorder()
	r.message = func(c *session.Conn, op session.Opcode, p []byte) {
		// An error (a peer that reset, a close under way) is for the
		// client side of each test to notice.
		_ = c.Send(op, p)
	}
	return r
}

func (r *recorder) violation(s string) {
	r.mu.Lock()
	r.errs = append(r.errs, s)
	r.mu.Unlock()
}

func (r *recorder) OnOpen(c *session.Conn) {
	// The harness's UpgradeFunc numbered the connection (and told the client
	// the number in a response header) through Accept.Value.
	pre, ok := c.Value().(*preOpen)
	if !ok {
		r.violation(fmt.Sprintf("OnOpen: Value() = %T, want the Accept.Value given by the UpgradeFunc", c.Value()))
		pre = &preOpen{id: r.nextID.Add(1)}
	}
	ci := &connInfo{id: pre.id, extra: pre.value, handle: c.Handle()}
	if a := c.RemoteAddr(); a != nil {
		ci.remote = a.String()
	}
	c.SetValue(ci)
	if st := c.State(); st != session.StateOpen && st != session.StateStream {
		r.violation(fmt.Sprintf("conn %d: State() in OnOpen = %v, want open (or stream)", ci.id, st))
	}
	// The test's hook runs first, so that opened() counts only connections
	// whose hook has run (a room joined, a greeting sent), or panicked.
	defer func() {
		r.mu.Lock()
		r.conns = append(r.conns, ci)
		r.mu.Unlock()
	}()
	if r.open != nil {
		r.open(c)
	}
}

func (r *recorder) info(c *session.Conn, where string) *connInfo {
	ci, ok := c.Value().(*connInfo)
	if !ok {
		r.violation(fmt.Sprintf("%s on a connection without OnOpen (Value %T)", where, c.Value()))
		return nil
	}
	return ci
}

func (r *recorder) OnMessage(c *session.Conn, op session.Opcode, p []byte) {
	ci := r.info(c, "OnMessage")
	if ci == nil {
		return
	}
	if ci.closes.Load() != 0 {
		r.violation(fmt.Sprintf("conn %d: OnMessage after OnClose", ci.id))
	}
	ci.messages.Add(1)
	if r.message != nil {
		r.message(c, op, p)
	}
}

func (r *recorder) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	ci := r.info(c, "OnClose")
	if ci == nil {
		return
	}
	if n := ci.closes.Add(1); n != 1 {
		r.violation(fmt.Sprintf("conn %d: OnClose called %d times", ci.id, n))
	}
	ev := closeEvent{id: ci.id, code: code, reason: reason, err: err}
	r.mu.Lock()
	r.closed = append(r.closed, ev)
	r.mu.Unlock()
	if r.close != nil {
		r.close(c, code, reason, err)
	}
}

// OnDrain implements session.Drainer.
func (r *recorder) OnDrain(c *session.Conn) {
	if r.drain != nil {
		r.drain(c)
	}
}

func (r *recorder) opened() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *recorder) closedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.closed)
}

// firstClose waits for the first OnClose of all.
func (r *recorder) firstClose(t testing.TB) closeEvent {
	t.Helper()
	waitFor(t, "an OnClose", func() bool { return r.closedCount() > 0 })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed[0]
}

// waitCloseOf waits for the OnClose of connection id.
func (r *recorder) waitCloseOf(t testing.TB, id int64) closeEvent {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		r.mu.Lock()
		for _, ev := range r.closed {
			if ev.id == id {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no OnClose for connection %d within %v", id, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// conn returns what the recorder knows of connection id, or nil.
func (r *recorder) conn(id int64) *connInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ci := range r.conns {
		if ci.id == id {
			return ci
		}
	}
	return nil
}

// checkContract reports every violation seen and, once the server is gone,
// that every opened connection was closed exactly once.
func (r *recorder) checkContract(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Errorf("handler contract: %s", e)
	}
	for _, ci := range r.conns {
		if n := ci.closes.Load(); n != 1 {
			t.Errorf("handler contract: conn %d got OnClose %d times after shutdown, want exactly 1", ci.id, n)
		}
	}
}

// ---- server under test ----

type testServer struct {
	t      *testing.T
	engine string
	tls    *tls.Config // the clients' config when the server speaks TLS; nil: plain
	srv    *loop.Server
	rec    *recorder
	stats  *session.Stats
	addr   string
	baseG  int
	baseFD int
	done   bool

	mu      sync.Mutex
	closers []func()
}

var warmOnce sync.Once

// warmUp makes the process-wide lazily created resources (the runtime's
// netpoller, the resolver) exist before a baseline is taken.
func warmUp() {
	warmOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			s, err := ln.Accept()
			if err == nil {
				s.Close()
			}
			c.Close()
		}
		ln.Close()
	})
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// startServer starts engine with Loops 2 serving rec, after edit (may be
// nil) adjusted the options, on 127.0.0.1:0.
func startServer(t *testing.T, engine string, rec *recorder, edit func(o *loop.Options)) *testServer {
	t.Helper()
	return startServerAt(t, engine, rec, edit, "127.0.0.1:0")
}

// startServerAt is startServer on a given address.
func startServerAt(t *testing.T, engine string, rec *recorder, edit func(o *loop.Options), addr string) *testServer {
	t.Helper()
	warmUp()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	ts := &testServer{t: t, engine: engine, rec: rec, stats: new(session.Stats)}
	ts.baseG = settledGoroutines()
	ts.baseFD = countFDs()
	base, overTLS := splitEngine(engine)
	opts := loop.Options{Engine: base, Loops: 2}
	if overTLS {
		cert := harnessCert(t)
		opts.TLSConfig = cert.ServerConfig()
		ts.tls = cert.ClientConfig()
	}
	opts.Session.Stats = ts.stats
	if edit != nil {
		edit(&opts)
	}
	opts.Session.Upgrade = rec.upgrade(opts.Session.Upgrade)
	srv, err := loop.NewServer(rec, opts)
	if err != nil {
		t.Fatalf("NewServer(%s): %v", engine, err)
	}
	ts.srv = srv
	if err := srv.Listen(addr); err != nil {
		t.Fatalf("Listen(%s) with engine %s: %v", addr, engine, err)
	}
	ts.addr = srv.Addr().String()
	t.Cleanup(func() {
		if !ts.done {
			ts.closeClients()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			_ = ts.srv.Shutdown(ctx)
		}
	})
	return ts
}

// settledGoroutines is the goroutine count once short-lived ones are gone.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		time.Sleep(2 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func (ts *testServer) addCloser(f func()) {
	ts.mu.Lock()
	ts.closers = append(ts.closers, f)
	ts.mu.Unlock()
}

func (ts *testServer) closeClients() {
	ts.mu.Lock()
	cs := ts.closers
	ts.closers = nil
	ts.mu.Unlock()
	for _, f := range cs {
		f()
	}
}

// goroutineTolerance is how many goroutines over the baseline a check
// forgives: none. The baseline is taken once transient goroutines have
// settled, and the check polls until stragglers have exited, so that any
// goroutine the server leaves behind (one per loop, per connection, per
// flusher) shows.
const goroutineTolerance = 0

// finish closes the test's clients, waits for the server to see them go,
// shuts the server down and checks that it left no goroutine, no file
// descriptor and no broken handler contract behind.
func (ts *testServer) finish() {
	t := ts.t
	t.Helper()
	ts.closeClients()
	waitFor(t, "Conns() == 0 after the clients closed", func() bool { return ts.srv.Conns() == 0 })
	ts.shutdown()
	ts.checkLeaks()
}

// shutdown runs Shutdown and Wait, each bounded.
func (ts *testServer) shutdown() {
	t := ts.t
	t.Helper()
	ts.done = true
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- ts.srv.Wait() }()
	select {
	case <-waited:
	case <-time.After(waitTimeout):
		t.Errorf("Wait did not return within %v after Shutdown", waitTimeout)
	}
	if n := ts.srv.Conns(); n != 0 {
		t.Errorf("Conns() after Shutdown = %d, want 0", n)
	}
}

// checkLeaks checks the handler contract, then polls goroutines and file
// descriptors back to their baselines.
func (ts *testServer) checkLeaks() {
	t := ts.t
	t.Helper()
	ts.rec.checkContract(t)
	if ts.stats != nil {
		opened, closed := ts.stats.Opened.Load(), ts.stats.Closed.Load()
		if n := uint64(ts.rec.opened()); opened != n || closed != n {
			t.Errorf("Stats: Opened %d, Closed %d after Shutdown; the handler saw %d opened, all closed", opened, closed, n)
		}
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(waitTimeout)
	for {
		g, fd := runtime.NumGoroutine(), countFDs()
		if g <= ts.baseG+goroutineTolerance && fd <= ts.baseFD {
			return
		}
		if time.Now().After(deadline) {
			if g > ts.baseG+goroutineTolerance {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d goroutines after Shutdown, baseline %d (+%d tolerated)\n%s",
					g, ts.baseG, goroutineTolerance, buf)
			}
			if fd > ts.baseFD {
				t.Errorf("fd leak: %d open files after Shutdown, baseline %d\n%s", fd, ts.baseFD, listFDs())
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func listFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "  fd %s -> %s\n", e.Name(), l)
	}
	return b.String()
}

// ---- coder/websocket client ----

// dialWS opens a github.com/coder/websocket client on path (e.g. "/").
func (ts *testServer) dialWS(path string, opts *websocket.DialOptions) *websocket.Conn {
	ts.t.Helper()
	c, err := ts.tryDialWS(path, opts)
	if err != nil {
		ts.t.Fatalf("dial ws://%s%s: %v", ts.addr, path, err)
	}
	return c
}

func (ts *testServer) tryDialWS(path string, opts *websocket.DialOptions) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	scheme := "ws://"
	if ts.tls != nil {
		scheme = "wss://"
		if opts == nil {
			opts = &websocket.DialOptions{}
		}
		if opts.HTTPClient == nil {
			o := *opts
			tr := &http.Transport{TLSClientConfig: ts.tls}
			ts.addCloser(tr.CloseIdleConnections)
			o.HTTPClient = &http.Client{Transport: tr}
			opts = &o
		}
	}
	c, _, err := websocket.Dial(ctx, scheme+ts.addr+path, opts)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(4 << 20)
	ts.addCloser(func() { c.CloseNow() })
	return c, nil
}

// ---- raw client ----

// rawClient is a hand-written client on net.Dial: it builds frames itself so
// that it shares no code (and no bug) with the server. Over TLS, c is a
// crypto/tls client on the socket tcp.
type rawClient struct {
	t   testing.TB
	c   net.Conn
	tcp *net.TCPConn
	br  *bufio.Reader
	id  int64 // the server's connection number, from the 101 response
}

// closeWrite ends what the client sends: close_notify (over TLS), then FIN.
func (rc *rawClient) closeWrite() {
	if tc, ok := rc.c.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	_ = rc.tcp.CloseWrite()
}

// reset closes the socket with an RST (SO_LINGER 0), without close_notify.
func (rc *rawClient) reset() {
	_ = rc.tcp.SetLinger(0)
	_ = rc.tcp.Close()
}

// wrap is c as the server's clients speak: a crypto/tls client whose
// handshake starts with its first write or read, when the server speaks
// TLS.
func (ts *testServer) wrap(c *net.TCPConn) net.Conn {
	if ts.tls == nil {
		return c
	}
	cfg := ts.tls.Clone()
	cfg.ServerName, _, _ = net.SplitHostPort(ts.addr)
	return tls.Client(c, cfg)
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// handshakeRequest is a valid opening handshake for path.
func handshakeRequest(path string) string {
	return "GET " + path + " HTTP/1.1\r\n" +
		"Host: 127.0.0.1\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
}

func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialRaw connects a raw TCP client.
func (ts *testServer) dialRaw() *rawClient {
	ts.t.Helper()
	c, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
	if err != nil {
		ts.t.Fatalf("dial %s: %v", ts.addr, err)
	}
	tc := c.(*net.TCPConn)
	ts.addCloser(func() { tc.Close() })
	nc := ts.wrap(tc)
	return &rawClient{t: ts.t, c: nc, tcp: tc, br: bufio.NewReaderSize(nc, 64<<10)}
}

// openRaw connects a raw client and completes the opening handshake.
func (ts *testServer) openRaw() *rawClient {
	ts.t.Helper()
	rc := ts.dialRaw()
	rc.write([]byte(handshakeRequest("/")))
	rc.expectUpgrade()
	return rc
}

// serverClose is the server's OnClose for this client's connection.
func (rc *rawClient) serverClose(r *recorder) closeEvent {
	rc.t.Helper()
	return r.waitCloseOf(rc.t, rc.id)
}

func (rc *rawClient) write(p []byte) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := rc.c.Write(p); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// writeQuiet writes and ignores errors (the server may have closed already).
func (rc *rawClient) writeQuiet(p []byte) {
	rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, _ = rc.c.Write(p)
}

// readResponse reads an HTTP response head (and its body, if any).
func (rc *rawClient) readResponse() (*http.Response, []byte) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("reading HTTP response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading HTTP response body (status %d): %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	return resp, body
}

// expectUpgrade reads a 101 response and checks it against RFC 6455 4.2.2.
func (rc *rawClient) expectUpgrade() *http.Response {
	rc.t.Helper()
	resp, _ := rc.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		rc.t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		rc.t.Errorf("101 Upgrade header %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		rc.t.Errorf("101 Connection header %q, want Upgrade", resp.Header.Get("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(testKey); got != want {
		rc.t.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if _, err := fmt.Sscan(resp.Header.Get(connIDHeader), &rc.id); err != nil {
		rc.t.Errorf("101 without the %s header the UpgradeFunc added (Accept.Header): %q", connIDHeader, resp.Header.Get(connIDHeader))
	}
	return resp
}

// Opcodes, spelled out here rather than taken from the code under test.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// buildFrame encodes one frame: b0 is FIN|RSV|opcode, masked when mask is set
// (with a fixed non-zero key so that unmasking is exercised).
func buildFrame(b0 byte, mask bool, p []byte) []byte {
	var f []byte
	f = append(f, b0)
	var mbit byte
	if mask {
		mbit = 0x80
	}
	switch n := len(p); {
	case n <= 125:
		f = append(f, mbit|byte(n))
	case n <= 0xFFFF:
		f = append(f, mbit|126, byte(n>>8), byte(n))
	default:
		f = append(f, mbit|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if !mask {
		return append(f, p...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key[:]...)
	for i, b := range p {
		f = append(f, b^key[i&3])
	}
	return f
}

// clientFrame is a masked frame with FIN set as given.
func clientFrame(fin bool, op byte, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	return buildFrame(b0, true, p)
}

func closeBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

type rawFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// readFrame reads one server frame and checks what every server frame must
// satisfy: unmasked, no RSV bits (no extension is negotiated), minimal length.
func (rc *rawClient) readFrame() (rawFrame, error) {
	rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0F}
	if h[0]&0x70 != 0 {
		return f, fmt.Errorf("server frame with RSV bits %#x", h[0]&0x70)
	}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
		if n < 126 {
			return f, fmt.Errorf("server frame length %d not minimally encoded", n)
		}
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
		if n <= 0xFFFF {
			return f, fmt.Errorf("server frame length %d not minimally encoded", n)
		}
	}
	if n > 64<<20 {
		return f, fmt.Errorf("server frame length %d is absurd", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(rc.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// mustFrame reads one frame or fails the test.
func (rc *rawClient) mustFrame() rawFrame {
	rc.t.Helper()
	f, err := rc.readFrame()
	if err != nil {
		rc.t.Fatalf("reading a server frame: %v", err)
	}
	return f
}

// readMessage reads one data message, answering nothing; control frames other
// than close are skipped; a close fails the test.
func (rc *rawClient) readMessage() (op byte, p []byte) {
	rc.t.Helper()
	op = 0xFF
	for {
		f := rc.mustFrame()
		switch f.op {
		case opPing, opPong:
			continue
		case opClose:
			rc.t.Fatalf("got close %v while waiting for a message", describeClose(f.payload))
		case opCont:
			if op == 0xFF {
				rc.t.Fatalf("continuation frame without a message start")
			}
		default:
			if op != 0xFF {
				rc.t.Fatalf("new data frame (op %d) inside a fragmented message", f.op)
			}
			op = f.op
		}
		p = append(p, f.payload...)
		if f.fin {
			return op, p
		}
	}
}

func describeClose(p []byte) string {
	if len(p) < 2 {
		return fmt.Sprintf("close with %d-byte body", len(p))
	}
	return fmt.Sprintf("close %d %q", binary.BigEndian.Uint16(p), p[2:])
}

// expectClose reads frames until a close frame (data frames before it are an
// error unless skipData), checks its code, answers it with the same code, and
// then expects the server to close TCP.
func (rc *rawClient) expectClose(code uint16, skipData bool) (reason string) {
	rc.t.Helper()
	for {
		f := rc.mustFrame()
		if f.op != opClose {
			if f.op == opPing || f.op == opPong || skipData {
				continue
			}
			rc.t.Fatalf("got frame op %d (%q), want close %d", f.op, trunc(f.payload), code)
		}
		if len(f.payload) < 2 {
			rc.t.Fatalf("got %s, want close %d", describeClose(f.payload), code)
		}
		if got := binary.BigEndian.Uint16(f.payload); got != uint16(code) {
			rc.t.Fatalf("got %s, want close %d", describeClose(f.payload), code)
		}
		reason = string(f.payload[2:])
		rc.writeQuiet(clientFrame(true, opClose, closeBody(code, "")))
		rc.expectEOF()
		return reason
	}
}

// expectEOF expects the server to close the connection with nothing more sent.
func (rc *rawClient) expectEOF() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
	var b [512]byte
	n, err := rc.br.Read(b[:])
	if n > 0 {
		rc.t.Fatalf("got %d more bytes (%q) where the server should have closed the connection", n, b[:n])
	}
	if !isClosedErr(err) {
		rc.t.Fatalf("want the server to close the connection, read returned %v", err)
	}
}

func isClosedErr(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer")
}

func trunc(p []byte) string {
	if len(p) > 64 {
		return string(p[:64]) + "..."
	}
	return string(p)
}

// payload returns n deterministic bytes: valid UTF-8 text (with multi-byte
// runes) when text is set, arbitrary bytes otherwise.
func payload(n int, text bool, seed int) []byte {
	p := make([]byte, 0, n)
	if text {
		runes := []string{"a", "é", "€", "𝄞", "z", " ", "ß"}
		for i := seed; len(p) < n; i++ {
			r := runes[i%len(runes)]
			if len(p)+len(r) > n {
				r = "x"
			}
			p = append(p, r...)
		}
		return p
	}
	x := uint32(seed)*2654435761 + 1
	for len(p) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p = append(p, byte(x))
	}
	return p
}

// equalOrDescribe returns "" when a and b are equal, else where they differ.
func equalOrDescribe(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: %#x, want %#x", i, got[i], want[i])
		}
	}
	return "?"
}

// subtestName makes a case description usable as a subtest name (no spaces,
// no slashes, which -run would read as levels).
func subtestName(s string) string { return strings.NewReplacer(" ", "_", "/", "_").Replace(s) }
