//go:build linux

package loop

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsloop/wsloop/session"
)

// clientRec records one client connection's life.
type clientRec struct {
	mu     sync.Mutex
	opened bool
	got    [][]byte
	code   session.StatusCode
	err    error
	closes int
	done   chan struct{}
}

func newClientRec() *clientRec { return &clientRec{done: make(chan struct{})} }

func (r *clientRec) handler(send []string, closeAfter bool) session.Handler {
	return session.HandlerFuncs{
		Open: func(c *session.Conn) {
			r.mu.Lock()
			r.opened = true
			r.mu.Unlock()
			for _, m := range send {
				_ = c.Send(session.Text, []byte(m))
			}
		},
		Message: func(c *session.Conn, op session.Opcode, p []byte) {
			r.mu.Lock()
			r.got = append(r.got, append([]byte(nil), p...))
			n := len(r.got)
			r.mu.Unlock()
			if closeAfter && n == len(send) {
				_ = c.Close(session.StatusNormal, "bye")
			}
		},
		Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
			r.mu.Lock()
			r.code, r.err = code, err
			r.closes++
			r.mu.Unlock()
			close(r.done)
		},
	}
}

func (r *clientRec) wait(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(epollWait):
		t.Fatal("timed out waiting for the client's OnClose")
	}
}

func newTestDialer(t testing.TB, timeout time.Duration) *Dialer {
	t.Helper()
	d, err := NewDialer(DialerOptions{Loops: 2, ConnectTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestDialerEchoIPv4AndIPv6(t *testing.T) {
	for _, tc := range []struct{ listen, src string }{
		{"127.0.0.1:0", ""},
		{"127.0.0.1:0", "127.0.0.2"},
		{"[::1]:0", ""},
	} {
		t.Run(tc.listen+"_from_"+tc.src, func(t *testing.T) {
			ev := &events{}
			s, err := NewServer(ev.handler(true), Options{Engine: "epoll", Loops: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Listen(tc.listen); err != nil {
				if tc.listen[0] == '[' {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer s.Shutdown(t.Context())
			d := newTestDialer(t, 0)
			raddr := s.Addr().(*net.TCPAddr)
			var src net.IP
			if tc.src != "" {
				src = net.ParseIP(tc.src)
			}
			var recs []*clientRec
			msgs := []string{"one", "two", "three"}
			for i := 0; i < 5; i++ {
				r := newClientRec()
				recs = append(recs, r)
				if err := d.Dial(raddr, src, &session.ClientRequest{Host: raddr.String(), Path: "/"}, r.handler(msgs, true)); err != nil {
					t.Fatal(err)
				}
			}
			for i, r := range recs {
				r.wait(t)
				r.mu.Lock()
				if !r.opened || len(r.got) != 3 || string(r.got[2]) != "three" || r.code != session.StatusNormal || r.closes != 1 {
					t.Fatalf("client %d: opened %v got %q code %d err %v closes %d", i, r.opened, r.got, r.code, r.err, r.closes)
				}
				r.mu.Unlock()
			}
			eventually(t, "Dialer.Conns to reach 0", func() bool { return d.Conns() == 0 })
			eventually(t, "server Conns to reach 0", func() bool { return s.Conns() == 0 })
			if ev.msgs.Load() != 15 {
				t.Fatalf("server saw %d messages, want 15", ev.msgs.Load())
			}
		})
	}
}

func TestDialerRefusedReportsECONNREFUSED(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raddr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	d := newTestDialer(t, 0)
	r := newClientRec()
	if err := d.Dial(raddr, nil, &session.ClientRequest{Host: "x"}, r.handler(nil, false)); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opened || r.code != session.StatusAbnormal || !errors.Is(r.err, syscall.ECONNREFUSED) || r.closes != 1 {
		t.Fatalf("opened %v code %d err %v closes %d; want 1006 with ECONNREFUSED once", r.opened, r.code, r.err, r.closes)
	}
	eventually(t, "Dialer.Conns to reach 0", func() bool { return d.Conns() == 0 })
}

// A server that accepts but never answers the handshake: ConnectTimeout
// (connect plus handshake) fails the connection with ETIMEDOUT.
func TestDialerHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	d := newTestDialer(t, 300*time.Millisecond)
	r := newClientRec()
	if err := d.Dial(ln.Addr().(*net.TCPAddr), nil, &session.ClientRequest{Host: "x"}, r.handler(nil, false)); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opened || r.code != session.StatusAbnormal || !errors.Is(r.err, syscall.ETIMEDOUT) {
		t.Fatalf("opened %v code %d err %v; want 1006 with ETIMEDOUT", r.opened, r.code, r.err)
	}
}

// Close reports every connection, open or connecting, exactly once, and
// Dial afterwards fails at once.
func TestDialerCloseReportsEveryConnection(t *testing.T) {
	ev := &events{}
	s := startEpoll(t, ev.handler(true), nil, nil)
	d, err := NewDialer(DialerOptions{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	raddr := s.Addr().(*net.TCPAddr)
	var opened, closed atomic.Int32
	h := session.HandlerFuncs{
		Open:  func(c *session.Conn) { opened.Add(1) },
		Close: func(c *session.Conn, code session.StatusCode, reason string, err error) { closed.Add(1) },
	}
	for i := 0; i < 20; i++ {
		if err := d.Dial(raddr, nil, &session.ClientRequest{Host: "x"}, h); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "some connections to open", func() bool { return opened.Load() > 0 })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if closed.Load() != 20 {
		t.Fatalf("OnClose ran %d times for 20 dials", closed.Load())
	}
	if d.Conns() != 0 {
		t.Fatalf("Conns = %d after Close", d.Conns())
	}
	if err := d.Dial(raddr, nil, &session.ClientRequest{Host: "x"}, h); err == nil {
		t.Fatal("Dial after Close succeeded")
	}
}

func TestDialerBadSourceFamily(t *testing.T) {
	d := newTestDialer(t, 0)
	err := d.Dial(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}, net.ParseIP("::1"), &session.ClientRequest{Host: "x"}, session.HandlerFuncs{})
	if err == nil {
		t.Fatal("Dial from an IPv6 source to an IPv4 address succeeded")
	}
}
