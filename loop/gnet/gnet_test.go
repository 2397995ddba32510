//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gnet

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/session"
)

// fakeConn stands in for gnet's connection; the methods the engine does
// not use stay nil (and would panic).
type fakeConn struct {
	gnet.Conn
	ctx  any
	el   *fakeEventLoop
	in   []byte
	out  []byte
	addr net.Addr
}

type fakeEventLoop struct{ gnet.EventLoop }

func (f *fakeConn) Context() any              { return f.ctx }
func (f *fakeConn) SetContext(v any)          { f.ctx = v }
func (f *fakeConn) EventLoop() gnet.EventLoop { return f.el }
func (f *fakeConn) Peek(int) ([]byte, error)  { return f.in, nil }
func (f *fakeConn) Discard(int) (int, error)  { n := len(f.in); f.in = f.in[:0]; return n, nil }
func (f *fakeConn) OutboundBuffered() int     { return 0 }
func (f *fakeConn) RemoteAddr() net.Addr      { return f.addr }
func (f *fakeConn) Write(p []byte) (int, error) {
	f.out = append(f.out[:0], p...)
	return len(p), nil
}

const upgradeRequest = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func maskedFrame(op byte, p []byte) []byte {
	key := []byte{9, 8, 7, 6}
	b := append([]byte{0x80 | op, 0x80 | byte(len(p))}, key...)
	for i, x := range p {
		b = append(b, x^key[i&3])
	}
	return b
}

// A message's way through the gnet engine (OnTraffic, the core, the
// handler's Send, gnet's Write) allocates nothing.
func TestEchoAllocs(t *testing.T) {
	echo := session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) }}
	cfg := &session.Config{Role: session.Server, Handler: echo}
	cfg.Normalize()
	eng, err := New(&core.Options{Loops: 1, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := eng.(*engine)
	fc := &fakeConn{el: &fakeEventLoop{}, addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	fc.out = make([]byte, 0, 4096)
	if _, act := e.OnOpen(fc); act != gnet.None {
		t.Fatalf("OnOpen action %v", act)
	}
	fc.in = append(make([]byte, 0, 4096), upgradeRequest...)
	if act := e.OnTraffic(fc); act != gnet.None || !strings.HasPrefix(string(fc.out), "HTTP/1.1 101 ") {
		t.Fatalf("handshake: action %v, wrote %q", act, fc.out)
	}
	payload := bytes.Repeat([]byte("x"), 100)
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
