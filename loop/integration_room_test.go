package loop_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationRoom: a chat. Every connection joins a Room on open and
// leaves on close; every message received is published to the room. Each
// member receives every message exactly once, each sender's in order.
func TestIntegrationRoom(t *testing.T) {
	const members, perMember = 30, 10
	forEachEngine(t, func(t *testing.T, engine string) {
		room := loop.NewRoom()
		rec := newRecorder()
		rec.open = func(c *session.Conn) { room.Join(c.Handle()) }
		rec.message = func(c *session.Conn, op session.Opcode, p []byte) { room.Publish(op, p) }
		rec.close = func(c *session.Conn, _ session.StatusCode, _ string, _ error) { room.Leave(c.Handle()) }
		ts := startServer(t, engine, rec, nil)

		conns := make([]*websocket.Conn, members)
		for i := range conns {
			conns[i] = ts.dialWS("/chat", nil)
		}
		waitFor(t, fmt.Sprintf("room.Len() == %d", members), func() bool { return room.Len() == members })

		ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
		defer cancel()
		const total = members * perMember
		var wg sync.WaitGroup
		errs := make(chan error, 2*members)
		for i, c := range conns {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for k := 0; k < perMember; k++ {
					if err := c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("%d:%d", i, k))); err != nil {
						errs <- fmt.Errorf("member %d: write %d: %w", i, k, err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				next := make([]int, members) // next expected k per sender
				for got := 0; got < total; got++ {
					typ, p, err := c.Read(ctx)
					if err != nil {
						errs <- fmt.Errorf("member %d: read after %d of %d messages: %w", i, got, total, err)
						return
					}
					from, k, ok := parseChat(string(p))
					if typ != websocket.MessageText || !ok || from >= members {
						errs <- fmt.Errorf("member %d: unexpected message %v %q", i, typ, p)
						return
					}
					if k != next[from] {
						errs <- fmt.Errorf("member %d: from %d got message %d, want %d (lost, duplicated or reordered)", i, from, k, next[from])
						return
					}
					next[from]++
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}

		// Nothing more is pending: the next message each member sees is the
		// sentinel, proving no duplicate was queued behind the last one.
		room.Publish(session.Text, []byte("end"))
		for i, c := range conns {
			_, p, err := c.Read(ctx)
			if err != nil || string(p) != "end" {
				t.Fatalf("member %d: after all messages got %q, %v; want the sentinel \"end\"", i, p, err)
			}
		}

		// Leaving on close: the room shrinks, and the rest still hear.
		conns[0].Close(websocket.StatusNormalClosure, "")
		waitFor(t, "room.Len() == members-1 after a member left", func() bool { return room.Len() == members-1 })
		room.Publish(session.Binary, []byte("after"))
		for i, c := range conns[1:] {
			typ, p, err := c.Read(ctx)
			if err != nil || typ != websocket.MessageBinary || string(p) != "after" {
				t.Fatalf("member %d: got %v %q, %v; want binary \"after\"", i+1, typ, p, err)
			}
		}
		ts.finish()
		if n := room.Len(); n != 0 {
			t.Errorf("room.Len() after every connection closed = %d, want 0", n)
		}
	})
}

func parseChat(s string) (from, k int, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	from, err1 := strconv.Atoi(a)
	k, err2 := strconv.Atoi(b)
	return from, k, err1 == nil && err2 == nil
}

// TestIntegrationBroadcast: a push server. Another goroutine calls
// Server.Broadcast; every client receives every message exactly once, in order.
func TestIntegrationBroadcast(t *testing.T) {
	const clients, pushes = 50, 100
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, newRecorder(), nil)
		conns := make([]*websocket.Conn, clients)
		for i := range conns {
			conns[i] = ts.dialWS("/feed", nil)
		}
		waitFor(t, "all clients opened", func() bool { return ts.rec.opened() == clients })
		if n := ts.srv.Conns(); n != clients {
			t.Errorf("Conns() = %d with %d clients open", n, clients)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
		defer cancel()
		go func() {
			for k := 0; k < pushes; k++ {
				ts.srv.Broadcast(session.Text, []byte("reading "+strconv.Itoa(k)))
			}
			ts.srv.Broadcast(session.Binary, []byte("end"))
		}()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k <= pushes; k++ {
					typ, p, err := c.Read(ctx)
					if err != nil {
						errs <- fmt.Errorf("client %d: read %d: %w", i, k, err)
						return
					}
					want, wantTyp := "reading "+strconv.Itoa(k), websocket.MessageText
					if k == pushes {
						want, wantTyp = "end", websocket.MessageBinary
					}
					if string(p) != want || typ != wantTyp {
						errs <- fmt.Errorf("client %d: got %v %q, want %v %q (lost, duplicated or reordered)", i, typ, p, wantTyp, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
		ts.finish()
	})
}

// TestIntegrationRoomStale: a room that still holds handles of closed
// connections (the application never called Leave) publishes only to live
// members: not to the closed ones, and not to new connections that reuse
// their slots or descriptors.
func TestIntegrationRoomStale(t *testing.T) {
	const members = 10
	forEachEngine(t, func(t *testing.T, engine string) {
		room := loop.NewRoom()
		rec := echoRecorder()
		rec.open = func(c *session.Conn) {
			if c.Value().(*connInfo).extra == "/join" {
				room.Join(c.Handle())
			}
		}
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.Upgrade = func(r *session.Request) (session.Accept, error) {
				return session.Accept{Value: r.Path()}, nil
			}
		})
		var gone []*rawClient
		for i := 0; i < members; i++ {
			rc := ts.dialRaw()
			rc.write([]byte(handshakeRequest("/join")))
			rc.expectUpgrade()
			gone = append(gone, rc)
		}
		stay := ts.dialRaw()
		stay.write([]byte(handshakeRequest("/join")))
		stay.expectUpgrade()
		waitFor(t, "room.Len() == members+1", func() bool { return room.Len() == members+1 })
		for _, rc := range gone {
			rc.c.Close()
			rc.serverClose(ts.rec)
		}
		// New connections, not in the room, likely on the freed slots.
		var fresh []*rawClient
		for i := 0; i < members; i++ {
			rc := ts.openRaw()
			fresh = append(fresh, rc)
		}
		room.Publish(session.Text, []byte("to the room"))
		if op, p := stay.readMessage(); op != opText || string(p) != "to the room" {
			t.Fatalf("the live member got op %d %q", op, p)
		}
		for i, rc := range fresh {
			// Two echo round trips: a stray room message would come first.
			for _, m := range []string{"own", "own again"} {
				rc.write(clientFrame(true, opText, []byte(m)))
				if op, p := rc.readMessage(); op != opText || string(p) != m {
					t.Fatalf("new connection %d got %q: a room message for a closed member reached it", i, p)
				}
			}
		}
		ts.finish()
	})
}

// TestIntegrationBroadcastScope: Broadcast and Room.Publish reach open
// WebSocket connections only: not a plain HTTP exchange in progress (whose
// response must stay pure HTTP), not a handshake still arriving.
func TestIntegrationBroadcastScope(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		mux := http.NewServeMux()
		mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			io.WriteString(w, "held")
		})
		room := loop.NewRoom()
		rec := echoRecorder()
		rec.open = func(c *session.Conn) { room.Join(c.Handle()) }
		rec.close = func(c *session.Conn, _ session.StatusCode, _ string, _ error) { room.Leave(c.Handle()) }
		ts := startServer(t, engine, rec, func(o *loop.Options) { o.HTTP = mux })

		plain := ts.dialRaw()
		plain.write([]byte("GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		select {
		case <-started:
		case <-time.After(waitTimeout):
			t.Fatal("the HTTP handler never started")
		}
		req := handshakeRequest("/late")
		late := ts.dialRaw()
		late.write([]byte(req[:20]))
		open := ts.openRaw()
		waitFor(t, "Conns() == 3", func() bool { return ts.srv.Conns() == 3 })
		// The 101 goes out before OnOpen runs: wait for the join itself.
		waitFor(t, "the open client in the room", func() bool { return room.Len() == 1 })

		ts.srv.Broadcast(session.Text, []byte("news"))
		room.Publish(session.Text, []byte("room news"))
		for _, want := range []string{"news", "room news"} {
			if op, p := open.readMessage(); op != opText || string(p) != want {
				t.Fatalf("open client: op %d %q, want %q", op, p, want)
			}
		}

		close(release)
		resp, body := plain.readResponse()
		if resp.StatusCode != 200 || string(body) != "held" {
			t.Errorf("plain HTTP during a broadcast: %d %q, want 200 \"held\"", resp.StatusCode, body)
		}
		plain.expectEOF() // no frame bytes after the response

		// expectUpgrade fails on frame bytes ahead of the 101. After it, a
		// broadcast whose task reached this client's loop only once the
		// handshake completed is rightly delivered: skip those.
		late.write([]byte(req[20:]))
		late.expectUpgrade()
		late.write(clientFrame(true, opText, []byte("first")))
		for {
			op, p := late.readMessage()
			if op == opText && (string(p) == "news" || string(p) == "room news") {
				continue
			}
			if op != opText || string(p) != "first" {
				t.Fatalf("a client mid-handshake during the broadcast then got op %d %q", op, p)
			}
			break
		}
		ts.finish()
	})
}
