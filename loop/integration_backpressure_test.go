package loop_test

// Backpressure under hostile peers, on every engine: what a server queues
// for a connection is bounded by HighWater, peers that do not read are cut
// off by the stated policies, and the others do not notice.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// mutePeer is a client that completes the handshake and then never reads:
// its receive buffer is small, so the server's socket fills soon. It keeps
// no read buffer of its own.
type mutePeer struct{ c net.Conn }

func dialMute(t *testing.T, ts *testServer, path string) *mutePeer {
	t.Helper()
	c := dialSmallWindow(t, ts)
	_ = c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte(handshakeRequest(path))); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	// Read exactly the 101 head, byte by byte: nothing behind it.
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			t.Fatalf("reading the 101: %v (have %q)", err, head)
		}
		head = append(head, b[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("handshake answered %q", head)
	}
	return &mutePeer{c: c}
}

// dialSmallWindow connects with a 4 KiB receive buffer, so that a peer
// that does not read stops taking bytes at once.
func dialSmallWindow(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: waitTimeout, Control: func(network, address string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ts.addCloser(func() { c.Close() })
	return ts.wrap(c.(*net.TCPConn)) // over TLS when the server speaks it
}

func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// A client that pings as fast as it can and never reads: its pongs
// coalesce, the server never holds more than HighWater for it, and the
// write timeout cuts it off.
func TestIntegrationPingFlooder(t *testing.T) {
	const hw = 16 << 10
	forEachEngine(t, func(t *testing.T, engine string) {
		rec := newRecorder()
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.HighWater = hw
			o.Session.WriteTimeout = 500 * time.Millisecond
		})
		p := dialMute(t, ts, "/")
		ping := clientFrame(true, opPing, bytes.Repeat([]byte("p"), 125))
		burst := bytes.Repeat(ping, 100)
		var maxPending int64
		var sent atomic.Int64
		// The flooder writes until the server closes it (a blocking write,
		// with no deadline: a crypto/tls client cannot resume a write cut
		// by one), while the test watches the server's queues.
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			for {
				n, err := p.c.Write(burst)
				sent.Add(int64(n))
				if err != nil {
					return // the server closed it
				}
			}
		}()
		for stop := time.Now().Add(2 * waitTimeout); time.Now().Before(stop) && rec.closedCount() == 0; time.Sleep(2 * time.Millisecond) {
			if pending, _ := ts.srv.Queued(); pending > maxPending {
				maxPending = pending
			}
		}
		if pending, _ := ts.srv.Queued(); pending > maxPending {
			maxPending = pending
		}
		ev := rec.firstClose(t)
		if ev.code != session.StatusAbnormal || !errors.Is(ev.err, loop.ErrWriteTimeout) {
			t.Fatalf("flooder closed with %d %v, want 1006 and the write timeout", ev.code, ev.err)
		}
		slack := int64(256)
		if ts.tls != nil {
			slack += tlsOverhead
		}
		if maxPending > hw+slack {
			t.Fatalf("server held up to %d bytes for the flooder, HighWater %d", maxPending, hw)
		}
		if n := ts.stats.SlowClosed.Load(); n != 1 {
			t.Fatalf("SlowClosed %d, want 1", n)
		}
		p.c.Close()
		<-wrote
		t.Logf("%s: flooder sent %d bytes of pings; at most %d bytes queued for it", engine, sent.Load(), maxPending)
		ts.finish()
	})
}

// 500 room members that never read while the room is flooded: each is
// closed as a slow consumer (1008) once its queue passes HighWater, the
// server's queues never hold more than HighWater plus a message per member,
// and a healthy member gets every message.
func TestIntegrationSlowRoomMembers(t *testing.T) {
	const (
		members  = 500
		messages = 300
		size     = 4 << 10
		hw       = 32 << 10
	)
	forEachEngine(t, func(t *testing.T, engine string) {
		room := loop.NewRoom()
		rec := newRecorder()
		rec.open = func(c *session.Conn) { room.Join(c.Handle()) }
		rec.close = func(c *session.Conn, code session.StatusCode, reason string, err error) { room.Leave(c.Handle()) }
		// The healthy member's route gives it room for the bursts of a
		// shared, busy machine; the others have the server's HighWater.
		roomy := &session.Config{HighWater: 4 << 20}
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.HighWater = hw
			o.SendBuffer = 16 << 10 // the kernel holds little for a peer that does not read
			o.Session.Upgrade = func(r *session.Request) (session.Accept, error) {
				if r.Path() == "/healthy" {
					return session.Accept{Config: roomy}, nil
				}
				return session.Accept{}, nil
			}
		})
		roomy.Stats = ts.stats
		for i := 0; i < members; i++ {
			dialMute(t, ts, "/")
		}
		healthy := ts.dialWS("/healthy", nil)
		waitFor(t, "every member in the room", func() bool { return room.Len() == members+1 })
		got := make(chan int, 1)
		go func() {
			n := 0
			ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
			defer cancel()
			for n < messages {
				_, p, err := healthy.Read(ctx)
				if err != nil || len(p) != size || p[0] != byte(n) {
					break
				}
				n++
			}
			got <- n
		}()
		rss0 := vmRSS(t)
		var maxMem int64
		msg := make([]byte, size)
		for i := 0; i < messages; i++ {
			msg[0] = byte(i)
			if err := room.Publish(session.Binary, msg); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if _, mem := ts.srv.Queued(); mem > maxMem {
				maxMem = mem
			}
			if i%8 == 0 {
				time.Sleep(time.Millisecond) // a flood, not an instant: let the healthy member read
			}
		}
		if n := <-got; n != messages {
			t.Fatalf("the healthy member got %d of %d messages", n, messages)
		}
		waitFor(t, "every slow member closed", func() bool { return int(ts.stats.SlowClosed.Load()) == members })
		growth := vmRSS(t) - rss0
		bound := int64(members) * (hw + 16<<10 + size)
		if ts.tls != nil {
			bound += members * tlsQueueBlock
		}
		if maxMem > bound {
			t.Fatalf("queues held up to %d bytes, bound %d", maxMem, bound)
		}
		rec.mu.Lock()
		for _, ev := range rec.closed {
			if ev.code != session.StatusAbnormal && ev.code != session.StatusPolicy {
				t.Errorf("a member closed with %d", ev.code)
			}
		}
		rec.mu.Unlock()
		t.Logf("%s: %d slow members closed; queues at most %.1f MiB; process RSS grew %.1f MiB", engine, members, float64(maxMem)/(1<<20), float64(growth)/(1<<20))
		if growth > 200<<20 {
			t.Fatalf("the process grew by %d MiB for %d slow members", growth>>20, members)
		}
		healthy.CloseNow()
		ts.finish()
	})
}

// Under OverflowDrop, a send from another goroutine to a connection that
// does not read reports the drop; the connection stays open.
func TestIntegrationSendReportsDrop(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		rec := newRecorder()
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.HighWater = 8 << 10
			o.Session.Overflow = session.OverflowDrop
			o.Session.WriteTimeout = -1
		})
		dialMute(t, ts, "/")
		waitFor(t, "the connection to open", func() bool { return rec.opened() == 1 })
		h := rec.conn(1).handle
		results := make(chan error, 64)
		msg := make([]byte, 4<<10)
		var dropped bool
		for i := 0; i < 100000 && !dropped; i++ {
			if err := h.SendReport(session.Binary, msg, func(err error) { results <- err }); err != nil {
				t.Fatalf("SendReport: %v", err)
			}
			switch err := <-results; err {
			case nil:
			case session.ErrDropped:
				dropped = true
			default:
				t.Fatalf("send %d reported %v", i, err)
			}
		}
		if !dropped || ts.stats.Dropped.Load() == 0 {
			t.Fatalf("no drop reported (Dropped %d)", ts.stats.Dropped.Load())
		}
		if rec.closedCount() != 0 {
			t.Fatal("OverflowDrop closed the connection")
		}
		ts.finish()
	})
}

// A peer that does not read never slows a publish down for the others: a
// publish only posts tasks, whatever the engine.
func TestIntegrationSlowPeerDoesNotStallPublish(t *testing.T) {
	const healthyN, messages = 10, 2000
	forEachEngine(t, func(t *testing.T, engine string) {
		room := loop.NewRoom()
		rec := newRecorder()
		rec.open = func(c *session.Conn) { room.Join(c.Handle()) }
		rec.close = func(c *session.Conn, code session.StatusCode, reason string, err error) { room.Leave(c.Handle()) }
		// HighWater above the whole burst (2 MB): the healthy members are
		// not slow consumers, whatever the engine buffers on the way.
		ts := startServer(t, engine, rec, func(o *loop.Options) { o.Session.HighWater = 4 << 20 })
		dialMute(t, ts, "/")
		var wg sync.WaitGroup
		var short atomic.Int32
		for i := 0; i < healthyN; i++ {
			c := ts.dialWS("/", nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
				defer cancel()
				for n := 0; n < messages; n++ {
					if _, _, err := c.Read(ctx); err != nil {
						short.Add(1)
						return
					}
				}
			}()
		}
		waitFor(t, "all in the room", func() bool { return room.Len() == healthyN+1 })
		msg := make([]byte, 1<<10)
		start := time.Now()
		for i := 0; i < messages; i++ {
			if err := room.Publish(session.Binary, msg); err != nil {
				t.Fatal(err)
			}
		}
		// The stated bound: posting 2000 publishes takes milliseconds; a
		// publisher that waited for the slow peer (even 1 ms per message)
		// would take seconds.
		if el := time.Since(start); el > time.Second {
			t.Fatalf("%d publishes took %v with one peer not reading", messages, el)
		}
		wg.Wait()
		if short.Load() != 0 {
			t.Fatalf("%d healthy members missed messages", short.Load())
		}
		ts.finish()
	})
}

// A panic in a task is recovered and counted on every engine; its
// connection is failed with 1011.
func TestIntegrationTaskPanicCounted(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		rec := echoRecorder()
		ts := startServer(t, engine, rec, nil)
		victim := ts.openRaw()
		waitFor(t, "open", func() bool { return rec.opened() == 1 })
		_ = rec.conn(1).handle.Do(func(*session.Conn) { panic("task bug") })
		victim.expectClose(1011, false)
		if n := ts.stats.Panics.Load(); n != 1 {
			t.Fatalf("Panics = %d, want 1", n)
		}
		ts.finish()
	})
}

// The queue of a peer that keeps pace without keeping up follows what is
// pending: after 8 MB it holds about HighWater, not the history.
func TestIntegrationQueueFollowsPacingPeer(t *testing.T) {
	const hw = 64 << 10
	forEachEngine(t, func(t *testing.T, engine string) {
		drained := make(chan struct{}, 1)
		rec := newRecorder()
		rec.drain = func(*session.Conn) {
			select {
			case drained <- struct{}{}:
			default:
			}
		}
		ts := startServer(t, engine, rec, func(o *loop.Options) {
			o.Session.HighWater = hw
			o.Session.Overflow = session.OverflowError
		})
		rc := ts.openRaw()
		waitFor(t, "open", func() bool { return rec.opened() == 1 })
		h := rec.conn(1).handle
		const total = 8 << 20
		msg := make([]byte, 8<<10)
		done := make(chan error, 1)
		go func() { // the application: sends while it may, waits for OnDrain
			sent := 0
			res := make(chan error, 1)
			for sent < total {
				if err := h.SendReport(session.Binary, msg, func(err error) { res <- err }); err != nil {
					done <- err
					return
				}
				switch err := <-res; err {
				case nil:
					sent += len(msg)
				case session.ErrBackpressure:
					select {
					case <-drained:
					case <-time.After(waitTimeout):
						done <- errors.New("no OnDrain")
						return
					}
				default:
					done <- err
					return
				}
			}
			done <- nil
		}()
		var read int
		var maxMem int64
		buf := make([]byte, 16<<10)
		for read < total+total/(8<<10)*4 { // payloads and 4-byte headers
			rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
			n, err := rc.br.Read(buf)
			if err != nil {
				t.Fatalf("after %d bytes: %v", read, err)
			}
			read += n
			if _, mem := ts.srv.Queued(); mem > maxMem {
				maxMem = mem
			}
			time.Sleep(time.Millisecond) // a reader slower than the sender: at most 16 MB/s
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if maxMem > 2*hw+32<<10 {
			t.Fatalf("queue memory reached %d bytes for HighWater %d", maxMem, hw)
		}
		t.Logf("%s: 8 MB through a pacing peer, queue memory at most %d KiB", engine, maxMem>>10)
		ts.finish()
	})
}
