package loop

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/testcert"

	"github.com/coder/websocket"

	"github.com/wsloop/wsloop/session"
)

func TestGoroutineEcho(t *testing.T) { testEcho(t, "goroutine", Options{}) }

// TestGoroutineTLSEcho serves wss and echoes through coder/websocket, which
// verifies the certificate.
func TestGoroutineTLSEcho(t *testing.T) {
	tc := testcert.New(t)
	s := startServer(t, "goroutine", echoHandler(), Options{TLSConfig: tc.ServerConfig()})
	tr := &http.Transport{TLSClientConfig: tc.ClientConfig()}
	defer tr.CloseIdleConnections()
	c := dial(t, "wss://"+s.Addr().String()+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	c.SetReadLimit(1 << 20)
	for _, msg := range []string{"", "hello over tls", string(make([]byte, 100000))} {
		if got := roundTrip(t, c, websocket.MessageBinary, []byte(msg)); string(got) != msg {
			t.Fatalf("TLS echo of %d bytes: got %d bytes", len(msg), len(got))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitUntil(t, "connection to go", func() bool { return s.Conns() == 0 })
}

// TestGoroutineSendToSelfFromHandler sends to the connection's own Handle
// from inside OnMessage, which must not deadlock on the connection's mutex.
func TestGoroutineSendToSelfFromHandler(t *testing.T) {
	testSendToSelf(t, "goroutine")
}

// TestGoroutineMaxConns refuses connections past MaxConns.
func TestGoroutineMaxConns(t *testing.T) { testMaxConns(t, "goroutine") }

func TestGoroutineStaleHandle(t *testing.T) { testStaleHandle(t, "goroutine") }

func TestGoroutineHandshakeTimeout(t *testing.T) { testHandshakeTimeout(t, "goroutine") }

func TestGoroutineTaskPanic(t *testing.T) { testTaskPanic(t, "goroutine") }

// discardConn is a net.Conn whose writes keep only the last buffer.
type discardConn struct {
	net.Conn
	out []byte
}

func (d *discardConn) Write(p []byte) (int, error) {
	d.out = append(d.out[:0], p...)
	return len(p), nil
}
func (d *discardConn) SetWriteDeadline(time.Time) error { return nil }
func (d *discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (d *discardConn) Close() error                     { return nil }

// TestGoroutineEchoAllocs proves that a message's way through the
// goroutine engine's connection (Feed under the mutex, the handler's Send,
// Transport.Write, the task check) allocates nothing.
func TestGoroutineEchoAllocs(t *testing.T) {
	opts := Options{Engine: "goroutine", Logger: quietLogger()}
	cfg := session.Config{Role: session.Server, Handler: echoHandler()}
	completeConfig(&cfg)
	eng, err := newGoroutineEngine(&opts, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc := &discardConn{out: make([]byte, 0, 4096)}
	c := &goConn{eng: eng.(*goroutineEngine), nc: nc, id: 1}
	feed := func(p []byte) {
		c.mu.Lock()
		c.enter()
		c.sc.Feed(p, engineClock())
		c.leave()
		c.runTasks()
		c.mu.Unlock()
		c.drain()
	}
	c.mu.Lock()
	c.enter()
	c.sc.Init(&cfg, c, engineClock())
	c.leave()
	c.mu.Unlock()
	feed([]byte(upgradeRequest))
	if !strings.HasPrefix(string(nc.out), "HTTP/1.1 101 ") {
		t.Fatalf("handshake wrote %q", nc.out)
	}
	payload := []byte(strings.Repeat("y", 100))
	frame := maskedFrame(0x1, payload)
	buf := make([]byte, len(frame))
	allocs := testing.AllocsPerRun(200, func() {
		copy(buf, frame)
		feed(buf)
	})
	if want := "\x81\x64" + string(payload); string(nc.out) != want {
		t.Fatalf("echo wrote %q, want %q", nc.out, want)
	}
	if allocs != 0 {
		t.Errorf("%.1f allocations per echoed message, want 0", allocs)
	}
}
