//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package loop

import (
	"net"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsloop/wsloop/session"
)

func TestGnetEcho(t *testing.T) { testEcho(t, "gnet", Options{}) }

func TestGnetSendToSelfFromHandler(t *testing.T) { testSendToSelf(t, "gnet") }

func TestGnetMaxConns(t *testing.T) { testMaxConns(t, "gnet") }

func TestGnetStaleHandle(t *testing.T) { testStaleHandle(t, "gnet") }

// TestGnetHandshakeTimeout drives the per-loop timing wheel through gnet's
// ticker and Execute.
func TestGnetHandshakeTimeout(t *testing.T) { testHandshakeTimeout(t, "gnet") }

func TestGnetTaskPanic(t *testing.T) { testTaskPanic(t, "gnet") }

// fakeGnetConn stands in for gnet's connection in allocation tests; the
// methods the engine does not use stay nil (and would panic).
type fakeGnetConn struct {
	gnet.Conn
	ctx  any
	el   *fakeEventLoop
	in   []byte
	out  []byte
	addr net.Addr
}

type fakeEventLoop struct{ gnet.EventLoop }

func (f *fakeGnetConn) Context() any              { return f.ctx }
func (f *fakeGnetConn) SetContext(v any)          { f.ctx = v }
func (f *fakeGnetConn) EventLoop() gnet.EventLoop { return f.el }
func (f *fakeGnetConn) Peek(int) ([]byte, error)  { return f.in, nil }
func (f *fakeGnetConn) Discard(int) (int, error)  { n := len(f.in); f.in = f.in[:0]; return n, nil }
func (f *fakeGnetConn) OutboundBuffered() int     { return 0 }
func (f *fakeGnetConn) RemoteAddr() net.Addr      { return f.addr }
func (f *fakeGnetConn) Write(p []byte) (int, error) {
	f.out = append(f.out[:0], p...)
	return len(p), nil
}

// TestGnetEchoAllocs proves that a message's way through the gnet engine
// (OnTraffic, Feed, the handler's Send, Transport.Write) allocates nothing.
func TestGnetEchoAllocs(t *testing.T) {
	opts := Options{Engine: "gnet", Loops: 1, Logger: quietLogger()}
	cfg := session.Config{Role: session.Server, Handler: echoHandler()}
	completeConfig(&cfg)
	eng, err := newGnetEngine(&opts, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := eng.(*gnetEngine)
	fc := &fakeGnetConn{el: &fakeEventLoop{}, addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	fc.out = make([]byte, 0, 4096)
	if _, act := e.OnOpen(fc); act != gnet.None {
		t.Fatalf("OnOpen action %v", act)
	}
	fc.in = append(make([]byte, 0, 4096), upgradeRequest...)
	if act := e.OnTraffic(fc); act != gnet.None || !strings.HasPrefix(string(fc.out), "HTTP/1.1 101 ") {
		t.Fatalf("handshake: action %v, wrote %q", act, fc.out)
	}
	payload := []byte(strings.Repeat("x", 100))
	frame := maskedFrame(0x2, payload)
	allocs := testing.AllocsPerRun(200, func() {
		fc.in = append(fc.in[:0], frame...)
		e.OnTraffic(fc)
	})
	if want := "\x82\x64" + string(payload); string(fc.out) != want {
		t.Fatalf("echo wrote %q, want %q", fc.out, want)
	}
	if allocs != 0 {
		t.Errorf("%.1f allocations per echoed message, want 0", allocs)
	}
}
