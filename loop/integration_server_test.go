package loop_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationServerSide: what the server does on its own initiative or
// at the edges of the framing: a greeting from OnOpen, a close started by the
// handler (answered or not), nothing sent or delivered after a close, lengths
// refused from the header alone, a handshake and many frames in odd chunks.
func TestIntegrationServerSide(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		sendAfterClose := make(chan error, 1)
		rec := echoRecorder()
		echo := rec.message
		big := payload(3<<20, false, 12)
		rec.open = func(c *session.Conn) {
			switch c.Value().(*connInfo).extra {
			case "/close-on-open":
				c.Close(4002, "go away")
				return
			case "/panic-open":
				panic("OnOpen panic requested by the test")
			}
			if err := c.Send(session.Text, []byte("welcome")); err != nil {
				rec.violation("Send in OnOpen: " + err.Error())
			}
		}
		rec.close = func(c *session.Conn, _ session.StatusCode, _ string, _ error) {
			if err := c.Send(session.Text, []byte("from OnClose")); err == nil {
				rec.violation("Send in OnClose returned nil, want an error")
			}
			if c.Value().(*connInfo).extra == "/panic-close" {
				panic("OnClose panic requested by the test")
			}
		}
		rec.message = func(c *session.Conn, op session.Opcode, p []byte) {
			switch string(p) {
			case "close-me":
				if err := c.Close(4000, "bye"); err != nil {
					rec.violation("Close(4000): " + err.Error())
				}
			case "big-then-close":
				if err := c.Send(session.Binary, big); err != nil {
					rec.violation("Send(3 MiB): " + err.Error())
				}
				c.Close(4003, "after the big one")
			case "send-after-close":
				c.Close(session.StatusNormal, "")
				sendAfterClose <- c.Send(session.Text, []byte("late"))
			default:
				echo(c, op, p)
			}
		}
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.CloseTimeout = 300 * time.Millisecond
			o.Session.HighWater = 4 << 20
			o.Session.Upgrade = func(r *session.Request) (session.Accept, error) {
				return session.Accept{Value: r.Path()}, nil
			}
		})
		open := func(t *testing.T) *rawClient {
			t.Helper()
			rc := ts.openRaw()
			rc.t = t
			if op, p := rc.readMessage(); op != opText || string(p) != "welcome" {
				t.Fatalf("first message op %d %q, want the greeting sent from OnOpen", op, p)
			}
			return rc
		}

		t.Run("handler_close_answered", func(t *testing.T) {
			rc := open(t)
			rc.write(clientFrame(true, opText, []byte("close-me")))
			if reason := rc.expectClose(4000, false); reason != "bye" {
				t.Errorf("close reason %q, want \"bye\"", reason)
			}
			if ev := rc.serverClose(ts.rec); ev.code != 4000 || ev.err != nil {
				t.Errorf("OnClose(%d, %q, %v), want 4000 (the peer's echo) and no error", ev.code, ev.reason, ev.err)
			}
		})

		t.Run("handler_close_unanswered", func(t *testing.T) {
			rc := open(t)
			rc.write(clientFrame(true, opText, []byte("close-me")))
			f := rc.mustFrame()
			if f.op != opClose || describeClose(f.payload) != `close 4000 "bye"` {
				t.Fatalf("got op %d %s, want close 4000 \"bye\"", f.op, describeClose(f.payload))
			}
			// No reply: the server gives up after CloseTimeout and closes TCP.
			rc.expectEOF()
			if ev := rc.serverClose(ts.rec); ev.code != session.StatusAbnormal || ev.err == nil {
				t.Errorf("OnClose(%d, %q, %v), want 1006 with an error (no close reply)", ev.code, ev.reason, ev.err)
			}
		})

		t.Run("big_then_close", func(t *testing.T) {
			rc := open(t)
			rc.write(clientFrame(true, opText, []byte("big-then-close")))
			// Everything queued before the close goes out before it.
			op, p := rc.readMessage()
			if d := equalOrDescribe(p, big); op != opBinary || d != "" {
				t.Fatalf("big message: op %d, %s", op, d)
			}
			rc.expectClose(4003, false)
		})

		t.Run("close_on_open", func(t *testing.T) {
			rc := ts.dialRaw()
			rc.t = t
			rc.write([]byte(handshakeRequest("/close-on-open")))
			rc.expectUpgrade()
			if reason := rc.expectClose(4002, false); reason != "go away" {
				t.Errorf("reason %q", reason)
			}
		})

		t.Run("panic_in_open", func(t *testing.T) {
			rc := ts.dialRaw()
			rc.t = t
			rc.write([]byte(handshakeRequest("/panic-open")))
			rc.expectUpgrade()
			rc.expectClose(1011, false)
			rc.serverClose(ts.rec)
		})

		t.Run("panic_in_close", func(t *testing.T) {
			panics := ts.stats.Panics.Load()
			rc := ts.dialRaw()
			rc.t = t
			rc.write([]byte(handshakeRequest("/panic-close")))
			rc.expectUpgrade()
			if op, p := rc.readMessage(); op != opText || string(p) != "welcome" {
				t.Fatalf("got op %d %q", op, p)
			}
			rc.write(clientFrame(true, opClose, closeBody(1000, "")))
			rc.expectClose(1000, false)
			rc.serverClose(ts.rec)
			waitFor(t, "the OnClose panic counted", func() bool { return ts.stats.Panics.Load() > panics })
			// The loop survived: a new connection is served.
			open(t).c.Close()
		})

		t.Run("send_after_close", func(t *testing.T) {
			rc := open(t)
			rc.write(clientFrame(true, opText, []byte("send-after-close")))
			rc.expectClose(1000, false) // and nothing after the close frame
			select {
			case err := <-sendAfterClose:
				if err == nil {
					t.Errorf("Send after Close returned nil, want an error (ErrClosed)")
				}
			case <-time.After(waitTimeout):
				t.Fatal("handler never reported")
			}
		})

		t.Run("data_after_close_ignored", func(t *testing.T) {
			rc := open(t)
			rc.write(append(clientFrame(true, opClose, closeBody(1000, "")), clientFrame(true, opText, []byte("ignored"))...))
			f := rc.mustFrame()
			if f.op != opClose {
				t.Fatalf("got op %d %q, want only the close reply", f.op, trunc(f.payload))
			}
			rc.expectEOF()
			rc.serverClose(ts.rec)
			if n := ts.rec.conn(rc.id).messages.Load(); n != 0 {
				t.Errorf("%d messages delivered after the peer's close frame", n)
			}
		})

		t.Run("close_mid_message", func(t *testing.T) {
			rc := open(t)
			rc.write(append(clientFrame(false, opText, []byte("part")), clientFrame(true, opClose, closeBody(1000, ""))...))
			rc.expectClose(1000, false)
			rc.serverClose(ts.rec)
			if n := ts.rec.conn(rc.id).messages.Load(); n != 0 {
				t.Errorf("an unfinished message was delivered (%d messages)", n)
			}
		})

		t.Run("close_then_FIN", func(t *testing.T) {
			rc := open(t)
			rc.write(clientFrame(true, opClose, closeBody(1001, "fin")))
			rc.closeWrite()
			f := rc.mustFrame()
			if f.op != opClose {
				t.Fatalf("got op %d, want the close reply", f.op)
			}
			rc.expectEOF()
			if ev := rc.serverClose(ts.rec); ev.code != 1001 || ev.reason != "fin" {
				t.Errorf("OnClose(%d, %q, %v), want (1001, \"fin\"): the close frame came before the FIN", ev.code, ev.reason, ev.err)
			}
		})

		t.Run("huge_declared_length", func(t *testing.T) {
			rc := open(t)
			h := []byte{0x80 | opBinary, 0x80 | 127}
			h = binary.BigEndian.AppendUint64(h, 1<<40)
			h = append(h, 1, 2, 3, 4) // mask key; the payload never comes
			rc.write(h)
			rc.expectClose(1009, false)
		})

		t.Run("length_with_top_bit", func(t *testing.T) {
			rc := open(t)
			h := []byte{0x80 | opBinary, 0x80 | 127}
			h = binary.BigEndian.AppendUint64(h, 1<<63|5)
			h = append(h, 1, 2, 3, 4)
			rc.write(h)
			rc.expectClose(1002, false)
		})

		t.Run("handshake_byte_by_byte", func(t *testing.T) {
			rc := ts.dialRaw()
			rc.t = t
			req := handshakeRequest("/slow")
			for i := range len(req) {
				rc.write([]byte(req[i : i+1]))
			}
			rc.expectUpgrade()
			if op, p := rc.readMessage(); op != opText || string(p) != "welcome" {
				t.Fatalf("got op %d %q, want the greeting", op, p)
			}
			rc.c.Close()
		})

		t.Run("many_frames_in_one_write", func(t *testing.T) {
			rc := open(t)
			const n = 2000 // about 300 KB: several reads, frames cut anywhere
			var b []byte
			for i := 0; i < n; i++ {
				b = append(b, clientFrame(true, opBinary, payload(i%300, false, i))...)
			}
			errc := make(chan error, 1)
			go func() {
				rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
				_, err := rc.c.Write(b)
				errc <- err
			}()
			for i := 0; i < n; i++ {
				f, err := rc.readFrame()
				if err != nil {
					t.Fatalf("echo %d of %d: %v", i, n, err)
				}
				if d := equalOrDescribe(f.payload, payload(i%300, false, i)); f.op != opBinary || d != "" {
					t.Fatalf("echo %d: op %d, %s", i, f.op, d)
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			rc.c.Close()
		})
		ts.finish()
	})
}

// TestIntegrationHandles: Handles reach their connection from any goroutine,
// in order per sender, and never another connection that reuses its slot;
// after Shutdown they report the engine gone.
func TestIntegrationHandles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		rec := echoRecorder()
		echo := rec.message
		var srv atomic.Pointer[loop.Server] // set after start, read on the loops
		rec.message = func(c *session.Conn, op session.Opcode, p []byte) {
			switch string(p) {
			case "via-handle":
				// A handler may use its own connection's Handle: the task
				// runs later, after what the handler sends directly.
				if err := c.Handle().Send(session.Text, []byte("via handle")); err != nil {
					rec.violation("Handle.Send from the handler: " + err.Error())
				}
				c.Send(session.Text, []byte("direct"))
			case "shout":
				srv.Load().Broadcast(session.Text, []byte("shouted")) // from a loop goroutine
			default:
				echo(c, op, p)
			}
		}
		ts := startServer(t, engine, rec, nil)
		srv.Store(ts.srv)

		// Handles and Broadcast used from inside a handler.
		a, b := ts.openRaw(), ts.openRaw()
		a.write(clientFrame(true, opText, []byte("via-handle")))
		for _, want := range []string{"direct", "via handle"} {
			if op, p := a.readMessage(); op != opText || string(p) != want {
				t.Fatalf("got op %d %q, want %q", op, p, want)
			}
		}
		a.write(clientFrame(true, opText, []byte("shout")))
		for _, rc := range []*rawClient{a, b} {
			if op, p := rc.readMessage(); op != opText || string(p) != "shouted" {
				t.Fatalf("Broadcast from a handler: op %d %q", op, p)
			}
		}
		a.c.Close()
		b.c.Close()

		// A stale handle must not reach a later connection (fd and slot reuse).
		for i := 0; i < 20; i++ {
			old := ts.openRaw()
			var ci *connInfo
			waitFor(t, "OnOpen", func() bool { ci = ts.rec.conn(old.id); return ci != nil })
			old.c.Close()
			ts.rec.waitCloseOf(t, old.id)
			rc := ts.openRaw()
			_ = ci.handle.Send(session.Text, []byte(fmt.Sprintf("stale %d", i)))
			// Two round trips: the stale task has run by the second.
			for _, m := range []string{"mine", "mine again"} {
				rc.write(clientFrame(true, opText, []byte(m)))
				if op, p := rc.readMessage(); op != opText || string(p) != m {
					t.Fatalf("round %d: a new connection got %q: a message for a closed connection reached it", i, p)
				}
			}
			rc.c.Close()
		}

		// Many goroutines send through one handle; each one's order holds.
		rc := ts.openRaw()
		var ci *connInfo
		waitFor(t, "OnOpen", func() bool { ci = ts.rec.conn(rc.id); return ci != nil })
		const senders, each = 16, 300
		for s := 0; s < senders; s++ {
			go func() {
				for k := 0; k < each; k++ {
					if err := ci.handle.Send(session.Binary, []byte(fmt.Sprintf("%d:%d", s, k))); err != nil {
						ts.rec.violation(fmt.Sprintf("Handle.Send on an open connection: %v", err))
						return
					}
				}
			}()
		}
		next := make([]int, senders)
		for i := 0; i < senders*each; i++ {
			op, p := rc.readMessage()
			s, k, ok := parseChat(string(p))
			if op != opBinary || !ok || s >= senders || k != next[s] {
				t.Fatalf("message %d: op %d %q; want sender %d's message %d next", i, op, p, s, next[s%senders])
			}
			next[s]++
		}

		// Do runs on the connection's goroutine with the connection open.
		done := make(chan session.State, 1)
		if err := ci.handle.Do(func(c *session.Conn) { done <- c.State() }); err != nil {
			t.Fatalf("Handle.Do: %v", err)
		}
		select {
		case st := <-done:
			if st != session.StateOpen {
				t.Errorf("State() inside Do = %d, want StateOpen", st)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Handle.Do never ran")
		}

		// Close through the handle.
		if err := ci.handle.Close(4001, "by handle"); err != nil {
			t.Fatalf("Handle.Close: %v", err)
		}
		if reason := rc.expectClose(4001, false); reason != "by handle" {
			t.Errorf("close reason %q", reason)
		}

		keep := ts.openRaw()
		var kept *connInfo
		waitFor(t, "OnOpen", func() bool { kept = ts.rec.conn(keep.id); return kept != nil })
		keep.c.Close()
		ts.finish()
		err := kept.handle.Send(session.Text, []byte("after shutdown"))
		if err == nil {
			t.Errorf("Handle.Send after Shutdown returned nil, want an error (the engine takes no more tasks)")
		} else if !errors.Is(err, session.ErrClosed) {
			t.Logf("Handle.Send after Shutdown: %v", err)
		}
	})
}
