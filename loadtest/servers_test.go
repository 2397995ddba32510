package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/servetest"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Servers the tests run against. coder/websocket is an independent RFC 6455
// implementation, so the generator is not only checked against its own
// session code.

// coderServer serves fn for every WebSocket connection and returns its URL.
func coderServer(t *testing.T, fn func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		fn(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String() + "/ws"
}

// coderEcho echoes every message; message number corruptAt (counted over all
// connections, from 1; 0: none) comes back with one bit flipped.
func coderEcho(t *testing.T, corruptAt int64) string {
	var n atomic.Int64
	return coderServer(t, func(ctx context.Context, c *websocket.Conn) {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if n.Add(1) == corruptAt {
				b[len(b)-1] ^= 0x01
			}
			if err := c.Write(ctx, typ, b); err != nil {
				return
			}
		}
	})
}

// coderChat relays every message to every other connection; delivery number
// dropAt (over all deliveries, from 1; 0: none) is skipped.
func coderChat(t *testing.T, dropAt int64) string {
	var mu sync.Mutex
	members := map[*websocket.Conn]bool{}
	var n atomic.Int64
	return coderServer(t, func(ctx context.Context, c *websocket.Conn) {
		mu.Lock()
		members[c] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(members, c)
			mu.Unlock()
		}()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			to := make([]*websocket.Conn, 0, len(members))
			for m := range members {
				if m != c {
					to = append(to, m)
				}
			}
			mu.Unlock()
			for _, m := range to {
				if n.Add(1) == dropAt {
					continue
				}
				_ = m.Write(ctx, typ, b)
			}
		}
	})
}

// coderPush sends every connection {"seq":n,"t":<unix ms>} every 10 ms;
// when skip is set, the first connection's message 3 is never sent.
func coderPush(t *testing.T, skip bool) string {
	var first atomic.Bool
	return coderServer(t, func(ctx context.Context, c *websocket.Conn) {
		ctx = c.CloseRead(ctx)
		skipThis := skip && first.CompareAndSwap(false, true)
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			if skipThis && seq == 3 {
				continue
			}
			msg, _ := json.Marshal(map[string]any{"seq": seq, "t": time.Now().UnixMilli(), "v": 21.5})
			if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
				return
			}
		}
	})
}

// coderReject refuses every upgrade with 403.
func coderReject(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "go away", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String() + "/ws"
}

// coderDropOne accepts connections and closes the first one after 300 ms
// with 1001, holding the others.
func coderDropOne(t *testing.T) string {
	var first atomic.Bool
	return coderServer(t, func(ctx context.Context, c *websocket.Conn) {
		ctx = c.CloseRead(ctx)
		if first.CompareAndSwap(false, true) {
			time.Sleep(300 * time.Millisecond)
			c.Close(websocket.StatusGoingAway, "bye")
			return
		}
		<-ctx.Done()
	})
}

// goroutineServer is wsloop's goroutine engine serving h (opts, when given,
// replace the default options).
func goroutineServer(t *testing.T, h session.Handler, opts ...loop.Options) string {
	t.Helper()
	o := loop.Options{Engine: "goroutine"}
	if len(opts) > 0 {
		o = opts[0]
	}
	return "ws://" + servetest.Start(t, h, o).Addr().String() + "/ws"
}

// wsloopEcho echoes on the goroutine engine.
func wsloopEcho(t *testing.T) string {
	return goroutineServer(t, session.HandlerFuncs{
		Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) },
	})
}

// wsloopChat relays to every other connection on the goroutine engine.
func wsloopChat(t *testing.T) string {
	var mu sync.Mutex
	members := map[session.Handle]bool{}
	return goroutineServer(t, session.HandlerFuncs{
		Open: func(c *session.Conn) {
			mu.Lock()
			members[c.Handle()] = true
			mu.Unlock()
		},
		Message: func(c *session.Conn, op session.Opcode, p []byte) {
			self := c.Handle()
			mu.Lock()
			defer mu.Unlock()
			for h := range members {
				if h != self {
					_ = h.Send(op, p)
				}
			}
		},
		Close: func(c *session.Conn, _ session.StatusCode, _ string, _ error) {
			mu.Lock()
			delete(members, c.Handle())
			mu.Unlock()
		},
	})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return fmt.Sprintf("ws://%s/ws", addr)
}

// silentServer accepts TCP connections and never answers the handshake.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return fmt.Sprintf("ws://%s/ws", l.Addr())
}
