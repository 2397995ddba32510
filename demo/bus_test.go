package demo

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/session"
)

// serveOn starts the demo on b, as one process of several would.
func serveOn(t *testing.T, b bus.Bus, opts Options) (*Demo, string) {
	t.Helper()
	opts.Bus = b
	_, d, addr := serve(t, "epoll", opts, nil)
	return d, addr
}

// TestChatAcrossProcesses: a room spans two processes on a bus: joins,
// messages and leaves reach the members of the other process once each,
// another room hears nothing, and guests get distinct names.
func TestChatAcrossProcesses(t *testing.T) {
	m := bus.NewMemory(0)
	na, nb := m.Connect(), m.Connect()
	t.Cleanup(func() { na.Close(); nb.Close() })
	da, addrA := serveOn(t, na, Options{})
	db, addrB := serveOn(t, nb, Options{})

	alice := dial(t, addrA, "/ws/chat?room=r&nick=alice", nil)
	expect(t, alice, "* alice joined")
	bob := dial(t, addrB, "/ws/chat?room=r&nick=bob", nil)
	expect(t, bob, "* bob joined")
	expect(t, alice, "* bob joined") // from the other process
	other := dial(t, addrB, "/ws/chat?room=elsewhere&nick=carol", nil)
	expect(t, other, "* carol joined")

	for i, c := range []*websocket.Conn{alice, bob, alice} {
		if err := c.Write(ctx(t), websocket.MessageText, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Order is promised per publisher only: bob's m1 may come anywhere.
	for name, c := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		var got []string
		for range 3 {
			_, m := read(t, c)
			got = append(got, m)
		}
		var alices []string
		bobs := 0
		for _, m := range got {
			switch {
			case strings.HasPrefix(m, "alice: "):
				alices = append(alices, m)
			case m == "bob: m1":
				bobs++
			}
		}
		if len(alices) != 2 || alices[0] != "alice: m0" || alices[1] != "alice: m2" || bobs != 1 {
			t.Fatalf("%s read %q, want alice: m0 before alice: m2, and bob: m1 once", name, got)
		}
	}
	if da.Chat.Members("r") != 1 || db.Chat.Members("r") != 1 {
		t.Fatalf("members %d and %d, want one per process", da.Chat.Members("r"), db.Chat.Members("r"))
	}
	bob.Close(websocket.StatusNormalClosure, "")
	expect(t, alice, "* bob left")
	eventually(t, "room r gone from B", func() bool { return db.Chat.Members("r") == 0 })
	if err := other.Write(ctx(t), websocket.MessageText, []byte("only here")); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, other); got != "carol: only here" {
		t.Fatalf("carol read %q: the other room heard room r", got)
	}
	if s := da.Chat.Stats(); s.Received < 2 {
		t.Errorf("A's rooms received %d messages from B, want at least bob's join and m1", s.Received)
	}

	// Guests in two processes get different names.
	ga := dial(t, addrA, "/ws/chat?room=g", nil)
	_, ja := read(t, ga)
	gb := dial(t, addrB, "/ws/chat?room=g2", nil)
	_, jb := read(t, gb)
	if !strings.HasPrefix(ja, "* guest-") || ja == jb {
		t.Errorf("guest joins %q and %q", ja, jb)
	}
}

// TestPushAcrossProcesses: two processes on a bus make the same readings;
// every subscriber of either gets each seq once, in order, without gaps,
// and both see the same reading for a seq. A third process whose ticker
// never runs feeds its subscriber from the others.
func TestPushAcrossProcesses(t *testing.T) {
	m := bus.NewMemory(0)
	na, nb, nc := m.Connect(), m.Connect(), m.Connect()
	t.Cleanup(func() { na.Close(); nb.Close(); nc.Close() })
	const interval = 20 * time.Millisecond
	_, addrA := serveOn(t, na, Options{PushInterval: interval})
	_, addrB := serveOn(t, nb, Options{PushInterval: interval})
	dc, addrC := serveOn(t, nc, Options{PushInterval: interval})
	dc.Push.mu.Lock()
	dc.Push.noTicker = true
	dc.Push.mu.Unlock()
	ca := dial(t, addrA, "/ws/push", nil)
	cb := dial(t, addrB, "/ws/push", nil)
	cc := dial(t, addrC, "/ws/push", nil)
	type reading struct {
		T    time.Time
		Temp float64
		Seq  uint64
	}
	readings := func(c *websocket.Conn, n int) map[uint64]string {
		out := map[uint64]string{}
		var last uint64
		for i := 0; i < n; i++ {
			_, msg := read(t, c)
			var r reading
			if err := json.Unmarshal([]byte(msg), &r); err != nil {
				t.Fatalf("reading %q: %v", msg, err)
			}
			if last != 0 && r.Seq != last+1 {
				t.Fatalf("seq %d after %d (gap, duplicate or reorder)", r.Seq, last)
			}
			last = r.Seq
			out[r.Seq] = msg
		}
		return out
	}
	ra, rb := readings(ca, 10), readings(cb, 10)
	same := 0
	for seq, msg := range ra {
		if o, ok := rb[seq]; ok {
			same++
			if o != msg {
				t.Errorf("seq %d: %s on A, %s on B", seq, msg, o)
			}
		}
	}
	if same == 0 {
		t.Errorf("no seq in common: A %v, B %v", ra, rb)
	}
	readings(cc, 10)
}

// TestPushFillsSkippedReadings: a process that hears reading n and then
// n+3 from the bus (its own ticker silent) gives its subscribers n, n+1,
// n+2 and n+3, the middle ones made as any process would make them.
func TestPushFillsSkippedReadings(t *testing.T) {
	m := bus.NewMemory(0)
	src, nc := m.Connect(), m.Connect()
	t.Cleanup(func() { src.Close(); nc.Close() })
	dc, addr := serveOn(t, nc, Options{PushInterval: time.Hour})
	dc.Push.mu.Lock()
	dc.Push.noTicker = true
	dc.Push.mu.Unlock()
	c := dial(t, addr, "/ws/push", nil)
	_, first := read(t, c) // the current reading, sent on open
	var r struct{ Seq uint64 }
	if err := json.Unmarshal([]byte(first), &r); err != nil {
		t.Fatal(err)
	}
	n := r.Seq + 1
	for _, seq := range []uint64{n, n + 3, n + 2} { // n+2 comes late: already made up for
		if err := src.Publish(PushTopic, session.Text, dc.Push.readingAt(seq)); err != nil {
			t.Fatal(err)
		}
	}
	for want := n; want <= n+3; want++ {
		_, msg := read(t, c)
		if msg != string(dc.Push.readingAt(want)) {
			t.Fatalf("read %s, want reading %d: %s", msg, want, dc.Push.readingAt(want))
		}
	}
	if err := src.Publish(PushTopic, session.Text, dc.Push.readingAt(n+4)); err != nil {
		t.Fatal(err)
	}
	if _, msg := read(t, c); msg != string(dc.Push.readingAt(n+4)) {
		t.Fatalf("read %s after the late n+2, want reading %d", msg, n+4)
	}
}
