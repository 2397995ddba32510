package loop_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// TestIntegrationKeepalive: with PingInterval set, the server pings quiet
// connections; one that never answers is closed after PongTimeout, one that
// answers stays open. Asserted on events (pings seen, closes), not durations.
func TestIntegrationKeepalive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.PingInterval = 250 * time.Millisecond
			o.Session.PongTimeout = 700 * time.Millisecond
		})
		mute := ts.openRaw()
		live := ts.openRaw()

		// live answers every ping with a pong carrying the same payload.
		var livePings atomic.Int64
		liveErr := make(chan error, 1)
		liveMsg := make(chan []byte, 1)
		go func() {
			for {
				f, err := live.readFrame()
				if err != nil {
					liveErr <- err
					return
				}
				switch f.op {
				case opPing:
					live.writeQuiet(clientFrame(true, opPong, f.payload))
					livePings.Add(1)
				case opText:
					liveMsg <- f.payload
				default:
					liveErr <- fmt.Errorf("unexpected frame op %d %q", f.op, trunc(f.payload))
					return
				}
			}
		}()

		// mute sees a ping, stays silent, and is closed by the server.
		mutePings := 0
		for {
			f, err := mute.readFrame()
			if err != nil {
				if !isClosedErr(err) {
					t.Fatalf("mute client: %v", err)
				}
				break
			}
			if f.op == opPing {
				mutePings++
				continue
			}
			if f.op == opClose {
				// A close frame before the TCP close is acceptable; it is the
				// server's last word.
				mute.expectEOF()
				break
			}
			t.Fatalf("mute client got op %d %q", f.op, trunc(f.payload))
		}
		if mutePings == 0 {
			t.Errorf("the silent client was closed without being pinged first")
		}
		ev := mute.serverClose(ts.rec)
		if ev.code != session.StatusAbnormal || ev.err == nil {
			t.Errorf("silent client: OnClose(%d, %q, %v), want 1006 with a timeout error", ev.code, ev.reason, ev.err)
		}

		// live outlasts mute: it keeps being pinged, answering, and open.
		seen := livePings.Load()
		// A ping is sent only once the previous one was answered in time, so
		// one more ping means the answering client passed a pong deadline.
		waitFor(t, "another ping to the answering client", func() bool { return livePings.Load() >= seen+1 })
		select {
		case err := <-liveErr:
			t.Fatalf("answering client lost: %v", err)
		default:
		}
		live.write(clientFrame(true, opText, []byte("still alive")))
		select {
		case p := <-liveMsg:
			if !bytes.Equal(p, []byte("still alive")) {
				t.Fatalf("answering client echo %q", p)
			}
		case err := <-liveErr:
			t.Fatalf("answering client lost: %v", err)
		case <-time.After(waitTimeout):
			t.Fatal("no echo to the answering client")
		}
		if n := ts.rec.closedCount(); n != 1 {
			t.Errorf("%d connections closed, want only the silent one", n)
		}
		ts.finish()
		<-liveErr // the reader ends once finish closed the client
	})
}

// TestIntegrationIdleTimeout: with IdleTimeout set (and no pings), a client
// that sends nothing is closed; one that keeps sending is not.
func TestIntegrationIdleTimeout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.IdleTimeout = time.Second
		})
		idle := ts.openRaw()
		busy := ts.openRaw()
		stop := make(chan struct{})
		busyErr := make(chan error, 1)
		var echoes atomic.Int64
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					busyErr <- nil
					return
				case <-time.After(50 * time.Millisecond):
				}
				busy.writeQuiet(clientFrame(true, opText, []byte("tick")))
				f, err := busy.readFrame()
				if err != nil {
					busyErr <- err
					return
				}
				if f.op != opText || string(f.payload) != "tick" {
					busyErr <- fmt.Errorf("busy client got op %d %q", f.op, trunc(f.payload))
					return
				}
				echoes.Add(1)
			}
		}()
		// The idle one is closed: maybe a close frame first, then TCP.
		f, err := idle.readFrame()
		if err == nil {
			if f.op != opClose {
				t.Fatalf("idle client got op %d %q, want a close or EOF", f.op, trunc(f.payload))
			}
			idle.writeQuiet(clientFrame(true, opClose, f.payload))
			idle.expectEOF()
		} else if !isClosedErr(err) {
			t.Fatalf("idle client: %v, want the server to close it", err)
		}
		idle.serverClose(ts.rec)
		// The busy one outlives it by a few more round trips.
		seen := echoes.Load()
		waitFor(t, "more echoes to the busy client", func() bool { return echoes.Load() >= seen+3 })
		close(stop)
		if err := <-busyErr; err != nil {
			t.Fatalf("busy client: %v", err)
		}
		if n := ts.rec.closedCount(); n != 1 {
			t.Errorf("%d connections closed, want only the idle one", n)
		}
		ts.finish()
	})
}
