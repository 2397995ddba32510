package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/internal/natstest"
	"github.com/wsloop/wsloop/internal/ssetest"
)

// joinSSE makes an event-stream member of a chat room on addr that says
// things with POST /sse/chat/send to postAddr (another process, or its own).
func joinSSE(t *testing.T, addr, postAddr, room, nick string) *member {
	t.Helper()
	s := ssetest.Dial(t, addr, "/sse/chat?room="+room+"&nick="+nick)
	ev := s.Event()
	var hello struct{ ID string }
	if err := json.Unmarshal([]byte(ev.Data), &hello); ev.Name != "hello" || err != nil {
		t.Fatalf("%s: first event %+v", nick, ev)
	}
	cl := http.Client{Timeout: procTimeout}
	m := &member{name: nick, in: make(chan string, 4096), dead: make(chan struct{})}
	m.post = func(t *testing.T, text string) {
		resp, err := cl.Post("http://"+postAddr+"/sse/chat/send?id="+hello.ID, "text/plain; charset=utf-8", strings.NewReader(text))
		if err != nil {
			t.Errorf("%s posts %q: %v", nick, text, err)
			return
		}
		resp.Body.Close()
		if want := map[bool]int{true: 204, false: 202}[postAddr == addr]; resp.StatusCode != want {
			t.Errorf("%s posts %q to %s: %s, want %d", nick, text, postAddr, resp.Status, want)
		}
	}
	go func() {
		defer close(m.dead)
		for {
			ev, err := s.Read()
			if err != nil {
				return
			}
			if !ev.Comment && ev.Name == "" && !strings.HasPrefix(ev.Data, "* ") { // joins and leaves
				m.in <- ev.Data
			}
		}
	}()
	return m
}

// TestSSEAcrossProcesses: three wsloop processes on one NATS server, one
// chat room with WebSocket members on A and C and event-stream members on
// A, B and C; the stream members say things with POST, B's to process C
// (which passes them on over the bus to B). Every message of every sender
// reaches every member exactly once, each sender's in order. Then the push
// feed: a stream of A's readings that reconnects to B with its
// Last-Event-ID gets the readings it missed from B (their ids are the same
// in every process) and goes on without a gap.
func TestSSEAcrossProcesses(t *testing.T) {
	ns := natstest.Embedded(t)
	args := []string{"-addr", "127.0.0.1:0", "-loops", "1", "-nats", ns.URL()}
	var procs []*proc
	for range 3 {
		procs = append(procs, startProc(t, "wsloop serving", args...))
	}
	a, b, c := procs[0].addr, procs[1].addr, procs[2].addr
	wsA, wsC := join(t, a, "s", "wsA"), join(t, c, "s", "wsC")
	sseA, sseB, sseC := joinSSE(t, a, a, "s", "sseA"), joinSSE(t, b, c, "s", "sseB"), joinSSE(t, c, c, "s", "sseC")
	all := []*member{wsA, wsC, sseA, sseB, sseC}
	senders := []*member{wsA, sseB, sseC}
	connected(t, senders, all)
	exchange(t, "mixed", senders, all, 10)

	// Push: B's feed runs (a subscriber there), a stream of A's leaves and
	// comes back to B.
	seqOf := func(ev ssetest.Event) uint64 {
		var r struct{ Seq uint64 }
		if err := json.Unmarshal([]byte(ev.Data), &r); err != nil || ev.ID != "push-"+strconv.FormatUint(r.Seq, 10) {
			t.Fatalf("push event %+v", ev)
		}
		return r.Seq
	}
	onB := ssetest.Dial(t, b, "/sse/push")
	seqOf(onB.Event())
	s := ssetest.Dial(t, a, "/sse/push")
	var last uint64
	var lastID string
	for range 2 {
		ev := s.Event()
		if n := seqOf(ev); last != 0 && n != last+1 {
			t.Fatalf("A's stream: %d after %d", n, last)
		}
		last, lastID = seqOf(ev), ev.ID
	}
	s.Close()
	time.Sleep(2500 * time.Millisecond) // two or three readings missed
	back := ssetest.Dial(t, b, "/sse/push", "Last-Event-ID: "+lastID)
	for range 4 {
		ev := back.Event()
		if ev.Name == "gap" {
			t.Fatalf("B could not resume A's stream from %s", lastID)
		}
		if n := seqOf(ev); n != last+1 {
			t.Fatalf("resumed on B after %d: got %d (lost, duplicated or reordered)", last, n)
		}
		last++
	}
	t.Logf("push stream moved from A to B at %s, went on to %d", lastID, last)
	for _, p := range procs {
		p.stop()
	}
}
