package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

const wantStreamHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n"

// openStream serves a GET whose HTTP hook makes it an event stream for h
// (extra header lines hdr) and returns it with the output cleared.
func openStream(t *testing.T, cfg *Config, h Handler, hdr string) (*tconn, *fakeTransport) {
	t.Helper()
	var serr error
	cfg.HTTP = func(c *Conn, r *Request) {
		serr = c.StartStream(Accept{Handler: h, Value: "v", Header: []byte(hdr)})
	}
	c, ft := serverResponse(t, cfg, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	if serr != nil || c.State() != StateStream {
		t.Fatalf("StartStream: %v, state %v", serr, c.State())
	}
	if want := wantStreamHead + hdr + "\r\n"; string(ft.out) != want {
		t.Fatalf("head %q, want %q", ft.out, want)
	}
	ft.out = ft.out[:0]
	return c, ft
}

func TestStreamEvents(t *testing.T) {
	stats := &Stats{}
	rec := &recorder{}
	c, ft := openStream(t, &Config{Stats: stats}, rec, "X-A: 1\r\n")
	if strings.Join(rec.events, ",") != "open" || c.Value() != "v" || stats.Opened.Load() != 1 {
		t.Fatalf("OnOpen: events %v value %v opened %d", rec.events, c.Value(), stats.Opened.Load())
	}
	if !c.m().Open() {
		t.Fatal("a stream does not take messages (Machine.Open)")
	}
	steps := []struct {
		send func() error
		want string
	}{
		{func() error { return c.Send(Text, []byte("hello")) }, "data: hello\n\n"},
		{func() error { return c.Send(Text, []byte("a\nb\r\nc\rd")) }, "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{func() error { return c.Send(Binary, []byte{0, 1, 255}) }, "event: binary\ndata: AAH/\n\n"},
		{func() error { return c.SendPrepared(NewPreparedID(Text, []byte("x"), "e1-7")) }, "id: e1-7\ndata: x\n\n"},
		{func() error { return c.SendPrepared(NewPrepared(Text, []byte(""))) }, "data: \n\n"},
		{func() error {
			var err error
			c.do(func(c *Conn) { err = c.SendEvent("hel\nlo", []byte(`{"id":1}`)) })
			return err
		}, "event: hello\ndata: {\"id\":1}\n\n"},
		{func() error { return c.WriteHTTP([]byte("retry: 500\n\n")) }, "retry: 500\n\n"},
		{func() error { return c.Ping([]byte("p")) }, ":\n"},
	}
	for i, s := range steps {
		ft.out = ft.out[:0]
		if err := s.send(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if string(ft.out) != s.want {
			t.Fatalf("step %d wrote %q, want %q", i, ft.out, s.want)
		}
	}
	// Input is dropped: no output, nothing kept.
	ft.out = ft.out[:0]
	c.Feed([]byte("GET /again HTTP/1.1\r\n\r\njunk"), t0)
	if len(ft.out) != 0 || c.buf != nil || c.State() != StateStream {
		t.Fatalf("input on a stream: wrote %q, buf %v, state %v", ft.out, c.buf != nil, c.State())
	}
	if err := c.EndHTTP(true); err != ErrClosed {
		t.Fatalf("EndHTTP on a stream: %v", err)
	}
	// Close ends it; OnClose hears Close's code.
	if err := c.Close(StatusGoingAway, "bye"); err != nil {
		t.Fatal(err)
	}
	if ft.closed != 1 || c.State() != StateClosed || rec.closes != 1 || rec.code != StatusGoingAway || rec.err != nil {
		t.Fatalf("after Close: closed %d state %v closes %d code %d err %v", ft.closed, c.State(), rec.closes, rec.code, rec.err)
	}
	if len(ft.out) != 0 {
		t.Fatalf("Close wrote %q (a stream has no close frame)", ft.out)
	}
	if err := c.Send(Text, []byte("late")); err != ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
	if stats.Closed.Load() != 1 {
		t.Fatalf("Stats.Closed %d", stats.Closed.Load())
	}
}

// The client going away (EOF) ends the stream with StatusAbnormal and the
// engine's error; a stream refuses StartStream twice, and a plain request
// without a handler cannot become one.
func TestStreamPeerGone(t *testing.T) {
	rec := &recorder{}
	c := &tconn{}
	ft := &fakeTransport{} // no conn: the test reports the socket's end itself
	cfg := &Config{HTTP: func(c *Conn, r *Request) {
		if err := c.StartStream(Accept{Handler: rec}); err != nil {
			t.Errorf("StartStream: %v", err)
		}
		if err := c.StartStream(Accept{Handler: rec}); err != ErrClosed {
			t.Errorf("second StartStream: %v", err)
		}
	}}
	c.ft = ft
	ft.call(t0, func(io *IO) { c.m().InitServer(io, cfg) })
	ft.call(t0, func(io *IO) { c.m().Feed(io, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) })
	ft.call(t0, func(x *IO) { c.m().Closed(x, io.EOF) })
	if rec.closes != 1 || rec.code != StatusAbnormal || !errors.Is(rec.err, io.EOF) {
		t.Fatalf("peer gone: closes %d code %d err %v", rec.closes, rec.code, rec.err)
	}

	var serr error
	cfg = &Config{HTTP: func(c *Conn, r *Request) { serr = c.StartStream(Accept{}) }}
	serverResponse(t, cfg, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if serr == nil {
		t.Fatal("StartStream without a handler succeeded")
	}
}

// The heartbeat: a comment PingInterval after the last output; neither
// IdleTimeout nor PongTimeout apply to a stream's silent client; past
// HighWater the heartbeat is skipped.
func TestStreamHeartbeat(t *testing.T) {
	c, ft := openStream(t, &Config{PingInterval: 20 * time.Second, IdleTimeout: 5 * time.Second, HighWater: 100}, &recorder{}, "")
	if ft.timer != t0+20*sec {
		t.Fatalf("first deadline %d, want start + 20 s", (ft.timer-t0)/sec)
	}
	c.Tick(t0 + 10*sec) // early: nothing
	if len(ft.out) != 0 || c.State() != StateStream {
		t.Fatalf("early tick: %q %v", ft.out, c.State())
	}
	c.Tick(t0 + 20*sec)
	if string(ft.out) != ":\n" || ft.timer != t0+40*sec {
		t.Fatalf("heartbeat %q, next deadline +%d s", ft.out, (ft.timer-t0)/sec)
	}
	// Output moves the heartbeat: none at +40 after an event at +30.
	ft.out = ft.out[:0]
	ft.call(t0+30*sec, func(io *IO) { c.m().Run(io, func(c *Conn) { _ = c.Send(Text, []byte("e")) }) })
	ft.out = ft.out[:0]
	c.Tick(t0 + 40*sec)
	if len(ft.out) != 0 || ft.timer != t0+50*sec {
		t.Fatalf("tick after output: %q, next +%d s", ft.out, (ft.timer-t0)/sec)
	}
	// A full queue: no heartbeat on top, and still no timeout.
	ft.buffered = 100
	c.Tick(t0 + 50*sec)
	if len(ft.out) != 0 || c.State() != StateStream || ft.closed != 0 {
		t.Fatalf("tick past HighWater: %q state %v", ft.out, c.State())
	}
	ft.buffered = 0
	c.Tick(t0 + 24*3600*sec)
	if string(ft.out) != ":\n" || c.State() != StateStream {
		t.Fatalf("a day later: %q state %v", ft.out, c.State())
	}
}

// A stream is under Config.Overflow like a WebSocket: a subscriber that
// does not read is closed (or its events dropped) at HighWater.
func TestStreamOverflow(t *testing.T) {
	for _, pol := range []Overflow{OverflowClose1008, OverflowDrop} {
		stats := &Stats{}
		rec := &recorder{}
		c, ft := openStream(t, &Config{HighWater: 1000, Overflow: pol, Stats: stats}, rec, "")
		ft.buffered = 999
		if err := c.Send(Text, []byte("fits")); err != nil {
			t.Fatal(err)
		}
		ft.buffered = 1000
		n := len(ft.out)
		err := c.SendPrepared(NewPrepared(Text, []byte("over")))
		switch pol {
		case OverflowDrop:
			if err != ErrDropped || len(ft.out) != n || stats.Dropped.Load() != 1 || c.State() != StateStream {
				t.Fatalf("drop: %v wrote %d dropped %d", err, len(ft.out)-n, stats.Dropped.Load())
			}
		default:
			if err != ErrClosed || len(ft.out) != n || ft.closed != 1 || stats.SlowClosed.Load() != 1 ||
				rec.code != StatusPolicy || rec.err != nil {
				t.Fatalf("close: %v wrote %d closed %d slow %d code %d", err, len(ft.out)-n, ft.closed, stats.SlowClosed.Load(), rec.code)
			}
		}
	}
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "data: \n\n"},
		{"a", "data: a\n\n"},
		{"a\n", "data: a\ndata: \n\n"},
		{"\n", "data: \ndata: \n\n"},
		{"a\r\nb", "data: a\ndata: b\n\n"},
		{"a\rb", "data: a\ndata: b\n\n"},
		{"a\r\r\nb", "data: a\ndata: \ndata: b\n\n"},
		{" lead: colon", "data:  lead: colon\n\n"},
		{"é✓", "data: é✓\n\n"},
	} {
		if got := string(appendEvent(nil, "", "", Text, []byte(tc.in))); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		// What a client's parser makes of it is the message, CRs aside.
		if got, want := parseEventData(string(appendEvent(nil, "", "", Text, []byte(tc.in)))), strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(tc.in); got != want {
			t.Errorf("%q parses back as %q, want %q", tc.in, got, want)
		}
	}
	if got := string(appendEvent(nil, "i\r\nd\x00", "", Text, []byte("x"))); got != "id: id\ndata: x\n\n" {
		t.Errorf("id with line breaks: %q", got)
	}
	bin := []byte{0xff, 0, 'a', '\n'}
	got := appendEvent(nil, "", "", Binary, bin)
	if want := "event: binary\ndata: " + base64.StdEncoding.EncodeToString(bin) + "\n\n"; string(got) != want {
		t.Errorf("binary: %q, want %q", got, want)
	}
}

// parseEventData is the WHATWG parser's data rule for one event.
func parseEventData(ev string) string {
	var data []string
	for _, l := range strings.Split(strings.TrimSuffix(ev, "\n\n"), "\n") {
		if v, ok := strings.CutPrefix(l, "data:"); ok {
			data = append(data, strings.TrimPrefix(v, " "))
		}
	}
	return strings.Join(data, "\n")
}

// The event encoding is made once and shared, whichever goroutine asks first.
func TestPreparedEventShared(t *testing.T) {
	m := NewPreparedID(Text, []byte("shared"), "7")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = m.Event() }()
	}
	wg.Wait()
	for _, g := range got {
		if &g[0] != &got[0][0] || string(g) != "id: 7\ndata: shared\n\n" {
			t.Fatalf("Event() %q not the one shared encoding", g)
		}
	}
	if string(m.Payload()) != "shared" || m.ID() != "7" || !bytes.HasSuffix(m.Frame(), []byte("shared")) {
		t.Fatalf("Prepared accessors: %q %q %q", m.Payload(), m.ID(), m.Frame())
	}
}

// Writing a prepared event to a stream allocates nothing.
func TestStreamSendPreparedAllocs(t *testing.T) {
	c, ft := openStream(t, &Config{}, &recorder{}, "")
	m := NewPreparedID(Text, []byte(`{"seq":1}`), "push-1")
	send := func(c *Conn) { _ = c.SendPrepared(m) }
	run := func(io *IO) { c.m().Run(io, send) }
	ft.call(t0, run)
	ft.out = ft.out[:0]
	allocs := testing.AllocsPerRun(100, func() {
		ft.call(t0, run)
		ft.out = ft.out[:0]
	})
	if allocs != 0 {
		t.Fatalf("SendPrepared on a stream: %v allocations", allocs)
	}
}

// A plain request's hook may ask the Config's origin rule.
func TestRequestOriginAllowed(t *testing.T) {
	for _, tc := range []struct {
		origin string
		allow  []string
		want   bool
	}{
		{"", nil, true},
		{"http://x", nil, true},
		{"http://evil.example", nil, false},
		{"http://evil.example", []string{"http://evil.example"}, true},
	} {
		var got bool
		cfg := &Config{AllowedOrigins: tc.allow, HTTP: func(c *Conn, r *Request) { got = r.OriginAllowed() }}
		hdr := ""
		if tc.origin != "" {
			hdr = "Origin: " + tc.origin + "\r\n"
		}
		serverResponse(t, cfg, "GET / HTTP/1.1\r\nHost: x\r\n"+hdr+"\r\n")
		if got != tc.want {
			t.Errorf("Origin %q allowed %v: %v, want %v", tc.origin, tc.allow, got, tc.want)
		}
	}
}
