package loop_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestIntegrationShutdown: Shutdown sends 1001 to every client, collects the
// replies, closes everything (connections mid-handshake too), leaves no
// goroutine or descriptor, and the port can be listened on again at once. A
// client that never replies is cut off when Shutdown's context ends.
func TestIntegrationShutdown(t *testing.T) {
	const wsClients, rawClients = 10, 5
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
		defer cancel()

		// Every client proves its connection works before the shutdown.
		ws := make([]*websocket.Conn, wsClients)
		for i := range ws {
			ws[i] = ts.dialWS("/", nil)
			if err := ws[i].Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, p, err := ws[i].Read(ctx); err != nil || string(p) != "hi" {
				t.Fatalf("echo before shutdown: %q %v", p, err)
			}
		}
		raw := make([]*rawClient, rawClients)
		for i := range raw {
			raw[i] = ts.openRaw()
		}
		halfway := ts.dialRaw()
		halfway.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		waitFor(t, "all clients open", func() bool { return ts.rec.opened() == wsClients+rawClients })

		var wg sync.WaitGroup
		errs := make(chan error, wsClients)
		for i, c := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := c.Read(ctx)
				if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
					errs <- fmt.Errorf("ws client %d: read during shutdown returned %v (status %d), want close 1001", i, err, code)
				}
			}()
		}
		shut := make(chan error, 1)
		go func() {
			sctx, scancel := context.WithTimeout(context.Background(), waitTimeout)
			defer scancel()
			shut <- ts.srv.Shutdown(sctx)
		}()
		ts.done = true
		for _, rc := range raw {
			rc.expectClose(1001, false)
		}
		halfway.expectEOFOrResponse()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		select {
		case err := <-shut:
			if err != nil {
				t.Errorf("Shutdown with every client answering: %v", err)
			}
		case <-time.After(2 * waitTimeout):
			t.Fatal("Shutdown did not return")
		}
		waited := make(chan error, 1)
		go func() { waited <- ts.srv.Wait() }()
		select {
		case <-waited:
		case <-time.After(waitTimeout):
			t.Fatal("Wait did not return after Shutdown")
		}
		if n := ts.srv.Conns(); n != 0 {
			t.Errorf("Conns() after Shutdown = %d", n)
		}
		if n := ts.rec.closedCount(); n != wsClients+rawClients {
			t.Errorf("OnClose called %d times, want %d", n, wsClients+rawClients)
		}
		if c, err := net.DialTimeout("tcp", ts.addr, waitTimeout); err == nil {
			c.Close()
			t.Errorf("dial %s after Shutdown succeeded: the listener is still open", ts.addr)
		}
		ts.closeClients()
		ts.checkLeaks()

		// The same port again, at once; then a shutdown whose context ends
		// before a silent client replies.
		ts2 := startServerAt(t, engine, echoRecorder(), nil, ts.addr)
		c := ts2.dialWS("/", nil)
		if err := c.Write(ctx, websocket.MessageBinary, []byte{42}); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Read(ctx); err != nil || len(p) != 1 || p[0] != 42 {
			t.Fatalf("echo on the re-listened port: %v %v", p, err)
		}
		mute := ts2.openRaw()
		waitFor(t, "both clients open", func() bool { return ts2.rec.opened() == 2 })
		go c.Read(ctx) // lets the client answer the close
		sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer scancel()
		ts2.done = true
		err := ts2.srv.Shutdown(sctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown cut short by its context: %v, want nil or context.DeadlineExceeded", err)
		}
		// The silent client got its 1001 and then the TCP close.
		f := mute.mustFrame()
		if f.op != opClose || len(f.payload) < 2 || f.payload[0] != 0x03 || f.payload[1] != 0xE9 {
			t.Errorf("silent client got op %d %s, want close 1001", f.op, describeClose(f.payload))
		}
		mute.expectEOF()
		if n := ts2.srv.Conns(); n != 0 {
			t.Errorf("Conns() after Shutdown = %d", n)
		}
		ts2.closeClients()
		ts2.checkLeaks()
	})
}
