package loop_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationChurn: broadcasts and room messages flow while other
// clients come and go (clean closes, resets, mid-message exits), joining and
// leaving the room. Stable clients receive every
// broadcast exactly once and in order; every churned connection is closed
// exactly once; nothing is left behind.
func TestIntegrationChurn(t *testing.T) {
	const stable, pushes, churners, rounds = 10, 300, 4, 25
	forEachEngine(t, func(t *testing.T, engine string) {
		room := loop.NewRoom()
		rec := echoRecorder()
		rec.open = func(c *session.Conn) { room.Join(c.Handle()) }
		rec.close = func(c *session.Conn, _ session.StatusCode, _ string, _ error) { room.Leave(c.Handle()) }
		ts := startServer(t, engine, rec, nil)
		conns := make([]*websocket.Conn, stable)
		for i := range conns {
			conns[i] = ts.dialWS("/stable", nil)
		}
		waitFor(t, "stable clients open", func() bool { return ts.rec.opened() == stable })
		ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
		defer cancel()

		errs := make(chan error, stable+churners+1)
		var churn sync.WaitGroup
		for w := 0; w < churners; w++ {
			churn.Add(1)
			go func() {
				defer churn.Done()
				for r := 0; r < rounds; r++ {
					if err := ts.churnOnce((w + r) % 4); err != nil {
						errs <- fmt.Errorf("churner %d round %d: %w", w, r, err)
						return
					}
				}
			}()
		}
		go func() {
			for k := 0; k < pushes; k++ {
				// Alternate the two fan-out paths: order must hold across them.
				if k%2 == 0 {
					ts.srv.Broadcast(session.Text, []byte("push "+strconv.Itoa(k)))
				} else {
					room.Publish(session.Text, []byte("push "+strconv.Itoa(k)))
				}
				if k%50 == 0 {
					time.Sleep(time.Millisecond) // let churn interleave
				}
			}
			ts.srv.Broadcast(session.Text, []byte("end"))
		}()
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k <= pushes; k++ {
					_, p, err := c.Read(ctx)
					if err != nil {
						errs <- fmt.Errorf("stable %d: read %d: %w", i, k, err)
						return
					}
					want := "push " + strconv.Itoa(k)
					if k == pushes {
						want = "end"
					}
					if string(p) != want {
						errs <- fmt.Errorf("stable %d: got %q, want %q (lost, duplicated or reordered)", i, p, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		churn.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
		ts.finish()
		if n := room.Len(); n != 0 {
			t.Errorf("room.Len() = %d after every connection closed", n)
		}
		if got, want := ts.rec.closedCount(), ts.rec.opened(); got != want || want < stable+churners*rounds {
			t.Errorf("%d opened, %d closed; want at least %d opened and all closed", want, got, stable+churners*rounds)
		}
	})
}

// churnOnce opens a raw connection, completes the handshake and leaves in
// one of four ways.
func (ts *testServer) churnOnce(how int) error {
	nc, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
	if err != nil {
		return err
	}
	raw := nc.(*net.TCPConn)
	defer raw.Close()
	tc := ts.wrap(raw)
	tc.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := tc.Write([]byte(handshakeRequest("/churn"))); err != nil {
		return err
	}
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != 101 {
		return fmt.Errorf("handshake status %d", resp.StatusCode)
	}
	switch how {
	case 0: // clean close handshake
		tc.Write(clientFrame(true, opClose, closeBody(1000, "")))
		for {
			if _, err := br.ReadByte(); err != nil {
				return nil // the server closed after its reply
			}
		}
	case 1: // reset
		raw.SetLinger(0)
	case 2: // half a frame, then FIN
		f := clientFrame(true, opText, []byte("half of this frame"))
		tc.Write(f[:len(f)/2])
	case 3: // a message, then reset without waiting
		tc.Write(clientFrame(true, opText, []byte("hello")))
		raw.SetLinger(0)
	}
	return nil
}

// TestIntegrationOverflow: a client that stops reading while the server
// pushes. Under OverflowClose1008 its queue stays bounded and it is closed
// with 1008; under OverflowDrop it stays open, messages past the mark are
// dropped and counted, and what it does get is in order.
func TestIntegrationOverflow(t *testing.T) {
	const highWater, msgSize, pushes = 64 << 10, 32 << 10, 400 // 12.5 MiB pushed
	forEachEngine(t, func(t *testing.T, engine string) {
		t.Run("close_1008", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
				o.Session.HighWater = highWater
				o.Session.Overflow = session.OverflowClose1008
				o.Session.CloseTimeout = 300 * time.Millisecond
			})
			slow := ts.dialSlow(t)
			waitFor(t, "the slow client open", func() bool { return ts.srv.Conns() == 1 && ts.rec.opened() == 1 })
			go func() {
				for k := 0; k < pushes; k++ {
					p := payload(msgSize, false, k)
					binary4(p, k)
					ts.srv.Broadcast(session.Binary, p)
				}
			}()
			// The client reads nothing, so the server's queue passes the
			// mark whatever the speeds: the server must give the client up.
			slow.serverClose(ts.rec)
			// What did reach the client is a prefix of the pushes, then
			// (if the server could still flush it) a close 1008, then EOF.
			for next := 0; ; next++ {
				f, err := slow.readFrame()
				if err != nil {
					// A server that gives up on a peer may have left part
					// of a frame in the socket: a cut last frame is fine.
					if !isClosedErr(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("after %d messages: %v", next, err)
					}
					break
				}
				if f.op == opClose {
					if len(f.payload) < 2 || f.payload[0] != 0x03 || f.payload[1] != 0xF0 {
						t.Fatalf("got %s, want close 1008", describeClose(f.payload))
					}
					slow.expectEOF()
					break
				}
				if f.op != opBinary || !f.fin || len(f.payload) != msgSize {
					t.Fatalf("frame %d: op %d fin %v, %d bytes", next, f.op, f.fin, len(f.payload))
				}
				if k := int(f.payload[0])<<24 | int(f.payload[1])<<16 | int(f.payload[2])<<8 | int(f.payload[3]); k != next {
					t.Fatalf("message %d where %d was due: queued messages were lost or reordered", k, next)
				}
			}
			if ts.stats.Dropped.Load() != 0 {
				t.Errorf("Stats.Dropped = %d under OverflowClose1008", ts.stats.Dropped.Load())
			}
			ts.finish()
		})
		t.Run("close_with_unread_queue", func(t *testing.T) {
			// The handler closes a connection whose peer reads nothing while
			// megabytes wait for it: the server must still let it go.
			rec := echoRecorder()
			rec.open = func(c *session.Conn) {
				for k := 0; k < 64; k++ {
					if err := c.Send(session.Binary, payload(msgSize, false, k)); err != nil {
						break
					}
				}
				c.Close(session.StatusGoingAway, "bye")
			}
			ts := startServer(t, engine, rec, func(o *loop.Options) {
				o.Session.HighWater = 8 << 20
				o.Session.CloseTimeout = 300 * time.Millisecond
			})
			slow := ts.dialSlow(t)
			ev := slow.serverClose(ts.rec)
			if ev.code != session.StatusAbnormal || ev.err == nil {
				t.Errorf("OnClose(%d, %q, %v), want 1006 and an error: the peer never answered", ev.code, ev.reason, ev.err)
			}
			ts.finish()
		})
		t.Run("shutdown_with_unread_queue", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
				o.Session.HighWater = 16 << 20
			})
			ts.dialSlow(t)
			waitFor(t, "the slow client open", func() bool { return ts.rec.opened() == 1 })
			for k := 0; k < 128; k++ { // 4 MiB that the client never reads
				ts.srv.Broadcast(session.Binary, payload(msgSize, false, k))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			ts.done = true
			returned := make(chan error, 1)
			go func() { returned <- ts.srv.Shutdown(ctx) }()
			select {
			case <-returned:
			case <-time.After(waitTimeout):
				t.Fatal("Shutdown with a client that reads nothing did not return")
			}
			if n := ts.srv.Conns(); n != 0 {
				t.Errorf("Conns() after Shutdown = %d", n)
			}
			ts.closeClients()
			ts.checkLeaks()
		})
		t.Run("drop", func(t *testing.T) {
			ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
				o.Session.HighWater = highWater
				o.Session.Overflow = session.OverflowDrop
			})
			slow := ts.dialSlow(t)
			waitFor(t, "the slow client open", func() bool { return ts.srv.Conns() == 1 && ts.rec.opened() == 1 })
			pushed := make(chan struct{})
			go func() {
				defer close(pushed)
				for k := 0; k < pushes; k++ {
					p := payload(msgSize, false, k)
					binary4(p, k)
					ts.srv.Broadcast(session.Binary, p)
				}
			}()
			<-pushed
			waitFor(t, "Stats.Dropped > 0 or a close", func() bool {
				return ts.stats.Dropped.Load() > 0 || ts.rec.closedCount() > 0
			})
			if ts.rec.closedCount() > 0 {
				t.Fatalf("the slow client was closed under OverflowDrop (Stats.Dropped %d): %+v", ts.stats.Dropped.Load(), ts.rec.waitCloseOf(t, slow.id))
			}
			// Read until every push is accounted for: delivered or dropped.
			last, got := -1, 0
			for uint64(got)+ts.stats.Dropped.Load() < pushes {
				op, p := slow.readMessage()
				k := int(p[0])<<24 | int(p[1])<<16 | int(p[2])<<8 | int(p[3])
				if op != opBinary || k <= last || k >= pushes {
					t.Fatalf("op %d message %d after %d: out of order or duplicated", op, k, last)
				}
				last = k
				got++
			}
			// Drained: the next message is delivered, and nothing precedes it.
			ts.srv.Broadcast(session.Text, []byte("after the flood"))
			if op, p := slow.readMessage(); op != opText || string(p) != "after the flood" {
				t.Fatalf("after the flood: op %d %q", op, trunc(p))
			}
			dropped := ts.stats.Dropped.Load()
			if uint64(got)+dropped != pushes {
				t.Errorf("received %d + dropped %d = %d, want %d pushed", got, dropped, uint64(got)+dropped, pushes)
			}
			if ts.rec.closedCount() != 0 {
				t.Errorf("the slow client was closed under OverflowDrop")
			}
			ts.finish()
		})
	})
}

func binary4(p []byte, k int) {
	p[0], p[1], p[2], p[3] = byte(k>>24), byte(k>>16), byte(k>>8), byte(k)
}

// dialSlow opens a raw client with a tiny receive buffer that reads nothing
// until the test tells it to.
func (ts *testServer) dialSlow(t *testing.T) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: waitTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	ts.addCloser(func() { tc.Close() })
	nc := ts.wrap(tc)
	rc := &rawClient{t: t, c: nc, tcp: tc, br: bufio.NewReaderSize(nc, 4096)}
	rc.write([]byte(handshakeRequest("/slow")))
	rc.expectUpgrade()
	return rc
}
