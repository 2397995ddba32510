package loop_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationLifecycle: the Server's life at its edges. Shutdown without
// Listen, after a failed Listen, twice, and racing Broadcast: each returns,
// none panics, and nothing is left behind.
func TestIntegrationLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		bounded := func(what string, fn func()) {
			t.Helper()
			done := make(chan struct{})
			go func() { defer close(done); fn() }()
			select {
			case <-done:
			case <-time.After(waitTimeout):
				t.Fatalf("%s did not return within %v", what, waitTimeout)
			}
		}
		ctx := func() context.Context {
			c, cancel := context.WithTimeout(context.Background(), waitTimeout)
			t.Cleanup(cancel)
			return c
		}
		warmUp()
		baseG, baseFD := settledGoroutines(), countFDs()
		leaks := &testServer{t: t, rec: newRecorder(), baseG: baseG, baseFD: baseFD}

		// Never listened.
		s, err := loop.NewServer(newRecorder(), serverOptions(t, engine))
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		bounded("Shutdown without Listen", func() { s.Shutdown(ctx()) })
		bounded("Broadcast after Shutdown", func() { s.Broadcast(session.Text, []byte("x")) })

		// Listen fails: the port is taken.
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s, err = loop.NewServer(newRecorder(), serverOptions(t, engine))
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		if err := s.Listen(taken.Addr().String()); err == nil {
			t.Errorf("Listen on a port in use succeeded")
		}
		bounded("Shutdown after a failed Listen", func() { s.Shutdown(ctx()) })
		taken.Close()
		leaks.checkLeaks()

		// Broadcast racing Shutdown, then Shutdown again, then Wait.
		ts := startServer(t, engine, newRecorder(), nil)
		c := ts.dialWS("/", nil)
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		waitFor(t, "the client open", func() bool { return ts.rec.opened() == 1 })
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					ts.srv.Broadcast(session.Text, []byte("racing"))
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
		bounded("Shutdown while broadcasting", func() { ts.shutdown() })
		close(stop)
		wg.Wait()
		bounded("a second Shutdown", func() {
			if err := ts.srv.Shutdown(ctx()); err != nil {
				t.Logf("second Shutdown: %v", err)
			}
		})
		bounded("Broadcast after Shutdown", func() { ts.srv.Broadcast(session.Binary, []byte("late")) })
		bounded("Wait after Shutdown", func() { ts.srv.Wait() })
		c.CloseNow()
		ts.closeClients()
		ts.checkLeaks()
	})
}

// TestIntegrationIPv6: the same echo over ::1, with the peer's address seen
// as IPv6.
func TestIntegrationIPv6(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServerAt(t, engine, echoRecorder(), nil, "[::1]:0")
		rc := ts.openRaw()
		rc.write(clientFrame(true, opBinary, payload(70000, false, 6)))
		if op, p := rc.readMessage(); op != opBinary || equalOrDescribe(p, payload(70000, false, 6)) != "" {
			t.Fatalf("echo over ::1: op %d, %d bytes", op, len(p))
		}
		var ci *connInfo
		waitFor(t, "OnOpen", func() bool { ci = ts.rec.conn(rc.id); return ci != nil })
		if want := rc.c.LocalAddr().String(); ci.remote != want {
			t.Errorf("RemoteAddr() = %q, want %q", ci.remote, want)
		}
		rc.write(clientFrame(true, opClose, closeBody(1000, "")))
		rc.expectClose(1000, false)
		ts.finish()
	})
}

// TestIntegrationMaxConns: with MaxConns set, never more connections are
// open at once; clients past the cap are refused (closed, or 503) or wait,
// and once the server has room again new clients are served.
func TestIntegrationMaxConns(t *testing.T) {
	const maxConns, extra = 5, 3
	forEachEngine(t, func(t *testing.T, engine string) {
		rec := echoRecorder()
		var mu sync.Mutex
		live, peak := 0, 0
		rec.open = func(*session.Conn) {
			mu.Lock()
			live++
			peak = max(peak, live)
			mu.Unlock()
		}
		rec.close = func(*session.Conn, session.StatusCode, string, error) {
			// A handler that takes a moment in OnClose: the slot it frees
			// must not be handed to a new connection before it returns,
			// or the application sees more than MaxConns open at once.
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			live--
			mu.Unlock()
		}
		ts := startServer(t, engine, rec, func(o *loop.Options) { o.MaxConns = maxConns })
		if c := ts.srv.Capacity(); c != maxConns {
			t.Errorf("Capacity() = %d with MaxConns %d", c, maxConns)
		}
		first := make([]*rawClient, maxConns)
		for i := range first {
			first[i] = ts.openRaw()
		}
		over := make([]*rawClient, extra)
		for i := range over {
			over[i] = ts.dialRaw()
			// In the background: over TLS the write waits for a handshake
			// that the server starts only once it has room.
			go over[i].writeQuiet([]byte(handshakeRequest("/over")))
		}
		if n := ts.srv.Conns(); n > maxConns {
			t.Errorf("Conns() = %d over MaxConns %d", n, maxConns)
		}
		for _, rc := range first {
			rc.c.Close()
		}
		// Each client past the cap was either refused (closed) or, now that
		// there is room, served.
		for i, rc := range over {
			rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := rc.br.Peek(1); err != nil {
				if !isClosedErr(err) {
					t.Fatalf("client %d past the cap: neither served nor refused: %v", i, err)
				}
				continue
			}
			resp, _ := rc.readResponse()
			switch resp.StatusCode {
			case 503: // refused politely
				rc.expectEOF()
			case 101:
			default:
				t.Errorf("client %d past the cap: status %d, want 101 (served later) or 503", i, resp.StatusCode)
			}
			rc.c.Close()
		}
		waitFor(t, "Conns() == 0", func() bool { return ts.srv.Conns() == 0 })
		fresh := ts.openRaw()
		fresh.write(clientFrame(true, opText, []byte("room again")))
		if op, p := fresh.readMessage(); op != opText || string(p) != "room again" {
			t.Fatalf("echo after the cap freed: op %d %q", op, p)
		}
		fresh.c.Close()
		ts.finish()
		if peak > maxConns {
			t.Errorf("%d connections open at once, MaxConns %d", peak, maxConns)
		}
	})
}
