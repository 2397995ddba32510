package core

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"
	"github.com/wsloop/wsloop/session"
)

// The TLS layer's tests run a loop on the fake driver against a real
// crypto/tls client, all on the test's goroutine: the client's conn hands
// what it writes to Loop.Input and, when it must read, runs the loop's
// tasks (the server's handshake goroutine posts its writes and its end
// there) and takes what the loop wrote.

// tlsPeer is the test's client: a crypto/tls client over pipe.
type tlsPeer struct {
	t    testing.TB
	l    *Loop
	d    *fakeDriver
	c    *Conn
	fd   int
	in   []byte // what the server wrote, for the client to read
	out  []byte // what the client wrote, for the server
	tc   *tls.Conn
	hold bool // keep out instead of handing it to the server (the test feeds it)
}

func (p *tlsPeer) pump() {
	p.l.RunTasks()
	if !p.hold && len(p.out) > 0 {
		b := p.out
		p.out = nil
		p.l.Input(p.c, b)
	}
	p.in = append(p.in, p.d.out[p.fd]...)
	p.d.out[p.fd] = p.d.out[p.fd][:0]
}

func (p *tlsPeer) Read(b []byte) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for len(p.in) == 0 {
		p.pump()
		if len(p.in) > 0 {
			break
		}
		if p.d.closed[p.fd] {
			return 0, io.EOF
		}
		if time.Now().After(deadline) {
			p.t.Fatal("the server wrote nothing for 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *tlsPeer) Write(b []byte) (int, error) {
	p.out = append(p.out, b...)
	return len(b), nil
}

func (p *tlsPeer) Close() error                     { return nil }
func (p *tlsPeer) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (p *tlsPeer) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (p *tlsPeer) SetDeadline(time.Time) error      { return nil }
func (p *tlsPeer) SetReadDeadline(time.Time) error  { return nil }
func (p *tlsPeer) SetWriteDeadline(time.Time) error { return nil }

// tlsLoop is testLoop speaking TLS.
func tlsLoop(t testing.TB, cfg *session.Config, h session.Handler) (*Loop, *fakeDriver) {
	t.Helper()
	l, d := testLoop(t, cfg, h)
	coreCert := testcert.Shared(t)
	if err := l.g.UseTLS(&Options{TLS: coreCert.ServerConfig()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Teardown(); l.g.StopHandshakes() })
	return l, d
}

// dialTLS accepts a connection on fd and runs a client's TLS handshake
// with it (cfg nil: the test certificate's client config).
func dialTLS(t testing.TB, l *Loop, d *fakeDriver, fd int, cfg *tls.Config) *tlsPeer {
	t.Helper()
	if !l.g.Claim() {
		t.Fatal("no place")
	}
	p := &tlsPeer{t: t, l: l, d: d, fd: fd}
	p.c = l.NewConn(fd)
	l.StartServer(p.c, netip.Addr{})
	if cfg == nil {
		cfg = testcert.Shared(t).ClientConfig()
		cfg.ServerName = "127.0.0.1"
	}
	p.tc = tls.Client(p, cfg)
	return p
}

// openTLS is dialTLS and the WebSocket handshake over it.
func openTLS(t testing.TB, l *Loop, d *fakeDriver, fd int) *tlsPeer {
	t.Helper()
	p := dialTLS(t, l, d, fd, nil)
	if err := p.tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	p.send([]byte(upgrade))
	head := p.read(len("HTTP/1.1 101 "))
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("upgrade over TLS answered %q", head)
	}
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		head = append(head, p.read(1)...)
	}
	return p
}

// send writes plaintext through the client and hands it to the server.
func (p *tlsPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.tc.Write(b); err != nil {
		p.t.Fatalf("client write: %v", err)
	}
	p.pump()
}

// read reads n bytes of plaintext the server sent.
func (p *tlsPeer) read(n int) []byte {
	p.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(p.tc, b); err != nil {
		p.t.Fatalf("client read: %v", err)
	}
	return b
}

// serverFrame is an unmasked binary frame header plus payload as the
// server sends it (payload < 64 KiB).
func serverFrame(op byte, p []byte) []byte {
	h := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		h = append(h, byte(len(p)))
	default:
		h = append(h, 126, byte(len(p)>>8), byte(len(p)))
	}
	return append(h, p...)
}

// maskedFrame is a client frame of any payload under 64 KiB.
func maskedFrame(op byte, p []byte) []byte {
	key := []byte{1, 2, 3, 4}
	h := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		h = append(h, 0x80|byte(len(p)))
	default:
		h = append(h, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	h = append(h, key...)
	for i, x := range p {
		h = append(h, x^key[i&3])
	}
	return h
}

var echoHandler = session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) }}

// The layout the memory design relies on is where it expects: if a Go
// release moves crypto/tls's buffers, this fails (and the core falls back
// to leaving them alone, which is correct but costs memory).
func TestTLSInternalsLayout(t *testing.T) {
	if !tlsInternals.ok {
		t.Fatalf("crypto/tls internals moved: %s; idle wss connections keep crypto/tls's buffers (see tlsbuf.go)", tlsInternals.reasonNotAvailable)
	}
}

// Echo over TLS, small and 16 KiB messages: after each, the connection
// keeps none of crypto/tls's read buffers (Go issue 43563 does not apply).
func TestTLSEchoLeavesNoReadBuffers(t *testing.T) {
	l, d := tlsLoop(t, &session.Config{}, echoHandler)
	p := openTLS(t, l, d, 1)
	for _, n := range []int{5, 125, 16 << 10, 40000, 64} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		p.send(maskedFrame(2, msg))
		want := serverFrame(2, msg)
		if got := p.read(len(want)); !bytes.Equal(got, want) {
			t.Fatalf("echo of %d bytes over TLS differs", n)
		}
		tc := l.tlss[p.c.slot]
		raw, hand, in := tlsInternals.rawInputOf(tc.tc), tlsInternals.handOf(tc.tc), tlsInternals.inputOf(tc.tc)
		if raw.Cap() != 0 || hand.Cap() != 0 || in.Size() != 0 || tc.partial != nil {
			t.Fatalf("after a %d-byte echo: rawInput cap %d, hand cap %d, input size %d, partial %v; want nothing kept",
				n, raw.Cap(), hand.Cap(), in.Size(), tc.partial != nil)
		}
	}
	if st := l.g.cfg.Stats; st.TLSHandshakes.Load() != 1 || st.TLSHandshakeErrors.Load() != 0 {
		t.Errorf("TLSHandshakes %d, errors %d; want 1 and 0", st.TLSHandshakes.Load(), st.TLSHandshakeErrors.Load())
	}
	if st := p.tc.ConnectionState(); st.NegotiatedProtocol != "http/1.1" && st.NegotiatedProtocol != "" {
		t.Errorf("ALPN %q", st.NegotiatedProtocol)
	}
}

// Records that arrive a byte at a time: crypto/tls keeps the partial
// record (the would-block error is not latched), the core moves it out of
// the loop's buffer between reads, and the message arrives whole.
func TestTLSPartialRecords(t *testing.T) {
	l, d := tlsLoop(t, &session.Config{}, echoHandler)
	p := openTLS(t, l, d, 1)
	msg := bytes.Repeat([]byte("partial "), 300)
	p.hold = true
	if _, err := p.tc.Write(maskedFrame(1, msg)); err != nil {
		t.Fatal(err)
	}
	ct := p.out
	p.out = nil
	sawPartial := false
	for i := range ct {
		l.Input(p.c, append([]byte(nil), ct[i]))
		if i < len(ct)-1 && l.tlss[p.c.slot].partial != nil {
			sawPartial = true
		}
	}
	p.hold = false
	if !sawPartial {
		t.Error("no partial record was held between reads")
	}
	want := serverFrame(1, msg)
	if got := p.read(len(want)); !bytes.Equal(got, want) {
		t.Fatal("echo of a record fed a byte at a time differs")
	}
	if l.tlss[p.c.slot].partial != nil {
		t.Error("a partial record is still held after the record completed")
	}
}

// Reading and sealing a message allocates nothing once warm.
func TestTLSEchoAllocs(t *testing.T) {
	l, d := tlsLoop(t, &session.Config{}, echoHandler)
	p := openTLS(t, l, d, 1)
	const runs = 300
	p.hold = true
	frame := maskedFrame(2, bytes.Repeat([]byte("e"), 64))
	var recs [][]byte
	for i := 0; i < runs+2; i++ {
		p.out = nil
		if _, err := p.tc.Write(frame); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, p.out)
	}
	d.out[1] = make([]byte, 0, 1<<16)
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		d.out[1] = d.out[1][:0]
		l.Input(p.c, recs[i])
		i++
	})
	if n := len(d.out[1]); n < 66 || n > 66+29 {
		t.Fatalf("echo wrote %d bytes", n)
	}
	if allocs != 0 && !raceEnabled {
		t.Fatalf("%v allocations per echoed message over TLS, want 0", allocs)
	}
}

// A peer that pings without reading gets its pongs coalesced over TLS too:
// while the socket is full only the latest pong waits, as plaintext, and
// it is sealed when its turn comes.
func TestTLSPongsCoalesce(t *testing.T) {
	l, d := tlsLoop(t, &session.Config{HighWater: 512}, echoHandler)
	p := openTLS(t, l, d, 1)
	d.take = 0
	fill := bytes.Repeat([]byte("f"), 600) // past HighWater
	p.send(maskedFrame(2, fill))
	for i := 0; i < 50; i++ {
		p.send(maskedFrame(9, []byte{byte(i)}))
	}
	q := l.outs[p.c.slot]
	if q == nil || q.pongLen != 3 || q.plain.n != 0 || q.pending() > 700 {
		t.Fatalf("queue after 50 pings past HighWater: pong %d bytes, plaintext %d, pending %d; want one pong waiting", q.pongLen, q.plain.n, q.pending())
	}
	d.take = -1
	l.Writable(p.c)
	if got := p.read(4 + len(fill)); !bytes.Equal(got, serverFrame(2, fill)) {
		t.Fatalf("first bytes %q", got)
	}
	if got := p.read(3); !bytes.Equal(got, serverFrame(10, []byte{49})) {
		t.Fatalf("want only the latest pong, got %q", got)
	}
	p.pump()
	if len(p.in) != 0 || len(p.tc.ConnectionState().PeerCertificates) == 0 {
		t.Fatalf("%d more bytes after the one pong", len(p.in))
	}
}

// A clean close sends close_notify behind the close frame.
func TestTLSCloseSendsCloseNotify(t *testing.T) {
	l, d := tlsLoop(t, &session.Config{}, echoHandler)
	p := openTLS(t, l, d, 1)
	p.send(maskedFrame(8, []byte{0x03, 0xe8}))
	if got := p.read(4); !bytes.Equal(got, serverFrame(8, []byte{0x03, 0xe8})) {
		t.Fatalf("close reply %q", got)
	}
	if n, err := p.tc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the close frame: %d, %v; want io.EOF (close_notify)", n, err)
	}
	if !d.closed[1] {
		t.Fatal("socket not closed")
	}
}

// The first bytes decide: not TLS is cut at once, plain HTTP is answered
// with a plain 400; both are counted, and no handshake goroutine starts.
func TestTLSRefusesWhatIsNotTLS(t *testing.T) {
	for _, tc := range []struct {
		name, in, answer string
	}{
		{"garbage", "\x00\x01\x02 hello", ""},
		{"bad record version", "\x16\x07\x01\x00\x10", ""},
		{"oversized record", "\x16\x03\x01\xff\xff", ""},
		{"plain HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.0 400 Bad Request"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			l, d := tlsLoop(t, &session.Config{}, echoHandler)
			p := dialTLS(t, l, d, 1, nil)
			l.Input(p.c, []byte(tc.in))
			if !d.closed[1] {
				t.Fatalf("%q: connection not cut", tc.in)
			}
			if !strings.HasPrefix(string(d.out[1]), tc.answer) || (tc.answer == "" && len(d.out[1]) > 0) {
				t.Fatalf("%q answered %q", tc.in, d.out[1])
			}
			if n := l.g.cfg.Stats.TLSHandshakeErrors.Load(); n != 1 {
				t.Fatalf("TLSHandshakeErrors %d, want 1", n)
			}
			if r, w := l.g.Handshakes(); r != 0 || w != 0 {
				t.Fatalf("handshakes running %d, waiting %d", r, w)
			}
		})
	}
}

// A peer that says nothing, or stops in the middle of its ClientHello, is
// cut at the handshake deadline, counted, and never costs a goroutine.
func TestTLSHandshakeDeadline(t *testing.T) {
	for _, first := range []string{"", "\x16\x03\x01\x02\x00\x01\x00"} {
		l, d := tlsLoop(t, &session.Config{HandshakeTimeout: 200 * time.Millisecond}, echoHandler)
		p := dialTLS(t, l, d, 1, nil)
		if first != "" {
			l.Input(p.c, []byte(first))
		}
		start := time.Now()
		for !d.closed[1] && time.Since(start) < 3*time.Second {
			time.Sleep(5 * time.Millisecond)
			l.Advance()
		}
		if !d.closed[1] {
			t.Fatalf("first bytes %q: not cut within 3 s of a 200 ms deadline", first)
		}
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Fatalf("cut after %v, before the deadline", el)
		}
		if n := l.g.cfg.Stats.TLSHandshakeTimeouts.Load(); n != 1 {
			t.Fatalf("TLSHandshakeTimeouts %d, want 1", n)
		}
		if r, _ := l.g.Handshakes(); r != 0 {
			t.Fatalf("%d handshake goroutines for a peer that never sent a whole record", r)
		}
	}
}

// A peer that stalls after its ClientHello holds a handshake goroutine
// until its deadline, which ends it (the goroutine exits).
func TestTLSStalledHandshakeIsCut(t *testing.T) {
	l, d := tlsLoop(t, &session.Config{HandshakeTimeout: 200 * time.Millisecond}, echoHandler)
	p := dialTLS(t, l, d, 1, nil)
	l.Input(p.c, clientHello(t))
	if r, _ := l.g.Handshakes(); r != 1 {
		t.Fatalf("%d handshakes running after a ClientHello, want 1", r)
	}
	start := time.Now()
	for !d.closed[1] && time.Since(start) < 3*time.Second {
		time.Sleep(5 * time.Millisecond)
		l.RunTasks()
		l.Advance()
	}
	if !d.closed[1] || l.g.cfg.Stats.TLSHandshakeTimeouts.Load() != 1 {
		t.Fatalf("closed %v, timeouts %d", d.closed[1], l.g.cfg.Stats.TLSHandshakeTimeouts.Load())
	}
	if len(d.out[1]) == 0 {
		t.Error("the server's first flight was not sent")
	}
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(5 * time.Millisecond) {
		if r, _ := l.g.Handshakes(); r == 0 {
			return
		}
	}
	t.Fatal("the handshake goroutine did not end after its connection was cut")
}

// clientHello is a real client's first flight.
func clientHello(t testing.TB) []byte {
	cc := &captureConn{got: make(chan []byte, 1), done: make(chan struct{})}
	cfg := testcert.Shared(t).ClientConfig()
	cfg.ServerName = "127.0.0.1"
	go func() { _ = tls.Client(cc, cfg).Handshake() }()
	defer close(cc.done)
	select {
	case b := <-cc.got:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no ClientHello")
		return nil
	}
}

// captureConn hands over a client's first write, then fails its reads.
type captureConn struct {
	tlsPeer
	got  chan []byte
	done chan struct{}
}

func (c *captureConn) Write(b []byte) (int, error) {
	select {
	case c.got <- append([]byte(nil), b...):
	default:
	}
	return len(b), nil
}

func (c *captureConn) Read([]byte) (int, error) {
	<-c.done
	return 0, io.EOF
}

func TestCheckHello(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want helloVerdict
	}{
		{"", helloPartial},
		{"\x16", helloPartial},
		{"\x16\x03", helloPartial},
		{"\x16\x03\x01\x00\x05abcd", helloPartial},
		{"\x16\x03\x01\x00\x05abcde", helloComplete},
		{"\x16\x03\x03\x00\x01x++", helloComplete},
		{"\x17\x03\x01\x00\x05abcde", helloGarbage},
		{"\x16\x02", helloGarbage},
		{"\x16\x03\x09\x00\x05abcde", helloGarbage},
		{"\x16\x03\x01\x00\x00", helloGarbage},
		{"\x16\x03\x01\x48\x01", helloGarbage},
		{"G", helloPlainHTTP},
		{"POST /x", helloPlainHTTP},
		{"OPTIONS * HTTP/1.1", helloPlainHTTP},
		{"Hello", helloGarbage},
	} {
		if got := checkHello([]byte(tc.in)); got != tc.want {
			t.Errorf("checkHello(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// What an idle TLS connection keeps on the server's heap, with and
// without taking crypto/tls's read buffers back (tlsbuf.go): after one
// small echo, and after one 16 KiB record. The figures are logged; the
// test asserts that with the buffers taken back a 16 KiB record leaves
// nothing behind, and that without it the record's buffer stays (the
// reason the code exists: Go issue 43563).
func TestTLSIdleHeapPerConnection(t *testing.T) {
	if !tlsInternals.ok {
		t.Skip("crypto/tls internals moved (TestTLSInternalsLayout fails)")
	}
	n := 200
	if raceEnabled || testing.Short() {
		n = 40
	}
	measure := func(size int, trim bool) int64 {
		defer func(ok bool) { tlsInternals.ok = ok }(tlsInternals.ok)
		tlsInternals.ok = trim
		l, d := tlsLoop(t, &session.Config{}, echoHandler)
		msg := maskedFrame(2, bytes.Repeat([]byte("m"), size))
		answer := len(serverFrame(2, make([]byte, size)))
		// One connection first, so that the loop's own buffers (record,
		// plaintext and ciphertext buffers, the session's) exist before
		// the count starts.
		warm := openTLS(t, l, d, 1)
		warm.send(msg)
		warm.read(answer)
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		for i := 1; i <= n; i++ {
			p := openTLS(t, l, d, i+1)
			p.send(msg)
			p.read(answer)
			delete(d.out, i+1)
		}
		// The clients are garbage now; the server's connections are not.
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		if l.Conns() != n+1 {
			t.Fatalf("%d connections open, want %d", l.Conns(), n+1)
		}
		return (int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc)) / int64(n)
	}
	smallTrim, bigTrim := measure(64, true), measure(16<<10, true)
	smallKeep, bigKeep := measure(64, false), measure(16<<10, false)
	t.Logf("live heap per idle TLS connection (server side, %d connections): one 64-byte echo %d B, one 16 KiB echo %d B; without taking crypto/tls's buffers back: %d B and %d B",
		n, smallTrim, bigTrim, smallKeep, bigKeep)
	if bigTrim > smallTrim+512 {
		t.Errorf("a 16 KiB record left %d B more per connection than a small one", bigTrim-smallTrim)
	}
	if bigKeep < bigTrim+8<<10 {
		t.Errorf("without the trimming a 16 KiB record costs only %d B more: the crypto/tls behaviour this works around has changed", bigKeep-bigTrim)
	}
}
