//go:build linux

package loop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/loop/internal/epoll"
	"github.com/wsloop/wsloop/loop/internal/netpoll"
	"github.com/wsloop/wsloop/session"
)

// Tests of the epoll engine over real loopback sockets, with a raw client
// that shares no code with the server. Waits are generous and bounded;
// nothing asserts speed.

const epollWait = 10 * time.Second

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(epollWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", epollWait, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// events counts what the server's handler saw.
type events struct {
	opens, closes, msgs atomic.Int64
	mu                  sync.Mutex
	codes               []session.StatusCode
}

func (ev *events) handler(echo bool) session.Handler {
	return session.HandlerFuncs{
		Open: func(c *session.Conn) { ev.opens.Add(1) },
		Message: func(c *session.Conn, op session.Opcode, p []byte) {
			ev.msgs.Add(1)
			if echo {
				_ = c.Send(op, p)
			}
		},
		Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
			ev.mu.Lock()
			ev.codes = append(ev.codes, code)
			ev.mu.Unlock()
			ev.closes.Add(1)
		},
	}
}

// startEpoll serves h on 127.0.0.1:0 with the epoll engine.
func startEpoll(t testing.TB, h session.Handler, tune func(*Options), hook func(core.Engine)) *Server {
	t.Helper()
	opts := Options{Engine: "epoll", Loops: 2}
	opts.Session.CloseTimeout = 2 * time.Second
	if tune != nil {
		tune(&opts)
	}
	s, err := NewServer(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(s.eng)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), epollWait)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// rawClient is a WebSocket client written against the RFC, not our code.
type rawClient struct {
	net.Conn
	r   *bufio.Reader
	out []byte
	in  []byte
}

func dialRaw(t testing.TB, addr net.Addr) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), epollWait)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{Conn: nc, r: bufio.NewReader(nc), in: make([]byte, 1024)}
}

func (c *rawClient) sendHandshake() error {
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	return err
}

func (c *rawClient) readHandshake() error {
	_ = c.SetReadDeadline(time.Now().Add(epollWait))
	status, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if status != "HTTP/1.1 101 Switching Protocols\r\n" {
		return fmt.Errorf("status line %q", status)
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
		if line == "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" {
			continue
		}
	}
}

func (c *rawClient) handshake(t testing.TB) {
	t.Helper()
	if err := c.sendHandshake(); err != nil {
		t.Fatal(err)
	}
	if err := c.readHandshake(); err != nil {
		t.Fatal(err)
	}
}

// frame appends a masked client frame (payload < 126 bytes).
func frame(dst []byte, op byte, p []byte) []byte {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	dst = append(dst, 0x80|op, 0x80|byte(len(p)))
	dst = append(dst, mask[:]...)
	for i, b := range p {
		dst = append(dst, b^mask[i&3])
	}
	return dst
}

// readFrame reads one unmasked server frame (payload < 126 bytes) into c.in.
func (c *rawClient) readFrame() (op byte, p []byte, err error) {
	_ = c.SetReadDeadline(time.Now().Add(epollWait))
	if _, err = io.ReadFull(c.r, c.in[:2]); err != nil {
		return 0, nil, err
	}
	if c.in[1]&0x80 != 0 || c.in[1]&0x7f > 125 {
		return 0, nil, fmt.Errorf("unexpected frame header % x", c.in[:2])
	}
	op, n := c.in[0]&0x0f, int(c.in[1]&0x7f)
	if _, err = io.ReadFull(c.r, c.in[:n]); err != nil {
		return 0, nil, err
	}
	return op, c.in[:n], nil
}

func (c *rawClient) echo(t testing.TB, msg []byte) {
	t.Helper()
	c.out = frame(c.out[:0], 1, msg)
	if _, err := c.Write(c.out); err != nil {
		t.Fatal(err)
	}
	op, p, err := c.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if op != 1 || !bytes.Equal(p, msg) {
		t.Fatalf("echo: op %d payload %q, want text %q", op, p, msg)
	}
}

func TestEpollEchoAndMidFrameDisconnect(t *testing.T) {
	ev := &events{}
	s := startEpoll(t, ev.handler(true), nil, nil)
	var clients []*rawClient
	for i := 0; i < 4; i++ {
		c := dialRaw(t, s.Addr())
		defer c.Close()
		c.handshake(t)
		clients = append(clients, c)
	}
	for round := 0; round < 3; round++ {
		for i, c := range clients {
			c.echo(t, []byte(fmt.Sprintf("hello %d/%d", i, round)))
		}
	}
	if n := s.Conns(); n != 4 {
		t.Fatalf("Conns = %d, want 4", n)
	}
	// A client that vanishes in the middle of a frame: the server drops the
	// partial frame, reports 1006 and frees the connection.
	half := frame(nil, 1, []byte("this frame never ends"))
	if _, err := clients[0].Write(half[:10]); err != nil {
		t.Fatal(err)
	}
	clients[0].Close()
	eventually(t, "OnClose of the vanished client", func() bool { return ev.closes.Load() == 1 })
	ev.mu.Lock()
	code := ev.codes[0]
	ev.mu.Unlock()
	if code != session.StatusAbnormal {
		t.Fatalf("vanished client closed with %d, want 1006", code)
	}
	eventually(t, "Conns to drop to 3", func() bool { return s.Conns() == 3 })
	// the others are unaffected
	for _, c := range clients[1:] {
		c.echo(t, []byte("still here"))
	}
	if got := ev.msgs.Load(); got != 12+3 {
		t.Fatalf("server saw %d messages, want 15", got)
	}
}

// Writes the kernel cannot take at once are kept and drained in order.
func TestEpollLargeWritesDrainInOrder(t *testing.T) {
	const size = 4 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	h := session.HandlerFuncs{Open: func(c *session.Conn) {
		_ = c.Send(session.Binary, payload)
		_ = c.Close(session.StatusNormal, "done")
	}}
	s := startEpoll(t, h, func(o *Options) { o.Session.HighWater = 2 * size }, nil)
	c := dialRaw(t, s.Addr())
	defer c.Close()
	c.handshake(t)
	_ = c.SetReadDeadline(time.Now().Add(epollWait))
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x82 || hdr[1] != 127 {
		t.Fatalf("header % x, want a binary frame with a 64-bit length", hdr)
	}
	got := make([]byte, size)
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload corrupted")
	}
	op, p, err := c.readFrame()
	if err != nil || op != 8 || len(p) < 2 || int(p[0])<<8|int(p[1]) != 1000 {
		t.Fatalf("after the payload: op %d %q %v, want close 1000", op, p, err)
	}
}

// A connection closed with bytes still unsent waits for them at most the
// linger time: a peer that never reads cannot hold the socket.
func TestEpollLingerBoundsUnsentBytes(t *testing.T) {
	fds0 := openFDs(t)
	ev := &events{}
	big := make([]byte, 8<<20)
	h := session.HandlerFuncs{
		Open: func(c *session.Conn) {
			_ = c.Send(session.Binary, big) // far more than the socket buffers take
			_ = c.Close(session.StatusNormal, "bye")
		},
		Close: ev.handler(false).OnClose,
	}
	s := startEpoll(t, h, func(o *Options) {
		o.Session.HighWater = 16 << 20
		o.Session.CloseTimeout = 100 * time.Millisecond
	}, func(e core.Engine) { e.Group().SetLinger(200 * time.Millisecond) })
	c := dialRaw(t, s.Addr())
	defer c.Close()
	c.handshake(t) // and then never read again
	eventually(t, "OnClose", func() bool { return ev.closes.Load() == 1 })
	eventually(t, "the socket to be released", func() bool { return s.Conns() == 0 })
	c.Close()
	// the running server keeps 2 listeners, 2 epoll fds and 2 eventfds
	eventually(t, "the connection's descriptor to be closed", func() bool { return openFDs(t) <= fds0+6 })
}

// Past MaxConns the listener leaves the poller: connections wait in the
// kernel's backlog and are served, in turn, as others close.
func TestEpollCapacityPausesAndResumes(t *testing.T) {
	ev := &events{}
	s := startEpoll(t, ev.handler(true), func(o *Options) { o.MaxConns = 2 }, nil)
	if s.Capacity() != 2 {
		t.Fatalf("Capacity = %d, want 2", s.Capacity())
	}
	var clients []*rawClient
	for i := 0; i < 4; i++ {
		c := dialRaw(t, s.Addr()) // connect completes in the backlog
		defer c.Close()
		if err := c.sendHandshake(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	eventually(t, "two connections open", func() bool { return ev.opens.Load() == 2 })
	// Which two were served depends on the kernel (two SO_REUSEPORT
	// listeners, each with its own backlog): find them by who answers.
	answered := func(c *rawClient) bool {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := c.r.Peek(1)
		return err == nil
	}
	split := func(cs []*rawClient) (yes, no []*rawClient) {
		for _, c := range cs {
			if answered(c) {
				yes = append(yes, c)
			} else {
				no = append(no, c)
			}
		}
		return
	}
	served, waiting := split(clients)
	if len(served) != 2 || s.Conns() != 2 {
		t.Fatalf("%d clients answered, Conns %d; want 2 and 2", len(served), s.Conns())
	}
	for _, c := range served {
		if err := c.readHandshake(); err != nil {
			t.Fatal(err)
		}
		c.echo(t, []byte("served"))
	}
	for len(waiting) > 0 {
		served[0].Close()
		served = served[1:]
		var now []*rawClient
		eventually(t, "a waiting client to be served after a slot freed", func() bool {
			now, waiting = split(waiting)
			return len(now) > 0
		})
		if len(now) != 1 {
			t.Fatalf("%d waiting clients served for one freed slot", len(now))
		}
		if err := now[0].readHandshake(); err != nil {
			t.Fatal(err)
		}
		now[0].echo(t, []byte("served later"))
		served = append(served, now[0])
		if n := s.Conns(); n > 2 {
			t.Fatalf("Conns = %d over capacity 2", n)
		}
	}
	if ev.opens.Load() != 4 {
		t.Fatalf("opens = %d, want 4", ev.opens.Load())
	}
}

// EMFILE from accept pauses accepting (no spinning) and retries later.
func TestEpollAcceptEMFILEPausesWithoutSpinning(t *testing.T) {
	var calls, fails atomic.Int64
	fake := func(lfd int) (int, error) {
		calls.Add(1)
		if fails.Load() < 3 {
			// Like a full descriptor table: the connection stays pending.
			fails.Add(1)
			return -1, unix.EMFILE
		}
		return netpoll.Accept(lfd)
	}
	ev := &events{}
	s := startEpoll(t, ev.handler(true), func(o *Options) { o.Loops = 1 }, func(e core.Engine) { epoll.SetAccept(e, fake) })
	c := dialRaw(t, s.Addr())
	defer c.Close()
	c.handshake(t)
	c.echo(t, []byte("after EMFILE"))
	if fails.Load() != 3 {
		t.Fatalf("fake accept failed %d times, want 3", fails.Load())
	}
	// Each failure pauses the loop for acceptRetry; a spinning loop would
	// have called accept thousands of times.
	if n := calls.Load(); n > 10 {
		t.Fatalf("accept called %d times for one connection and 3 EMFILEs", n)
	}
}

// Shutdown sends 1001 to open connections, waits for their replies, and
// leaves no goroutine or descriptor behind.
func TestEpollShutdownLeavesNothing(t *testing.T) {
	runtime.GC()
	fds0, g0 := openFDs(t), runtime.NumGoroutine()
	ev := &events{}
	opts := Options{Engine: "epoll", Loops: 2}
	s, err := NewServer(ev.handler(true), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	var clients []*rawClient
	for i := 0; i < 5; i++ {
		c := dialRaw(t, s.Addr())
		c.handshake(t)
		c.echo(t, []byte("x"))
		clients = append(clients, c)
	}
	half := dialRaw(t, s.Addr()) // still in its opening handshake
	defer half.Close()
	if _, err := io.WriteString(half, "GET / HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	// Clients answer the server's close frame with their own.
	var wg sync.WaitGroup
	codes := make([]int, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *rawClient) {
			defer wg.Done()
			defer c.Close()
			op, p, err := c.readFrame()
			if err != nil || op != 8 || len(p) < 2 {
				return
			}
			codes[i] = int(p[0])<<8 | int(p[1])
			_, _ = c.Write(frame(nil, 8, p[:2]))
			_, _ = io.Copy(io.Discard, c.r) // until the server closes
		}(i, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), epollWait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	for i, code := range codes {
		if code != 1001 {
			t.Fatalf("client %d got close code %d, want 1001", i, code)
		}
	}
	ev.mu.Lock()
	for _, code := range ev.codes {
		if code != 1001 {
			t.Fatalf("server OnClose code %d, want the echoed 1001", code)
		}
	}
	ev.mu.Unlock()
	if ev.closes.Load() != 5 {
		t.Fatalf("OnClose ran %d times, want 5", ev.closes.Load())
	}
	half.Close()
	eventually(t, "descriptors back to the start", func() bool { return openFDs(t) <= fds0 })
	eventually(t, "goroutines back to the start", func() bool { return runtime.NumGoroutine() <= g0 })
}

// Shutdown with peers that never answer: the rest is closed at the deadline.
func TestEpollShutdownDeadlineClosesTheRest(t *testing.T) {
	fds0 := openFDs(t)
	ev := &events{}
	s, err := NewServer(ev.handler(true), Options{Engine: "epoll", Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, s.Addr())
	defer c.Close()
	c.handshake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a connection that never answered")
	}
	if ev.closes.Load() != 1 {
		t.Fatalf("OnClose ran %d times, want 1", ev.closes.Load())
	}
	c.Close()
	eventually(t, "descriptors back to the start", func() bool { return openFDs(t) <= fds0 })
}

// Broadcast reaches every open connection once.
func TestEpollBroadcast(t *testing.T) {
	ev := &events{}
	s := startEpoll(t, ev.handler(false), nil, nil)
	var clients []*rawClient
	for i := 0; i < 6; i++ {
		c := dialRaw(t, s.Addr())
		defer c.Close()
		c.handshake(t)
		clients = append(clients, c)
	}
	eventually(t, "all open", func() bool { return ev.opens.Load() == 6 })
	s.Broadcast(session.Text, []byte("to everyone"))
	for i, c := range clients {
		op, p, err := c.readFrame()
		if err != nil || op != 1 || string(p) != "to everyone" {
			t.Fatalf("client %d: op %d %q %v", i, op, p, err)
		}
	}
}

// Handles from other goroutines reach their connection; a handle of a
// closed connection does nothing even when its slot is reused.
func TestEpollHandleGenerations(t *testing.T) {
	handles := make(chan session.Handle, 4)
	h := session.HandlerFuncs{Open: func(c *session.Conn) { handles <- c.Handle() }}
	s := startEpoll(t, h, func(o *Options) { o.Loops = 1 }, nil)
	a := dialRaw(t, s.Addr())
	a.handshake(t)
	ha := <-handles
	a.Close()
	eventually(t, "the first connection to close", func() bool { return s.Conns() == 0 })
	b := dialRaw(t, s.Addr())
	defer b.Close()
	b.handshake(t)
	hb := <-handles
	if ha.ID()>>32 != hb.ID()>>32 {
		t.Logf("slot not reused (%x, %x); generation check still exercised", ha.ID(), hb.ID())
	}
	ran := make(chan bool, 2)
	_ = ha.Do(func(c *session.Conn) { ran <- true })
	if err := hb.Send(session.Text, []byte("for b")); err != nil {
		t.Fatal(err)
	}
	op, p, err := b.readFrame()
	if err != nil || op != 1 || string(p) != "for b" {
		t.Fatalf("b got op %d %q %v", op, p, err)
	}
	select {
	case <-ran:
		t.Fatal("a task for a closed connection ran")
	default:
	}
}

// The engine's read -> Feed -> Write path allocates nothing per message
// (the whole process is counted: client, server and session).
func TestEpollEchoAllocatesNothing(t *testing.T) {
	ev := &events{}
	s := startEpoll(t, ev.handler(true), func(o *Options) { o.Loops = 1 }, nil)
	c := dialRaw(t, s.Addr())
	defer c.Close()
	c.handshake(t)
	msg := bytes.Repeat([]byte("a"), 64)
	wire := frame(nil, 2, msg)
	buf := make([]byte, 2+64)
	round := func() {
		if _, err := c.Write(wire); err != nil {
			panic(err)
		}
		if _, err := io.ReadFull(c.r, buf); err != nil {
			panic(err)
		}
	}
	for i := 0; i < 100; i++ {
		round()
	}
	_ = c.SetReadDeadline(time.Time{})
	if a := testing.AllocsPerRun(500, round); a > 0 {
		t.Fatalf("%v allocations per echoed message, want 0", a)
	}
	if buf[0] != 0x82 || buf[1] != 64 || !bytes.Equal(buf[2:], msg) {
		t.Fatalf("echo frame % x", buf[:8])
	}
}

// A handshake deadline that the request beats by far (the usual case) is
// dropped at the next tick: it never takes a place in a wheel slot, where
// it would wait for its time (10 s) in memory.
func TestEpollFastHandshakeLeavesNoTimer(t *testing.T) {
	h := session.HandlerFuncs{}
	s := startEpoll(t, h, func(o *Options) { o.Loops = 1; o.Session.PingInterval = -1 }, nil)
	l := s.eng.Group().Loops()[0]
	for i := 0; i < 50; i++ {
		c := dialRaw(t, s.Addr())
		defer c.Close()
		c.handshake(t)
	}
	timers := func() int {
		ch := make(chan int, 1)
		_ = l.Post(func() { ch <- l.Timers() })
		return <-ch
	}
	// Well within the 10 s handshake timeout: the entries must be gone
	// because they were dropped, not because they fired.
	deadline := time.Now().Add(3 * time.Second)
	for timers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers still in the wheel after the handshakes", timers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkEpollEcho is one client's 64-byte echo round trip over loopback
// (client, kernel and server together); -benchmem shows the whole process
// allocating nothing per message.
func BenchmarkEpollEcho(b *testing.B) {
	ev := &events{}
	s := startEpoll(b, ev.handler(true), func(o *Options) { o.Loops = 1 }, nil)
	c := dialRaw(b, s.Addr())
	defer c.Close()
	c.handshake(b)
	_ = c.SetReadDeadline(time.Time{})
	msg := bytes.Repeat([]byte("a"), 64)
	wire := frame(nil, 2, msg)
	buf := make([]byte, 2+64)
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if _, err := c.Write(wire); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c.r, buf); err != nil {
			b.Fatal(err)
		}
	}
}
