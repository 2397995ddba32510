package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/internal/ssetest"
)

// pushSeq reads the seq of a reading, failing the test on anything else.
func pushSeq(t *testing.T, data string) uint64 {
	t.Helper()
	var r struct {
		Seq  uint64
		Temp *float64
	}
	if err := json.Unmarshal([]byte(data), &r); err != nil || r.Temp == nil {
		t.Fatalf("not a reading: %q (%v)", data, err)
	}
	return r.Seq
}

// pushEvents reads n readings of a push stream: each must carry its seq as
// its id ("push-<seq>") and follow the one before (+1).
func pushEvents(t *testing.T, s *ssetest.Client, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for len(seqs) < n {
		ev := s.Event()
		seq := pushSeq(t, ev.Data)
		if ev.ID != "push-"+strconv.FormatUint(seq, 10) || ev.Name != "" {
			t.Fatalf("reading %d came with id %q, event %q", seq, ev.ID, ev.Name)
		}
		if k := len(seqs); k > 0 && seq != seqs[k-1]+1 {
			t.Fatalf("seq %d after %d (gap, duplicate or reorder)", seq, seqs[k-1])
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// TestSSEPush: on every engine, a WebSocket and an event stream of the push
// feed get the same readings (each seq once, in order; the stream's ids
// are "push-<seq>"); a stream that reconnects with Last-Event-ID gets what
// it missed; one whose id is past the history gets a "gap" event and the
// latest reading, then the feed.
func TestSSEPush(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, d, addr := serve(t, engine, Options{PushInterval: 20 * time.Millisecond}, nil)
			ws := dial(t, addr, "/ws/push", nil)
			s := ssetest.Dial(t, addr, "/sse/push")
			wsSeq := map[uint64]string{}
			var last uint64
			for len(wsSeq) < 8 {
				_, msg := read(t, ws)
				seq := pushSeq(t, msg)
				if last != 0 && seq != last+1 {
					t.Fatalf("ws: seq %d after %d", seq, last)
				}
				wsSeq[seq], last = msg, seq
			}
			seqs := pushEvents(t, s, 8)
			same := 0
			for _, q := range seqs {
				if _, ok := wsSeq[q]; ok {
					same++
				}
			}
			if same < 4 {
				t.Fatalf("the stream's readings %v and the WebSocket's %v share %d", seqs, wsSeq, same)
			}
			if n := d.Push.Subscribers(); n != 2 {
				t.Fatalf("%d subscribers, want 2", n)
			}

			// Away for a while, then back: the missed readings first.
			s.Close()
			time.Sleep(100 * time.Millisecond)
			back := ssetest.Dial(t, addr, "/sse/push", "Last-Event-ID: push-"+strconv.FormatUint(seqs[7], 10))
			if got := pushEvents(t, back, 10); got[0] != seqs[7]+1 {
				t.Fatalf("resumed after %d at %d", seqs[7], got[0])
			}
			back.Close()

			// Too long ago (and an id no process makes): a gap, the latest
			// reading, the feed.
			for _, id := range []string{"push-" + strconv.FormatUint(seqs[0]-PushHistory, 10), "chat-1"} {
				gap := ssetest.Dial(t, addr, "/sse/push", "Last-Event-ID: "+id)
				if ev := gap.Event(); ev.Name != "gap" || ev.Data != id {
					t.Fatalf("Last-Event-ID %s: first event %+v, want a gap", id, ev)
				}
				pushEvents(t, gap, 3)
				gap.Close()
			}
			// Routes answer what they do not serve.
			for _, tc := range []struct{ method, path, hdr string }{
				{"POST", "/sse/push", ""},
				{"GET", "/sse/push", "Origin: http://evil.example"},
				{"GET", "/sse/chat/send", ""},
			} {
				status, _ := plain(t, addr, tc.method, tc.path, tc.hdr, "")
				want := http.StatusMethodNotAllowed
				if tc.hdr != "" {
					want = http.StatusForbidden
				}
				if status != want {
					t.Errorf("%s %s %s: %d, want %d", tc.method, tc.path, tc.hdr, status, want)
				}
			}
		})
	}
}

// plain makes one HTTP/1.1 request and returns the status and body.
func plain(t *testing.T, addr, method, path, hdr, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if k, v, ok := strings.Cut(hdr, ": "); ok {
		req.Header.Set(k, v)
	}
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hello reads a chat stream's first event.
func helloOf(t *testing.T, s *ssetest.Client) hello {
	t.Helper()
	ev := s.Event()
	var h hello
	if err := json.Unmarshal([]byte(ev.Data), &h); ev.Name != "hello" || err != nil || h.ID == "" {
		t.Fatalf("first chat event %+v, want a hello", ev)
	}
	return h
}

// post says text as the stream whose hello carried id.
func post(t *testing.T, addr, id, text string) (int, string) {
	t.Helper()
	return plain(t, addr, "POST", "/sse/chat/send?id="+id, "Content-Type: text/plain;charset=UTF-8", text)
}

// expectSSE reads events until want, skipping announcements ("* ...").
func expectSSE(t *testing.T, s *ssetest.Client, want string) ssetest.Event {
	t.Helper()
	for i := 0; i < 20; i++ {
		ev := s.Event()
		if ev.Data == want {
			return ev
		}
		if !strings.HasPrefix(ev.Data, "* ") {
			t.Fatalf("read %+v, want %q", ev, want)
		}
	}
	t.Fatalf("no %q in 20 events", want)
	return ssetest.Event{}
}

// TestSSEChat: on every engine, a WebSocket member and a stream member of
// one room hear each other: the stream gets its id first, says things with
// POST, and leaves when its client goes; the POST route refuses what it
// must.
func TestSSEChat(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			_, d, addr := serve(t, engine, Options{}, nil)
			alice := dial(t, addr, "/ws/chat?room=r&nick=alice", nil)
			expect(t, alice, "* alice joined")
			bob := ssetest.Dial(t, addr, "/sse/chat?room=r&nick=bob")
			h := helloOf(t, bob)
			if h.Nick != "bob" || h.Room != "r" || !strings.HasPrefix(h.ID, d.Chat.tag+".") {
				t.Fatalf("hello %+v", h)
			}
			expectSSE(t, bob, "* bob joined")
			expect(t, alice, "* bob joined")
			if n := d.Chat.Members("r"); n != 2 {
				t.Fatalf("%d members, want 2", n)
			}

			if err := alice.Write(ctx(t), websocket.MessageText, []byte("hi bob\nhow are you")); err != nil {
				t.Fatal(err)
			}
			expectSSE(t, bob, "alice: hi bob\nhow are you")
			expect(t, alice, "alice: hi bob\nhow are you")
			if status, body := post(t, addr, h.ID, "hi alice ✓"); status != http.StatusNoContent || body != "" {
				t.Fatalf("POST: %d %q", status, body)
			}
			expect(t, alice, "bob: hi alice ✓")
			expectSSE(t, bob, "bob: hi alice ✓")

			for _, tc := range []struct {
				id, body string
				want     int
			}{
				{"nope", "x", http.StatusNotFound},
				{d.Chat.tag + ".00", "x", http.StatusNotFound},
				{h.ID, strings.Repeat("x", MaxChatMessage+1), http.StatusRequestEntityTooLarge},
				{h.ID, "\xff\xfe", http.StatusBadRequest},
			} {
				if status, _ := post(t, addr, tc.id, tc.body); status != tc.want {
					t.Errorf("POST id %.20q body %.10q: %d, want %d", tc.id, tc.body, status, tc.want)
				}
			}
			if status, _ := plain(t, addr, "POST", "/sse/chat/send?id="+h.ID, "Origin: http://evil.example", "x"); status != http.StatusForbidden {
				t.Errorf("POST from another site: %d, want 403", status)
			}
			if status, _ := plain(t, addr, "GET", "/sse/chat?room=bad%20room", "", ""); status != http.StatusBadRequest {
				t.Errorf("GET /sse/chat with a bad room: %d, want 400", status)
			}

			bob.Close()
			expect(t, alice, "* bob left")
			if status, _ := post(t, addr, h.ID, "ghost"); status != http.StatusNotFound {
				t.Errorf("POST for a closed stream: %d, want 404", status)
			}
		})
	}
}

// TestSSEChatResume: a stream member that drops and reconnects with
// Last-Event-ID, while the room lives on, hears what was said meanwhile
// (its own departure included) once, in order, and then its new join.
func TestSSEChatResume(t *testing.T) {
	_, _, addr := serve(t, "epoll", Options{}, nil)
	alice := dial(t, addr, "/ws/chat?room=r&nick=alice", nil)
	expect(t, alice, "* alice joined")
	bob := ssetest.Dial(t, addr, "/sse/chat?room=r&nick=bob")
	helloOf(t, bob)
	last := bob.Until("* bob joined").ID
	bob.Close()
	expect(t, alice, "* bob left")
	for i := range 3 {
		if err := alice.Write(ctx(t), websocket.MessageText, fmt.Appendf(nil, "while away %d", i)); err != nil {
			t.Fatal(err)
		}
		expect(t, alice, fmt.Sprintf("alice: while away %d", i))
	}
	back := ssetest.Dial(t, addr, "/sse/chat?room=r&nick=bob", "Last-Event-ID: "+last)
	helloOf(t, back)
	var got []string
	for len(got) < 5 {
		got = append(got, back.Event().Data)
	}
	want := "* bob left|alice: while away 0|alice: while away 1|alice: while away 2|* bob joined"
	if strings.Join(got, "|") != want {
		t.Fatalf("resumed with %v, want %s", got, want)
	}
	// An id of another room instance: a gap, then the live room.
	other := ssetest.Dial(t, addr, "/sse/chat?room=r&nick=carol", "Last-Event-ID: 12345678-3")
	helloOf(t, other)
	if ev := other.Event(); ev.Name != "gap" || ev.Data != "12345678-3" {
		t.Fatalf("foreign id: %+v, want a gap", ev)
	}
	expectSSE(t, other, "* carol joined")
}

// TestSSEChatAcrossProcesses: a stream's POST may reach another process
// (as -procs workers and nodes behind nginx spread connections): it is
// passed on over the bus to the stream's process, which says it in the
// room as that member; everyone in both processes hears it once.
func TestSSEChatAcrossProcesses(t *testing.T) {
	m := bus.NewMemory(0)
	na, nb := m.Connect(), m.Connect()
	t.Cleanup(func() { na.Close(); nb.Close() })
	da, addrA := serveOn(t, na, Options{})
	db, addrB := serveOn(t, nb, Options{})
	alice := dial(t, addrA, "/ws/chat?room=x&nick=alice", nil)
	expect(t, alice, "* alice joined")
	bob := ssetest.Dial(t, addrB, "/sse/chat?room=x&nick=bob")
	h := helloOf(t, bob)
	expectSSE(t, bob, "* bob joined")
	expect(t, alice, "* bob joined")
	if !strings.HasPrefix(h.ID, db.Chat.tag+".") || da.Chat.tag == db.Chat.tag {
		t.Fatalf("stream id %q, process tags %s and %s", h.ID, da.Chat.tag, db.Chat.tag)
	}
	if status, _ := post(t, addrA, h.ID, "via A"); status != http.StatusAccepted {
		t.Fatalf("POST to the other process: %d, want 202", status)
	}
	expect(t, alice, "bob: via A")
	expectSSE(t, bob, "bob: via A")
	if status, _ := post(t, addrB, h.ID, "via B"); status != http.StatusNoContent {
		t.Fatalf("POST to the stream's process: %d, want 204", status)
	}
	expect(t, alice, "bob: via B")
	expectSSE(t, bob, "bob: via B")
	// A stream B no longer has: A passes it on, B drops it and counts it.
	if status, _ := post(t, addrA, db.Chat.tag+".0000", "lost"); status != http.StatusAccepted {
		t.Fatalf("POST for an unknown stream of B, to A: %d, want 202", status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.Chat.lostPosts.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("B did not count the POST for a stream it does not have")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
