package loop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/coder/websocket"

	"github.com/wsloop/wsloop/session"
)

// myEngines are the engines this file's owner writes; the cross-engine
// suite (integration_test.go) covers all of them.
var myEngines = []string{"gnet", "goroutine"}

// testWait bounds every wait in these tests: generous, never asserted as speed.
const testWait = 10 * time.Second

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer starts h on 127.0.0.1:0 with the engine and shuts it down at
// the end of the test.
func startServer(t *testing.T, engine string, h session.Handler, opts Options) *Server {
	t.Helper()
	opts.Engine = engine
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.Loops == 0 {
		opts.Loops = 2
	}
	s, err := NewServer(h, opts)
	if err != nil {
		t.Fatalf("NewServer(%s): %v", engine, err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("Listen(%s): %v", engine, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func wsURL(s *Server, path string) string { return "ws://" + s.Addr().String() + path }

// dial opens a coder/websocket client and closes it at the end of the test.
func dial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echoHandler sends every message back.
func echoHandler() session.Handler {
	return session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) {
		_ = c.Send(op, p)
	}}
}

// roundTrip writes msg and reads one message back.
func roundTrip(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	gotTyp, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gotTyp != typ {
		t.Fatalf("message type %v, want %v", gotTyp, typ)
	}
	return got
}

// testEcho echoes text and binary messages of several sizes, including
// ones larger than a read buffer (split frames) on several connections.
func testEcho(t *testing.T, engine string, opts Options) {
	s := startServer(t, engine, echoHandler(), opts)
	for i := 0; i < 3; i++ {
		c := dial(t, wsURL(s, "/echo"), nil)
		c.SetReadLimit(1 << 20)
		for _, n := range []int{0, 1, 125, 126, 4096, 65535, 65536, 200000} {
			msg := []byte(strings.Repeat("héllo wörld ", n/13+1))[:n]
			for len(msg) > 0 && !utf8Valid(msg) {
				msg = msg[:len(msg)-1]
			}
			if got := roundTrip(t, c, websocket.MessageText, msg); string(got) != string(msg) {
				t.Fatalf("text echo of %d bytes: got %d bytes, differs", len(msg), len(got))
			}
			bin := make([]byte, n)
			for j := range bin {
				bin[j] = byte(j * 7)
			}
			if got := roundTrip(t, c, websocket.MessageBinary, bin); string(got) != string(bin) {
				t.Fatalf("binary echo of %d bytes differs", n)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	waitUntil(t, "connections to go", func() bool { return s.Conns() == 0 })
}

func utf8Valid(p []byte) bool { return strings.ToValidUTF8(string(p), "\x00") == string(p) }

func TestNewServerRejectsUnknownEngine(t *testing.T) {
	_, err := NewServer(echoHandler(), Options{Engine: "nope", Logger: quietLogger()})
	if err == nil {
		t.Fatal("NewServer accepted an unknown engine")
	}
	for _, name := range []string{`"nope"`, `"gnet"`, `"goroutine"`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestNewServerTLSNeedsGoroutineEngine(t *testing.T) {
	cfg := testcert.New(t).ServerConfig()
	_, err := NewServer(echoHandler(), Options{Engine: "gnet", TLSConfig: cfg, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "-engine goroutine") {
		t.Fatalf("NewServer(gnet, TLS) = %v, want an error advising -engine goroutine", err)
	}
}

func TestNewServerDefaults(t *testing.T) {
	var seen session.Config
	s, err := NewServer(echoHandler(), Options{Engine: "goroutine", Logger: quietLogger(), MaxConns: 7})
	if err != nil {
		t.Fatal(err)
	}
	seen = s.cfg
	if seen.Role != session.Server || seen.HTTP == nil || seen.Handler == nil {
		t.Errorf("config not completed: role %v, HTTP set %v, handler set %v", seen.Role, seen.HTTP != nil, seen.Handler != nil)
	}
	if seen.MaxMessage != 1<<20 || seen.HandshakeTimeout != 10*time.Second || seen.CloseTimeout != 5*time.Second {
		t.Errorf("defaults: MaxMessage %d, HandshakeTimeout %v, CloseTimeout %v", seen.MaxMessage, seen.HandshakeTimeout, seen.CloseTimeout)
	}
	if s.Capacity() != 7 || s.Engine() != "goroutine" || s.Loops() < 1 {
		t.Errorf("Capacity %d Engine %q Loops %d", s.Capacity(), s.Engine(), s.Loops())
	}
}

// TestBroadcastReachesEveryClientOnce sends K broadcasts to N clients and
// checks that each client receives exactly the K messages, in order.
func TestBroadcastReachesEveryClientOnce(t *testing.T) {
	for _, engine := range myEngines {
		t.Run(engine, func(t *testing.T) {
			var opened atomic.Int32
			h := session.HandlerFuncs{Open: func(*session.Conn) { opened.Add(1) }}
			s := startServer(t, engine, h, Options{})
			const N, K = 20, 5
			clients := make([]*websocket.Conn, N)
			for i := range clients {
				clients[i] = dial(t, wsURL(s, "/"), nil)
			}
			waitUntil(t, "all opened", func() bool { return opened.Load() == N })
			for k := 0; k < K; k++ {
				s.Broadcast(session.Text, []byte{'m', byte('0' + k)})
			}
			var wg sync.WaitGroup
			errs := make(chan error, N)
			for _, c := range clients {
				wg.Add(1)
				go func(c *websocket.Conn) {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), testWait)
					defer cancel()
					for k := 0; k < K; k++ {
						_, p, err := c.Read(ctx)
						if err != nil {
							errs <- err
							return
						}
						if want := string([]byte{'m', byte('0' + k)}); string(p) != want {
							errs <- errors.New("got " + string(p) + ", want " + want)
							return
						}
					}
					// Nothing more may arrive: a read must time out.
					short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
					defer cancel2()
					if _, p, err := c.Read(short); err == nil {
						errs <- errors.New("extra message " + string(p))
					}
				}(c)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestShutdownGoingAwayNoLeaks checks that Shutdown sends 1001 to every
// client, that Conns drops to zero, and that no goroutine of the server is
// left behind.
func TestShutdownGoingAwayNoLeaks(t *testing.T) {
	for _, engine := range myEngines {
		t.Run(engine, func(t *testing.T) {
			before := runtime.NumGoroutine()
			var closes atomic.Int32
			h := session.HandlerFuncs{Close: func(*session.Conn, session.StatusCode, string, error) { closes.Add(1) }}
			s, err := NewServer(h, Options{Engine: engine, Loops: 2, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Listen("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			waitDone := make(chan error, 1)
			go func() { waitDone <- s.Wait() }()

			const N = 5
			codes := make(chan websocket.StatusCode, N)
			var readers sync.WaitGroup
			for i := 0; i < N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), testWait)
				c, _, err := websocket.Dial(ctx, wsURL(s, "/"), nil)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				readers.Add(1)
				go func() {
					defer readers.Done()
					defer c.CloseNow()
					ctx, cancel := context.WithTimeout(context.Background(), testWait)
					defer cancel()
					_, _, err := c.Read(ctx) // answers the close frame, then fails
					codes <- websocket.CloseStatus(err)
				}()
			}
			waitUntil(t, "connections open", func() bool { return s.Conns() == N })

			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			readers.Wait()
			close(codes)
			for code := range codes {
				if code != websocket.StatusGoingAway {
					t.Errorf("client saw close status %v, want 1001", code)
				}
			}
			if s.Conns() != 0 {
				t.Errorf("Conns after Shutdown = %d", s.Conns())
			}
			if got := closes.Load(); got != N {
				t.Errorf("OnClose ran %d times, want %d", got, N)
			}
			select {
			case <-waitDone:
			case <-time.After(testWait):
				t.Fatal("Wait did not return after Shutdown")
			}
			http.DefaultClient.CloseIdleConnections()
			deadline := time.Now().Add(testWait)
			for runtime.NumGoroutine() > before+1 {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<16)
					t.Fatalf("goroutines: %d before, %d after Shutdown\n%s", before, runtime.NumGoroutine(),
						buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// testSendToSelf echoes through the connection's own Handle from inside
// OnMessage (a task posted to the connection's own goroutine or loop).
func testSendToSelf(t *testing.T, engine string) {
	h := session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) {
		if err := c.Handle().Send(op, append([]byte("self:"), p...)); err != nil {
			_ = c.Close(session.StatusInternalError, err.Error())
		}
	}}
	s := startServer(t, engine, h, Options{})
	c := dial(t, wsURL(s, "/"), nil)
	for i := 0; i < 50; i++ {
		msg := []byte{'a' + byte(i%26)}
		if got := roundTrip(t, c, websocket.MessageText, msg); string(got) != "self:"+string(msg) {
			t.Fatalf("got %q", got)
		}
	}
}

// testMaxConns checks that connections past MaxConns are refused and that
// room frees up when one closes.
func testMaxConns(t *testing.T, engine string) {
	s := startServer(t, engine, echoHandler(), Options{MaxConns: 2})
	if s.Capacity() != 2 {
		t.Fatalf("Capacity = %d, want 2", s.Capacity())
	}
	a := dial(t, wsURL(s, "/"), nil)
	dial(t, wsURL(s, "/"), nil)
	waitUntil(t, "two connections", func() bool { return s.Conns() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if c, _, err := websocket.Dial(ctx, wsURL(s, "/"), nil); err == nil {
		c.CloseNow()
		t.Fatal("a third connection was accepted with MaxConns 2")
	}
	// A raw client that sends nothing reads the refusal cleanly.
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(testWait))
	refusal, _ := io.ReadAll(nc)
	nc.Close()
	if !strings.HasPrefix(string(refusal), "HTTP/1.1 503 ") {
		t.Errorf("over capacity: got %q, want a 503 response", refusal)
	}
	a.CloseNow()
	waitUntil(t, "a free place", func() bool { return s.Conns() < 2 })
	if got := roundTrip(t, dial(t, wsURL(s, "/"), nil), websocket.MessageText, []byte("x")); string(got) != "x" {
		t.Fatalf("echo after a place freed: %q", got)
	}
}

// testStaleHandle checks that a Handle of a closed connection reaches
// nothing, even when a new connection has taken its place.
func testStaleHandle(t *testing.T, engine string) {
	handles := make(chan session.Handle, 4)
	h := session.HandlerFuncs{
		Open:    func(c *session.Conn) { handles <- c.Handle() },
		Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) },
	}
	s := startServer(t, engine, h, Options{Loops: 1})
	first := dial(t, wsURL(s, "/"), nil)
	old := <-handles
	first.CloseNow()
	waitUntil(t, "the first connection to go", func() bool { return s.Conns() == 0 })
	second := dial(t, wsURL(s, "/"), nil)
	cur := <-handles
	if old == cur {
		t.Fatal("a new connection got the handle of a closed one")
	}
	ran := make(chan struct{}, 1)
	_ = old.Do(func(*session.Conn) { ran <- struct{}{} })
	if err := cur.Send(session.Text, []byte("via handle")); err != nil {
		t.Fatalf("Send through a live handle: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	_, p, err := second.Read(ctx)
	if err != nil || string(p) != "via handle" {
		t.Fatalf("read %q, %v", p, err)
	}
	// The live handle's task ran after the stale one was posted; on every
	// engine tasks of one loop run in order, so the stale one is decided.
	select {
	case <-ran:
		t.Fatal("a task for a closed connection ran")
	default:
	}
}

// testHandshakeTimeout checks that a client that connects and says nothing
// is disconnected after Session.HandshakeTimeout (the engine's timers).
func testHandshakeTimeout(t *testing.T, engine string) {
	opts := Options{}
	opts.Session.HandshakeTimeout = 200 * time.Millisecond
	s := startServer(t, engine, echoHandler(), opts)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(testWait))
	_, err = io.ReadAll(nc)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a silent connection open past its handshake timeout")
	}
	waitUntil(t, "the connection to be gone", func() bool { return s.Conns() == 0 })
}

// upgradeRequest is a minimal valid opening handshake.
const upgradeRequest = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// maskedFrame returns a masked client frame (FIN, op) carrying p.
func maskedFrame(op byte, p []byte) []byte {
	if len(p) > 125 {
		panic("maskedFrame: payload too long for this helper")
	}
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	f := append([]byte{0x80 | op, 0x80 | byte(len(p))}, key[:]...)
	for i, b := range p {
		f = append(f, b^key[i%4])
	}
	return f
}

// testTaskPanic checks that a panicking Handle task closes only its own
// connection: the server and other connections go on.
func testTaskPanic(t *testing.T, engine string) {
	handles := make(chan session.Handle, 2)
	h := session.HandlerFuncs{
		Open:    func(c *session.Conn) { handles <- c.Handle() },
		Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) },
	}
	s := startServer(t, engine, h, Options{})
	victim := dial(t, wsURL(s, "/"), nil)
	hv := <-handles
	other := dial(t, wsURL(s, "/"), nil)
	<-handles
	_ = hv.Do(func(*session.Conn) { panic("task bug") })
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if _, _, err := victim.Read(ctx); err == nil {
		t.Fatal("the connection whose task panicked is still delivering messages")
	}
	if got := roundTrip(t, other, websocket.MessageText, []byte("still here")); string(got) != "still here" {
		t.Fatalf("other connection: %q", got)
	}
	waitUntil(t, "the victim to be gone", func() bool { return s.Conns() == 1 })
}

// The gnet engine is opt-in: a program that imports only loop links
// neither gnet nor its dependencies (ants starts goroutines at init).
func TestLoopDoesNotLinkGnet(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/wsloop/wsloop/loop").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "panjf2000") || strings.Contains(dep, "go.uber.org/zap") {
			t.Errorf("package loop depends on %s", dep)
		}
	}
}
