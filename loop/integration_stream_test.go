package loop_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/ssetest"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Event streams on every engine: Options.LoopHTTP makes GET /events a
// text/event-stream subscriber of a Room (session.Conn.StartStream), next
// to WebSocket members of the same Room. The client here is a hand-written
// HTTP/1.1 reader with its own event parser (the WHATWG rules).

// streamFixture is a server whose /events streams and WebSocket
// connections are members of one room. A stream resumes from its request's
// Last-Event-ID (Room.JoinFrom; when that is not possible it first gets an
// event named "gap" whose data is the id it asked for).
type streamFixture struct {
	*testServer
	room *loop.Room
}

func startStreams(t *testing.T, engine string, ro loop.RoomOptions, edit func(o *loop.Options)) *streamFixture {
	t.Helper()
	f := &streamFixture{room: loop.NewRoomWith(ro)}
	rec := newRecorder()
	rec.open = func(c *session.Conn) {
		last, _ := c.Value().(*connInfo).extra.(string)
		f.room.JoinFrom(c, last, 0)
	}
	rec.close = func(c *session.Conn, _ session.StatusCode, _ string, _ error) { f.room.Leave(c.Handle()) }
	f.testServer = startServer(t, engine, rec, func(o *loop.Options) {
		o.LoopHTTP = func(c *session.Conn, r *session.Request) bool {
			if r.Path() != "/events" {
				return false
			}
			id := rec.nextID.Add(1)
			err := c.StartStream(session.Accept{Handler: rec,
				Value:  &preOpen{id: id, value: r.Header("Last-Event-ID")},
				Header: fmt.Appendf(nil, "%s: %d\r\n", connIDHeader, id)})
			if err != nil {
				rec.violation("StartStream: " + err.Error())
			}
			return true
		}
		if edit != nil {
			edit(o)
		}
	})
	return f
}

// sseClient is an event stream (internal/ssetest) and the server's number
// for it.
type sseClient struct {
	*ssetest.Client
	id int64
}

// dialSSE opens GET path with Last-Event-ID last (none when "") and checks
// the response head: no length, no chunking, the end is the connection's.
func (ts *testServer) dialSSE(path, last string) *sseClient {
	ts.t.Helper()
	var hdr []string
	if last != "" {
		hdr = append(hdr, "Last-Event-ID: "+last)
	}
	var c *ssetest.Client
	if ts.tls != nil {
		nc, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
		if err != nil {
			ts.t.Fatal(err)
		}
		c = ssetest.DialOn(ts.t, ts.wrap(nc.(*net.TCPConn)), ts.addr, path, hdr...) // over TLS
	} else {
		c = ssetest.Dial(ts.t, ts.addr, path, hdr...)
	}
	ts.addCloser(c.Close)
	resp := c.Response
	if resp.Header.Get("Cache-Control") != "no-store" || resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 || !resp.Close {
		ts.t.Fatalf("stream response: %v length %d encoding %v close %v", resp.Header, resp.ContentLength, resp.TransferEncoding, resp.Close)
	}
	s := &sseClient{Client: c}
	s.id, _ = strconv.ParseInt(resp.Header.Get(connIDHeader), 10, 64)
	return s
}

// idNumber splits an event id "<epoch>-<n>"; n is -1 when id is not one.
func idNumber(id string) (epoch string, n int) {
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.Atoi(id[i+1:])
	if i <= 0 || err != nil {
		return "", -1
	}
	return id[:i], n
}

// TestIntegrationStreamRoom: event streams and WebSocket connections in
// one Room get the same messages exactly once and in order (multi-line and
// binary ones included), with ids numbering them; Server.Broadcast reaches
// streams too; a stream whose client goes away leaves (OnClose with 1006
// and EOF); plain requests LoopHTTP does not take still go to Options.HTTP.
func TestIntegrationStreamRoom(t *testing.T) {
	const messages = 300
	forEachEngine(t, func(t *testing.T, engine string) {
		f := startStreams(t, engine, loop.RoomOptions{History: 16}, nil)
		streams := []*sseClient{f.dialSSE("/events", ""), f.dialSSE("/events", "")}
		wss := []*websocket.Conn{f.dialWS("/ws", nil), f.dialWS("/ws", nil)}
		waitFor(t, "4 members", func() bool { return f.room.Len() == 4 })

		text := func(k int) string {
			if k%7 == 3 {
				return fmt.Sprintf("m-%d\nsecond line\n", k)
			}
			return fmt.Sprintf("m-%d", k)
		}
		go func() {
			for k := 0; k < messages; k++ {
				if err := f.room.Publish(session.Text, []byte(text(k))); err != nil {
					t.Errorf("publish %d: %v", k, err)
				}
				if k%32 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			_ = f.room.Publish(session.Binary, []byte{0, 0xff, '\n'})
		}()
		var wg sync.WaitGroup
		for i, s := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				epoch := ""
				for k := 0; k < messages; k++ {
					ev, err := s.Read()
					if err != nil {
						t.Errorf("stream %d: after %d events: %v", i, k, err)
						return
					}
					e, n := idNumber(ev.ID)
					if epoch == "" {
						epoch = e
					}
					if ev.Comment || ev.Data != text(k) || e != epoch || n != k+1 || ev.Name != "" {
						t.Errorf("stream %d: event %+v, want %q with id %s-%d (lost, duplicated or reordered)", i, ev, text(k), epoch, k+1)
						return
					}
				}
				if ev, err := s.Read(); err != nil || ev.Name != "binary" || ev.Data != "AP8K" {
					t.Errorf("stream %d: binary message came as %+v, %v", i, ev, err)
				}
			}()
		}
		for i, c := range wss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				for k := 0; k <= messages; k++ {
					typ, p, err := c.Read(ctx)
					want, wantTyp := text(k), websocket.MessageText
					if k == messages {
						want, wantTyp = "\x00\xff\n", websocket.MessageBinary
					}
					if err != nil || string(p) != want || typ != wantTyp {
						t.Errorf("ws %d: message %d: %v %q %v, want %q", i, k, typ, p, err, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		if err := f.srv.Broadcast(session.Text, []byte("to all")); err != nil {
			t.Fatal(err)
		}
		for i, s := range streams {
			if ev := s.Event(); ev.Data != "to all" || ev.ID != "" {
				t.Fatalf("stream %d: broadcast came as %+v", i, ev)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		for i, c := range wss {
			if _, p, err := c.Read(ctx); err != nil || string(p) != "to all" {
				t.Fatalf("ws %d: broadcast %q %v", i, p, err)
			}
		}

		// A plain request the hook leaves alone goes on to the default.
		raw := f.dialRaw()
		raw.write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
		if resp, body := raw.readResponse(); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("/healthz beside the streams: %d %q", resp.StatusCode, body)
		}

		// The client goes away: the stream ends, its member leaves.
		streams[0].Close()
		ev := f.rec.waitCloseOf(t, streams[0].id)
		if ev.code != session.StatusAbnormal || ev.err == nil {
			t.Fatalf("stream whose client left: OnClose %d %v, want 1006 and the engine's error", ev.code, ev.err)
		}
		waitFor(t, "the stream out of the room", func() bool { return f.room.Len() == 3 })
		f.finish()
	})
}

// TestIntegrationStreamResume: a stream that reconnects with Last-Event-ID
// gets exactly what it missed, then what follows, while messages keep
// being published (the join and the replay are one step under the room's
// publishes); past the history (evicted, another room's epoch, nonsense)
// it gets a "gap" event and then the live messages only.
func TestIntegrationStreamResume(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const total = 600
		f := startStreams(t, engine, loop.RoomOptions{History: total}, nil)

		// A steady publisher while one stream reconnects again and again
		// (the first connection is in before the first message).
		first := f.dialSSE("/events", "")
		waitFor(t, "the stream in the room", func() bool { return f.room.Len() == 1 })
		var published atomic.Int64
		go func() {
			for k := 1; k <= total; k++ {
				if err := f.room.Publish(session.Text, []byte("n"+strconv.Itoa(k))); err != nil {
					t.Errorf("publish %d: %v", k, err)
				}
				published.Store(int64(k))
				if k%4 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		last, seen, reconnects := "", 0, 0
		for seen < total {
			s := first
			if reconnects > 0 {
				s = f.dialSSE("/events", last)
			}
			// Each connection reads a few events, then leaves (the last one
			// reads to the end).
			for k := 0; k < 37 && seen < total; k++ {
				ev := s.Event()
				if ev.Name == "gap" {
					t.Fatalf("reconnect %d with %q got a gap", reconnects, last)
				}
				_, n := idNumber(ev.ID)
				if n != seen+1 || ev.Data != "n"+strconv.Itoa(n) {
					t.Fatalf("reconnect %d (Last-Event-ID %q): event %+v after %d (lost, duplicated or reordered)", reconnects, last, ev, seen)
				}
				seen, last = n, ev.ID
			}
			s.Close()
			reconnects++
		}
		t.Logf("%s: %d messages over %d connections", engine, total, reconnects)
		epoch, _ := idNumber(last)

		// The latest id: nothing missed, nothing replayed, no gap.
		s := f.dialSSE("/events", last)
		waitFor(t, "the stream in the room", func() bool { return f.room.Len() == 1 })
		_ = f.room.Publish(session.Text, []byte("live"))
		if ev := s.Event(); ev.Data != "live" || ev.ID != epoch+"-"+strconv.Itoa(total+1) {
			t.Fatalf("resumed at the latest id: %+v", ev)
		}
		s.Close()
		waitFor(t, "the room empty", func() bool { return f.room.Len() == 0 })

		// Ids it cannot resume from: a gap, then only what is new.
		for _, bad := range []string{"0badbeef-5", epoch + "-" + strconv.Itoa(total+50), "nonsense", epoch + "-"} {
			s := f.dialSSE("/events", bad)
			if ev := s.Event(); ev.Name != "gap" || ev.Data != bad {
				t.Fatalf("Last-Event-ID %q: first event %+v, want a gap", bad, ev)
			}
			waitFor(t, "the stream in the room", func() bool { return f.room.Len() == 1 })
			_ = f.room.Publish(session.Text, []byte("after "+bad))
			if ev := s.Event(); ev.Data != "after "+bad {
				t.Fatalf("Last-Event-ID %q: after the gap %+v", bad, ev)
			}
			s.Close()
			waitFor(t, "the room empty", func() bool { return f.room.Len() == 0 })
		}
		f.finish()
	})
}

// TestIntegrationStreamHistoryBounds: a room keeps History messages and
// HistoryBytes of payload: a stream that missed more gets a gap.
func TestIntegrationStreamHistoryBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := startStreams(t, engine, loop.RoomOptions{History: 8, HistoryBytes: 100, Epoch: "e"}, nil)
		for k := 1; k <= 20; k++ {
			_ = f.room.Publish(session.Text, []byte(fmt.Sprintf("%02d", k))) // 2 bytes each: the count binds
		}
		check := func(last string, want ...string) {
			t.Helper()
			s := f.dialSSE("/events", last)
			waitFor(t, "the stream in the room", func() bool { return f.room.Len() == 1 })
			_ = f.room.Publish(session.Text, []byte("end"))
			var got []string
			for {
				ev := s.Event()
				got = append(got, ev.Name+":"+ev.Data)
				if ev.Data == "end" {
					break
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("Last-Event-ID %q: %v, want %v", last, got, want)
			}
			s.Close()
			waitFor(t, "the room empty", func() bool { return f.room.Len() == 0 })
		}
		// Kept: 13-20. 12 is the newest missing one: from 12 on resumes.
		check("e-12", ":13", ":14", ":15", ":16", ":17", ":18", ":19", ":20", ":end")
		check("e-18", ":19", ":20", ":end")
		check("e-11", "gap:e-11", ":end")
		// Now the bytes bind: 40-byte messages, at most 100 bytes kept.
		for k := 0; k < 3; k++ {
			_ = f.room.Publish(session.Text, []byte(strings.Repeat(strconv.Itoa(k), 40)))
		}
		// Those are 24-26: with the third (120 bytes with the 2- and 3-byte
		// ones before it) everything up to 24 went: 25 and 26 are kept.
		check("e-24", ":"+strings.Repeat("1", 40), ":"+strings.Repeat("2", 40), ":end")
		check("e-23", "gap:e-23", ":end")
		f.finish()
	})
}

// TestIntegrationStreamHeartbeat: an idle stream gets a comment line after
// each PingInterval without output and stays open: IdleTimeout, which
// closes the silent WebSocket beside it, does not apply to a stream's
// client, which never speaks.
func TestIntegrationStreamHeartbeat(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := startStreams(t, engine, loop.RoomOptions{}, func(o *loop.Options) {
			o.Session.PingInterval = 100 * time.Millisecond
			o.Session.IdleTimeout = 150 * time.Millisecond
			o.Session.CloseTimeout = 100 * time.Millisecond
		})
		s := f.dialSSE("/events", "")
		f.openRaw() // a WebSocket that says nothing (nor answers pings)
		for beats := 0; beats < 6; {
			ev := s.Next()
			if !ev.Comment {
				t.Fatalf("idle stream got %+v, want only heartbeats", ev)
			}
			beats++
		}
		waitFor(t, "the idle WebSocket closed", func() bool { return f.rec.closedCount() == 1 })
		if f.room.Len() != 1 {
			t.Fatalf("the stream left the room: %d members", f.room.Len())
		}
		// An event is output too: it moves the next heartbeat, and the
		// stream goes on.
		_ = f.room.Publish(session.Text, []byte("x"))
		if ev := s.Event(); ev.Data != "x" {
			t.Fatalf("after heartbeats: %+v", ev)
		}
		f.finish()
	})
}

// dialMuteSSE opens an event stream with a small receive buffer and never
// reads from it.
func dialMuteSSE(t *testing.T, ts *testServer, path string) net.Conn {
	t.Helper()
	c := dialSmallWindow(t, ts)
	_ = c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatalf("request: %v", err)
	}
	return c
}

// TestIntegrationStreamSlowConsumers: streams that never read while their
// room is flooded are closed as slow consumers (OnClose with 1008) once
// their queues pass HighWater; the server's queues stay within HighWater
// plus a message per member, and a healthy stream and a healthy WebSocket
// get every message.
func TestIntegrationStreamSlowConsumers(t *testing.T) {
	const (
		mute     = 100
		messages = 300
		size     = 4 << 10
		hw       = 32 << 10
	)
	forEachEngine(t, func(t *testing.T, engine string) {
		roomy := &session.Config{HighWater: 4 << 20}
		f := startStreams(t, engine, loop.RoomOptions{}, func(o *loop.Options) {
			o.Session.HighWater = hw
			o.SendBuffer = 16 << 10
			o.Session.Upgrade = func(r *session.Request) (session.Accept, error) { return session.Accept{Config: roomy}, nil }
			roomy.Stats = o.Session.Stats
		})
		for i := 0; i < mute; i++ {
			dialMuteSSE(t, f.testServer, "/events")
		}
		healthy := f.dialSSE("/events", "")
		ws := f.dialWS("/ws", nil)
		waitFor(t, "every member in the room", func() bool { return f.room.Len() == mute+2 })
		// The healthy stream has the server's HighWater too: it reads as
		// the flood comes, and the publisher waits for it now and then.
		var got atomic.Int64
		done := make(chan error, 2)
		go func() {
			for n := 0; n < messages; n++ {
				ev, err := healthy.Read()
				if err != nil || len(ev.Data) != size || ev.Data[0] != byte('a'+n%26) {
					done <- fmt.Errorf("healthy stream: message %d: %v (%d bytes)", n, err, len(ev.Data))
					return
				}
				got.Store(int64(n + 1))
			}
			done <- nil
		}()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
			defer cancel()
			for n := 0; n < messages; n++ {
				_, p, err := ws.Read(ctx)
				if err != nil || len(p) != size || p[0] != byte('a'+n%26) {
					done <- fmt.Errorf("healthy ws: message %d: %v", n, err)
					return
				}
			}
			done <- nil
		}()
		var maxMem int64
		msg := make([]byte, size)
		for i := 0; i < messages; i++ {
			for j := range msg {
				msg[j] = byte('a' + i%26)
			}
			if err := f.room.Publish(session.Text, msg); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if _, mem := f.srv.Queued(); mem > maxMem {
				maxMem = mem
			}
			for int64(i)-got.Load() > 4 && len(done) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "every mute stream closed", func() bool { return int(f.stats.SlowClosed.Load()) == mute })
		// Each stream may queue its HighWater, a block and a message; the
		// healthy WebSocket member its own, roomier, HighWater (the
		// publisher waits for the healthy stream only).
		if bound := int64(mute+1)*(hw+16<<10+size) + int64(roomy.HighWater+16<<10+size); maxMem > bound {
			t.Fatalf("queues held up to %d bytes, bound %d", maxMem, bound)
		}
		f.rec.mu.Lock()
		for _, ev := range f.rec.closed {
			if ev.code != session.StatusPolicy || ev.err != nil {
				t.Errorf("a mute stream closed with %d %v, want 1008 (the slow-consumer close) and no error", ev.code, ev.err)
			}
		}
		f.rec.mu.Unlock()
		waitFor(t, "the mute streams out of the room", func() bool { return f.room.Len() == 2 })
		t.Logf("%s: %d mute streams closed; queues at most %.1f MiB", engine, mute, float64(maxMem)/(1<<20))
		f.finish()
	})
}

// TestIntegrationStreamShutdown: Shutdown ends every stream (once what it
// queued is written): the client reads its last event, then the end; its
// OnClose hears 1001.
func TestIntegrationStreamShutdown(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := startStreams(t, engine, loop.RoomOptions{}, nil)
		s := f.dialSSE("/events", "")
		waitFor(t, "the stream in the room", func() bool { return f.room.Len() == 1 })
		_ = f.room.Publish(session.Text, []byte("last words"))
		if ev := s.Event(); ev.Data != "last words" {
			t.Fatalf("%+v", ev)
		}
		f.shutdown()
		s.ExpectEnd()
		if ev := f.rec.waitCloseOf(t, s.id); ev.code != session.StatusGoingAway || ev.err != nil {
			t.Fatalf("stream at shutdown: OnClose %d %v, want 1001", ev.code, ev.err)
		}
		f.closeClients()
		f.checkLeaks()
	})
}
