package loop_test

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// dialResult is what one client-role connection ended with.
type dialResult struct {
	echoes int
	code   session.StatusCode
	err    error
}

// TestIntegrationDialer: the event-loop client (loop.Dialer, the load
// generator's engine) against every server engine: many connections echo
// verified messages and close cleanly; a refused connect and a refused
// handshake are reported through OnClose with their cause.
func TestIntegrationDialer(t *testing.T) {
	const clients, msgs = 50, 20
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.Upgrade = func(r *session.Request) (session.Accept, error) {
				if r.Path() == "/private" {
					return session.Accept{}, &session.RejectError{Status: 401, Message: "no"}
				}
				return session.Accept{}, nil
			}
		})
		d, err := loop.NewDialer(loop.DialerOptions{Loops: 2, TLSConfig: ts.tls})
		if err != nil {
			t.Fatalf("NewDialer: %v", err)
		}
		dialerClosed := false
		defer func() {
			if !dialerClosed {
				d.Close()
			}
		}()
		raddr := ts.srv.Addr().(*net.TCPAddr)

		var mu sync.Mutex
		results := make(map[int]dialResult)
		var ended sync.WaitGroup
		var violations atomic.Int64
		want := func(i, k int) []byte { return []byte(fmt.Sprintf("dialer %d message %d", i, k)) }
		for i := 0; i < clients; i++ {
			echoes := 0
			ended.Add(1)
			h := session.HandlerFuncs{
				Open: func(c *session.Conn) {
					if err := c.Send(session.Text, want(i, 0)); err != nil {
						violations.Add(1)
					}
				},
				Message: func(c *session.Conn, op session.Opcode, p []byte) {
					if op != session.Text || string(p) != string(want(i, echoes)) {
						violations.Add(1)
						c.Close(session.StatusPolicy, "wrong echo")
						return
					}
					echoes++
					if echoes == msgs {
						c.Close(session.StatusNormal, "done")
						return
					}
					c.Send(session.Text, want(i, echoes))
				},
				Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
					mu.Lock()
					results[i] = dialResult{echoes, code, err}
					mu.Unlock()
					ended.Done()
				},
			}
			req := &session.ClientRequest{Host: raddr.String(), Path: "/dialer"}
			if err := d.Dial(raddr, nil, req, h); err != nil {
				t.Fatalf("Dial %d: %v", i, err)
			}
		}
		if !waitGroup(&ended, waitTimeout) {
			mu.Lock()
			n := len(results)
			mu.Unlock()
			t.Fatalf("only %d of %d dialed connections ended", n, clients)
		}
		if n := violations.Load(); n != 0 {
			t.Errorf("%d wrong echoes or failed sends on the client side", n)
		}
		for i := 0; i < clients; i++ {
			r := results[i]
			if r.echoes != msgs || r.code != session.StatusNormal || r.err != nil {
				t.Errorf("dialed connection %d: %d echoes, OnClose(%d, %v); want %d echoes, 1000, nil", i, r.echoes, r.code, r.err, msgs)
			}
		}

		// Refusals reach OnClose with their cause.
		closedPort := func() *net.TCPAddr {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			a := ln.Addr().(*net.TCPAddr)
			ln.Close()
			return a
		}()
		failed := make(chan closeEvent, 2)
		fh := session.HandlerFuncs{
			Open: func(c *session.Conn) { violations.Add(1) },
			Close: func(c *session.Conn, code session.StatusCode, reason string, err error) {
				failed <- closeEvent{code: code, reason: reason, err: err}
			},
		}
		if err := d.Dial(closedPort, nil, &session.ClientRequest{Host: closedPort.String()}, fh); err != nil {
			t.Fatalf("Dial to a closed port returned %v; want the failure through OnClose", err)
		}
		ev := waitEvent(t, failed)
		if ev.code != session.StatusAbnormal || !errors.Is(ev.err, syscall.ECONNREFUSED) {
			t.Errorf("dial to a closed port: OnClose(%d, %v), want 1006 with ECONNREFUSED", ev.code, ev.err)
		}
		if err := d.Dial(raddr, nil, &session.ClientRequest{Host: raddr.String(), Path: "/private"}, fh); err != nil {
			t.Fatal(err)
		}
		ev = waitEvent(t, failed)
		var he *session.HandshakeError
		if ev.code != session.StatusAbnormal || !errors.As(ev.err, &he) || he.Status != 401 {
			t.Errorf("refused handshake: OnClose(%d, %v), want 1006 with a *HandshakeError of status 401", ev.code, ev.err)
		}
		if n := violations.Load(); n != 0 {
			t.Errorf("OnOpen ran for a failed dial")
		}
		waitFor(t, "Dialer.Conns() == 0", func() bool { return d.Conns() == 0 })

		// A server that accepts and never answers: the connect timeout ends it.
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		held := make(chan net.Conn, 1)
		go func() {
			if c, err := silent.Accept(); err == nil {
				held <- c
			}
		}()
		d2, err := loop.NewDialer(loop.DialerOptions{Loops: 1, ConnectTimeout: 300 * time.Millisecond, TLSConfig: ts.tls})
		if err != nil {
			t.Fatal(err)
		}
		sa := silent.Addr().(*net.TCPAddr)
		if err := d2.Dial(sa, nil, &session.ClientRequest{Host: sa.String()}, fh); err != nil {
			t.Fatal(err)
		}
		if ev := waitEvent(t, failed); ev.code != session.StatusAbnormal || ev.err == nil {
			t.Errorf("silent server: OnClose(%d, %v), want 1006 with a timeout error", ev.code, ev.err)
		}
		d2.Close()
		select {
		case c := <-held:
			c.Close()
		case <-time.After(waitTimeout):
			t.Error("the silent server never saw the connection")
		}
		silent.Close()

		// Dialer.Close drops its open connections; the server sees them go.
		opened := make(chan struct{}, 5)
		keep := session.HandlerFuncs{Open: func(*session.Conn) { opened <- struct{}{} }}
		before := ts.rec.closedCount()
		for i := 0; i < 5; i++ {
			if err := d.Dial(raddr, nil, &session.ClientRequest{Host: raddr.String(), Path: "/kept"}, keep); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 5; i++ {
			select {
			case <-opened:
			case <-time.After(waitTimeout):
				t.Fatalf("only %d of 5 dialed connections opened", i)
			}
		}
		if err := d.Close(); err != nil {
			t.Errorf("Dialer.Close: %v", err)
		}
		dialerClosed = true
		waitFor(t, "the server to see the dialer's connections close", func() bool { return ts.rec.closedCount() == before+5 })
		ts.finish()
	})
}

func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func waitEvent(t *testing.T, ch chan closeEvent) closeEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no OnClose within the timeout")
		return closeEvent{}
	}
}
