package session

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"unsafe"

	"crypto/sha1"
)

// fakeTransport is a minimal engine: it runs a tconn's Machine calls with
// one IO and records what the Machine asked for, as if every byte were
// written at once (buffered is what it claims to hold unsent).
type fakeTransport struct {
	io         IO
	out        []byte // everything written, in order
	writes     int    // calls that produced output
	pongs      int    // pongs written
	closed     int    // closes asked for
	timer      int64  // the Machine's deadline after its last rearm
	timerSets  int
	buffered   int    // reported as IO.Queued
	conn       *tconn // when set, a close asked for is reported back (Closed) at once
	afterClose int    // calls with output after the close was asked for
	exec       Executor
	id         uint64
}

// call runs fn as one engine call at now and records its answer.
func (f *fakeTransport) call(now int64, fn func(io *IO)) {
	io := &f.io
	io.Now, io.Queued, io.Exec, io.ID = now, f.buffered, f.exec, f.id
	if io.Exec == nil {
		io.Exec = f
	}
	fn(io)
	if len(io.Out) > 0 || len(io.Pong) > 0 {
		if f.closed > 0 {
			f.afterClose++
		}
		f.writes++
		f.out = append(f.out, io.Out...)
		if len(io.Pong) > 0 {
			f.pongs++
			f.out = append(f.out, io.Pong...)
		}
	}
	if io.Rearm && f.conn != nil {
		f.timer = f.conn.m().Deadline(now)
		f.timerSets++
	}
	closeReq := io.Close
	io.Reset()
	if closeReq {
		f.closed++
		if f.closed == 1 && f.conn != nil {
			f.call(now, func(io *IO) { f.conn.m().Closed(io, nil) })
		}
	}
}

// Execute and ExecuteAll make the fake engine the connection's executor:
// tasks run at once, as one engine call each.
func (f *fakeTransport) Execute(id uint64, fn func(*Conn), missed func(), cost int) error {
	if f.conn != nil && !f.conn.do(fn) && missed != nil {
		missed()
	}
	return nil
}

func (f *fakeTransport) ExecuteAll(ids []uint64, fn func(*Conn), cost int) error {
	for _, id := range ids {
		_ = f.Execute(id, fn, nil, cost)
	}
	return nil
}

func (f *fakeTransport) RemoteAddr(id uint64) net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

// tconn is a Conn driven through the fake engine: its engine methods and
// its acting Conn methods each run as one engine call.
type tconn struct {
	Conn
	ft *fakeTransport
}

// m is the Machine of the same memory.
func (t *tconn) m() *Machine { return (*Machine)(unsafe.Pointer(&t.Conn)) }

func (t *tconn) Init(cfg *Config, ft *fakeTransport, now int64) {
	t.ft, ft.conn = ft, t
	ft.call(now, func(io *IO) { t.m().InitServer(io, cfg) })
}

func (t *tconn) InitClient(cfg *Config, ft *fakeTransport, r *ClientRequest, h Handler, now int64) {
	t.ft, ft.conn = ft, t
	ft.call(now, func(io *IO) { t.m().InitClient(io, cfg, r, h) })
}

func (t *tconn) Feed(p []byte, now int64) { t.ft.call(now, func(io *IO) { t.m().Feed(io, p) }) }
func (t *tconn) Tick(now int64)           { t.ft.call(now, func(io *IO) { t.m().Tick(io) }) }
func (t *tconn) Drained(now int64)        { t.ft.call(now, func(io *IO) { t.m().Drained(io) }) }
func (t *tconn) TransportClosed(err error) {
	t.ft.call(t0, func(io *IO) { t.m().Closed(io, err) })
}

// do runs fn as a task (Handle.Do) at t0.
func (t *tconn) do(fn func(c *Conn)) (ran bool) {
	t.ft.call(t0, func(io *IO) { ran = t.m().Run(io, fn) })
	return ran
}

func (t *tconn) Send(op Opcode, p []byte) (err error) {
	err = ErrClosed
	t.do(func(c *Conn) { err = c.Send(op, p) })
	return err
}

func (t *tconn) SendPrepared(m *Prepared) (err error) {
	err = ErrClosed
	t.do(func(c *Conn) { err = c.SendPrepared(m) })
	return err
}

func (t *tconn) Ping(p []byte) (err error) {
	err = ErrClosed
	t.do(func(c *Conn) { err = c.Ping(p) })
	return err
}

func (t *tconn) Close(code StatusCode, reason string) (err error) {
	err = ErrClosed
	t.do(func(c *Conn) { err = c.Close(code, reason) })
	return err
}

func (t *tconn) WriteHTTP(resp []byte) (err error) {
	err = ErrClosed
	t.do(func(c *Conn) { err = c.WriteHTTP(resp) })
	return err
}

func (t *tconn) EndHTTP(keep bool) (err error) {
	err = ErrClosed
	t.do(func(c *Conn) { err = c.EndHTTP(keep) })
	return err
}

// recorder is a Handler that records events and, when echo is set, sends
// every message back.
type recorder struct {
	echo      bool
	events    []string
	msgs      []tframe
	closes    int
	code      StatusCode
	reason    string
	err       error
	onMessage func(c *Conn, op Opcode, p []byte)
}

func (r *recorder) OnOpen(c *Conn) { r.events = append(r.events, "open") }

func (r *recorder) OnMessage(c *Conn, op Opcode, p []byte) {
	r.events = append(r.events, fmt.Sprintf("msg:%d:%d", op, len(p)))
	r.msgs = append(r.msgs, tframe{fin: true, op: byte(op), payload: append([]byte(nil), p...)})
	if r.onMessage != nil {
		r.onMessage(c, op, p)
	}
	if r.echo {
		_ = c.Send(op, p)
	}
}

func (r *recorder) OnClose(c *Conn, code StatusCode, reason string, err error) {
	r.events = append(r.events, fmt.Sprintf("close:%d", code))
	r.closes++
	r.code, r.reason, r.err = code, reason, err
}

// tframe is a frame as the test builds or decodes it, independently of codec.
type tframe struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
	// rawLen, when set, replaces the length field: 0x80|... is not used;
	// it is the exact bytes after the first byte's opcode byte (length
	// indicator and extended length), mask bit added by the encoder.
	rawLen []byte
	// lenOverride announces a different length than len(payload).
	lenOverride int64
}

func (f tframe) String() string {
	p := f.payload
	if len(p) > 40 {
		return fmt.Sprintf("{fin:%v op:%d len:%d}", f.fin, f.op, len(p))
	}
	return fmt.Sprintf("{fin:%v op:%d %q}", f.fin, f.op, p)
}

// encodeFrames writes frames as a peer would: masked (a client's frames,
// fed to a server-role Conn) or not.
func encodeFrames(fs []tframe, masked bool, rng *rand.Rand) []byte {
	b, _ := encodeFramesPos(fs, masked, rng)
	return b
}

// encodeFramesPos is encodeFrames that also returns where each frame's
// payload starts in the output.
func encodeFramesPos(fs []tframe, masked bool, rng *rand.Rand) (b []byte, starts []int) {
	for _, f := range fs {
		b0 := f.op & 0x0f
		if f.fin {
			b0 |= 0x80
		}
		b0 |= (f.rsv & 7) << 4
		b = append(b, b0)
		var mbit byte
		if masked {
			mbit = 0x80
		}
		if f.rawLen != nil {
			b = append(b, f.rawLen[0]|mbit)
			b = append(b, f.rawLen[1:]...)
		} else {
			n := int64(len(f.payload))
			if f.lenOverride != 0 {
				n = f.lenOverride
			}
			switch {
			case n < 126:
				b = append(b, byte(n)|mbit)
			case n <= 0xffff:
				b = append(b, 126|mbit)
				b = binary.BigEndian.AppendUint16(b, uint16(n))
			default:
				b = append(b, 127|mbit)
				b = binary.BigEndian.AppendUint64(b, uint64(n))
			}
		}
		starts = append(starts, len(b))
		if masked {
			starts[len(starts)-1] += 4
			var key [4]byte
			binary.LittleEndian.PutUint32(key[:], rng.Uint32())
			b = append(b, key[:]...)
			start := len(b)
			b = append(b, f.payload...)
			for i := range f.payload {
				b[start+i] ^= key[i&3]
			}
		} else {
			b = append(b, f.payload...)
		}
	}
	return b, starts
}

// decodeFrames parses b as frames sent by a Conn: masked must match each
// frame's mask bit (client-role output is masked, server-role is not).
func decodeFrames(b []byte, masked bool) ([]tframe, error) {
	var fs []tframe
	for len(b) > 0 {
		if len(b) < 2 {
			return fs, fmt.Errorf("truncated header")
		}
		f := tframe{fin: b[0]&0x80 != 0, rsv: (b[0] >> 4) & 7, op: b[0] & 0x0f}
		m := b[1]&0x80 != 0
		if m != masked {
			return fs, fmt.Errorf("frame mask bit %v, want %v", m, masked)
		}
		n := int(b[1] & 0x7f)
		i := 2
		switch n {
		case 126:
			if len(b) < 4 {
				return fs, fmt.Errorf("truncated length")
			}
			n = int(binary.BigEndian.Uint16(b[2:]))
			if n < 126 {
				return fs, fmt.Errorf("non-minimal length")
			}
			i = 4
		case 127:
			if len(b) < 10 {
				return fs, fmt.Errorf("truncated length")
			}
			n = int(binary.BigEndian.Uint64(b[2:]))
			if n <= 0xffff {
				return fs, fmt.Errorf("non-minimal length")
			}
			i = 10
		}
		var key [4]byte
		if m {
			if len(b) < i+4 {
				return fs, fmt.Errorf("truncated mask")
			}
			copy(key[:], b[i:])
			i += 4
		}
		if len(b) < i+n {
			return fs, fmt.Errorf("truncated payload: have %d want %d", len(b)-i, n)
		}
		f.payload = append([]byte{}, b[i:i+n]...)
		if m {
			for j := range f.payload {
				f.payload[j] ^= key[j&3]
			}
		}
		fs = append(fs, f)
		b = b[i+n:]
	}
	return fs, nil
}

// acceptFor computes Sec-WebSocket-Accept independently of codec.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

func upgradeRequest(extra string) string {
	return "GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// keyOf extracts the Sec-WebSocket-Key a client-role Conn wrote.
func keyOf(t testing.TB, req []byte) string {
	for _, line := range strings.Split(string(req), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no key in request %q", req)
	return ""
}

func switchingResponse(key, extra string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + acceptFor(key) + "\r\n" + extra + "\r\n"
}

const t0 = int64(1_000_000_000_000) // engine clock origin in tests (ns)

// openConn returns a Conn of role r in StateOpen through a real handshake,
// with the transport's output cleared.
func openConn(t testing.TB, cfg *Config, r Role, h Handler) (*tconn, *fakeTransport) {
	t.Helper()
	c := &tconn{}
	ft := &fakeTransport{conn: c}
	if r == Server {
		cfg.Handler = h
		c.Init(cfg, ft, t0)
		c.Feed([]byte(upgradeRequest("")), t0)
		if !bytes.HasPrefix(ft.out, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("handshake response %q", ft.out)
		}
	} else {
		c.InitClient(cfg, ft, &ClientRequest{Host: "example.com", Path: "/"}, h, t0)
		c.Feed([]byte(switchingResponse(keyOf(t, ft.out), "")), t0)
	}
	if c.State() != StateOpen {
		t.Fatalf("state %v after handshake; wrote %q", c.State(), ft.out)
	}
	ft.out = ft.out[:0]
	ft.writes = 0
	return c, ft
}

// feedSplit feeds in to c in pieces chosen by mode: "whole", "bytes",
// "chunk:N" or "rand:SEED". after, when set, runs after each piece with the
// number of bytes fed so far.
func feedSplit(c *tconn, in []byte, mode string, after func(fed int)) {
	// Feed may modify its input in place: give it a copy.
	buf := append([]byte(nil), in...)
	pieces := splitPoints(len(buf), mode)
	start := 0
	for _, end := range pieces {
		c.Feed(buf[start:end], t0)
		start = end
		if after != nil {
			after(end)
		}
	}
}

func splitPoints(n int, mode string) []int {
	var pts []int
	switch {
	case mode == "whole":
		if n > 0 {
			pts = append(pts, n)
		}
	case mode == "bytes":
		for i := 1; i <= n; i++ {
			pts = append(pts, i)
		}
	case strings.HasPrefix(mode, "chunk:"):
		var k int
		fmt.Sscanf(mode, "chunk:%d", &k)
		for i := k; ; i += k {
			if i >= n {
				pts = append(pts, n)
				break
			}
			pts = append(pts, i)
		}
	case strings.HasPrefix(mode, "rand:"):
		var seed uint64
		fmt.Sscanf(mode, "rand:%d", &seed)
		rng := rand.New(rand.NewPCG(seed, 7))
		maxPiece := 64
		if n > 1<<16 {
			maxPiece = 64 << 10
		}
		for i := 0; i < n; {
			i += 1 + rng.IntN(maxPiece)
			if i > n {
				i = n
			}
			pts = append(pts, i)
		}
	}
	return pts
}

func newRng() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
