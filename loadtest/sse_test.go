package loadtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// sseServer is a small SSE server: /events streams to every subscriber
// the messages published on the WebSocket endpoint /pub, as events with
// an id: and data:, and feeds every subscriber its own server-side
// readings ({"t":...,"seq":n}, every 10 ms) at /feed; comments (": ping")
// keep both streams alive. skipEvent, when set, is a /pub message number
// (from 1) that no subscriber gets.
type sseServer struct {
	mu        sync.Mutex
	subs      map[chan string]bool
	published int
	skipEvent int
	crlf      bool
}

func (s *sseServer) start(t *testing.T) (base string) {
	s.subs = map[chan string]bool{}
	mux := http.NewServeMux()
	nl := "\n"
	if s.crlf {
		nl = "\r\n"
	}
	stream := func(w http.ResponseWriter, r *http.Request, next func() (string, bool)) {
		if r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "want Accept: text/event-stream", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		fmt.Fprint(w, ": hello"+nl+nl)
		fl.Flush()
		for {
			ev, ok := next()
			if !ok {
				return
			}
			if _, err := fmt.Fprint(w, strings.ReplaceAll(ev, "\n", nl)); err != nil {
				return
			}
			fl.Flush()
		}
	}
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan string, 1024)
		s.mu.Lock()
		s.subs[ch] = true
		s.mu.Unlock()
		defer func() { s.mu.Lock(); delete(s.subs, ch); s.mu.Unlock() }()
		ping := time.NewTicker(20 * time.Millisecond)
		defer ping.Stop()
		stream(w, r, func() (string, bool) {
			select {
			case m := <-ch:
				return m, true
			case <-ping.C:
				return ": ping\n\n", true
			case <-r.Context().Done():
				return "", false
			}
		})
	})
	mux.HandleFunc("/feed", func(w http.ResponseWriter, r *http.Request) {
		seq, ticks := 0, 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		stream(w, r, func() (string, bool) {
			select {
			case <-tick.C:
				if ticks++; ticks%5 == 0 {
					return ": ping\n\n", true
				}
				seq++
				// Two data lines: joined with LF they are one JSON object.
				return fmt.Sprintf("id: %d\ndata: {\"seq\":%d,\ndata: \"t\":%d}\n\n", seq, seq, time.Now().UnixMilli()), true
			case <-r.Context().Done():
				return "", false
			}
		})
	})
	mux.HandleFunc("/pub", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			s.mu.Lock()
			n := 0
			if !probeRE.Match(msg) {
				s.published++
				n = s.published
			}
			if n == 0 || n != s.skipEvent {
				for ch := range s.subs {
					select {
					case ch <- fmt.Sprintf("id: %d\nevent: message\ndata: %s\n\n", n, msg):
					default:
					}
				}
			}
			s.mu.Unlock()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestSSEServerFeed(t *testing.T) {
	for _, crlf := range []bool{false, true} {
		addr := (&sseServer{crlf: crlf}).start(t)
		rep := mustPass(t, Config{Scenario: SSE, URL: "http://" + addr + "/feed", Publish: PublishServer, Conns: 20, Duration: time.Second})
		if rep.Opened != 20 || rep.Delivered < 20*20 || rep.Gaps != 0 || rep.Heartbeats < 20 || rep.Handshake.Count != 20 {
			t.Errorf("crlf %v: opened %d, delivered %d, gaps %d, heartbeats %d, handshakes %d",
				crlf, rep.Opened, rep.Delivered, rep.Gaps, rep.Heartbeats, rep.Handshake.Count)
		}
	}
}

// TestSSESelfPublished: WebSocket publishers, SSE subscribers on two
// "servers" (URLs) of one feed: every event once; a skipped one fails.
func TestSSESelfPublished(t *testing.T) {
	s := &sseServer{}
	addr := s.start(t)
	cfg := Config{Scenario: SSE, URL: "http://" + addr + "/events", PublishURL: "ws://" + addr + "/pub", Conns: 15, Messages: 40, Rate: 400}
	rep := mustPass(t, cfg)
	if rep.Delivered != 15*40 || rep.Expected != rep.Delivered {
		t.Errorf("delivered %d of %d", rep.Delivered, rep.Expected)
	}
	// Two URLs and two publishers: warm-up and per-publisher checks.
	cfg.URL = "http://" + addr + "/events,http://" + addr + "/events"
	cfg.Publishers = 2
	if rep := mustPass(t, cfg); rep.Delivered != 15*40*2 {
		t.Errorf("two publishers: delivered %d, want %d", rep.Delivered, 15*40*2)
	}

	bad := &sseServer{skipEvent: 7}
	baddr := bad.start(t)
	cfg = Config{Scenario: SSE, URL: "http://" + baddr + "/events", PublishURL: "ws://" + baddr + "/pub", Conns: 5, Messages: 20, Rate: 400, Drain: time.Second}
	if rep := mustFail(t, cfg); rep.Lost != 5 {
		t.Errorf("one event skipped for 5 subscribers: lost %d", rep.Lost)
	}
}

// TestSSERefused: a server that does not answer with an event stream is a
// failed handshake.
func TestSSERefused(t *testing.T) {
	addr := (&sseServer{}).start(t)
	rep := mustFail(t, Config{Scenario: SSE, URL: "http://" + addr + "/nothing", Publish: PublishServer, Conns: 3})
	if rep.Failed[causeHandshake.String()] != 3 {
		t.Errorf("failed %v", rep.Failed)
	}
}
