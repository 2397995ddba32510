package loop

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsloop/wsloop/session"
)

// fakeExecutor records the tasks a Room posts; it never runs them.
type fakeExecutor struct {
	mu    sync.Mutex
	calls [][]uint64
}

func (x *fakeExecutor) Execute(id uint64, fn func(c *session.Conn), missed func(), cost int) error {
	return x.ExecuteAll([]uint64{id}, fn, cost)
}

func (x *fakeExecutor) ExecuteAll(ids []uint64, fn func(c *session.Conn), cost int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.calls = append(x.calls, ids) // kept as given: the Room must not change it later
	return nil
}

func (x *fakeExecutor) last() []uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.calls) == 0 {
		return nil
	}
	return x.calls[len(x.calls)-1]
}

func sorted(ids []uint64) []uint64 {
	s := append([]uint64(nil), ids...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func equalIDs(a, b []uint64) bool {
	a, b = sorted(a), sorted(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRoomGroupsByExecutor(t *testing.T) {
	a, b := &fakeExecutor{}, &fakeExecutor{}
	r := NewRoom()
	for _, id := range []uint64{1, 2, 3} {
		r.Join(session.NewHandle(a, id))
	}
	r.Join(session.NewHandle(b, 1)) // same id, other executor: another member
	r.Join(session.NewHandle(b, 9))
	r.Join(session.NewHandle(a, 2)) // twice: once
	r.Join(session.Handle{})        // zero: ignored
	if r.Len() != 5 {
		t.Fatalf("Len = %d, want 5", r.Len())
	}
	r.Publish(session.Text, []byte("hi"))
	if len(a.calls) != 1 || len(b.calls) != 1 {
		t.Fatalf("ExecuteAll calls: a %d, b %d; want one each", len(a.calls), len(b.calls))
	}
	if !equalIDs(a.last(), []uint64{1, 2, 3}) || !equalIDs(b.last(), []uint64{1, 9}) {
		t.Fatalf("ids: a %v, b %v", a.last(), b.last())
	}

	// Changes after a Publish must not touch the list handed to it.
	handed := a.last()
	snapshot := append([]uint64(nil), handed...)
	r.Leave(session.NewHandle(a, 1))
	r.Join(session.NewHandle(a, 4))
	r.Leave(session.NewHandle(a, 77)) // unknown: ignored
	r.Leave(session.NewHandle(&fakeExecutor{}, 1))
	for i := range snapshot {
		if handed[i] != snapshot[i] {
			t.Fatalf("a published id list changed under its task: %v, was %v", handed, snapshot)
		}
	}
	if r.Len() != 5 {
		t.Fatalf("Len = %d, want 5", r.Len())
	}
	r.Publish(session.Binary, []byte{1})
	if !equalIDs(a.last(), []uint64{2, 3, 4}) {
		t.Fatalf("after leave/join: %v", a.last())
	}
	r.Leave(session.NewHandle(b, 1))
	r.Leave(session.NewHandle(b, 9))
	r.Publish(session.Text, nil)
	if len(b.calls) != 2 {
		t.Fatalf("an empty group was published to: %d calls", len(b.calls))
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
}

func TestRoomConcurrentUse(t *testing.T) {
	x := &fakeExecutor{}
	r := NewRoom()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				h := session.NewHandle(x, uint64(g*1000+i))
				r.Join(h)
				if i%3 == 0 {
					r.Publish(session.Text, []byte("x"))
				}
				if i%2 == 0 {
					r.Leave(h)
				}
			}
		}(g)
	}
	wg.Wait()
	if r.Len() != 4*250 {
		t.Fatalf("Len = %d, want %d", r.Len(), 4*250)
	}
	r.Publish(session.Text, []byte("final"))
	if got := len(x.last()); got != 1000 {
		t.Fatalf("final publish to %d ids, want 1000", got)
	}
}

// TestRoomPublishAndLeave runs a room on real engines: every member gets a
// publish once; a member that left gets nothing more.
func TestRoomPublishAndLeave(t *testing.T) {
	for _, engine := range myEngines {
		t.Run(engine, func(t *testing.T) {
			room := NewRoom()
			h := session.HandlerFuncs{
				Open: func(c *session.Conn) { room.Join(c.Handle()) },
				Message: func(c *session.Conn, op session.Opcode, p []byte) {
					if string(p) == "leave" {
						room.Leave(c.Handle())
						_ = c.Send(session.Text, []byte("left"))
					}
				},
				Close: func(c *session.Conn, _ session.StatusCode, _ string, _ error) { room.Leave(c.Handle()) },
			}
			s := startServer(t, engine, h, Options{})
			const N = 6
			cs := make([]*websocket.Conn, N)
			for i := range cs {
				cs[i] = dial(t, wsURL(s, "/"), nil)
			}
			waitUntil(t, "all members", func() bool { return room.Len() == N })
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			room.Publish(session.Text, []byte("one"))
			for i, c := range cs {
				if _, p, err := c.Read(ctx); err != nil || string(p) != "one" {
					t.Fatalf("client %d: %q, %v", i, p, err)
				}
			}
			if err := cs[0].Write(ctx, websocket.MessageText, []byte("leave")); err != nil {
				t.Fatal(err)
			}
			if _, p, err := cs[0].Read(ctx); err != nil || string(p) != "left" {
				t.Fatalf("leave reply: %q, %v", p, err)
			}
			if room.Len() != N-1 {
				t.Fatalf("Len after leave = %d", room.Len())
			}
			room.Publish(session.Text, []byte("two"))
			for i, c := range cs[1:] {
				if _, p, err := c.Read(ctx); err != nil || string(p) != "two" {
					t.Fatalf("client %d: %q, %v", i+1, p, err)
				}
			}
			short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel2()
			if _, p, err := cs[0].Read(short); err == nil {
				t.Fatalf("a client that left got %q", p)
			}
			// A client that goes away leaves through OnClose.
			cs[1].CloseNow()
			waitUntil(t, "the room to shrink", func() bool { return room.Len() == N-2 })
		})
	}
}

// Event ids: "<epoch>-<n>", n counting from 1 or the publisher's own
// (PublishID, which refuses numbers not above the latest); a given Epoch
// is used as it is, and rooms without one get distinct random ones.
func TestRoomEventIDs(t *testing.T) {
	x := &fakeExecutor{}
	r := NewRoomWith(RoomOptions{History: 4, Epoch: "push"})
	r.Join(session.NewHandle(x, 1))
	if err := r.PublishID(41, session.Text, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(session.Text, []byte("b")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{42, 7} {
		if err := r.PublishID(n, session.Text, []byte("stale")); err != ErrStaleID {
			t.Fatalf("PublishID(%d) after 42: %v, want ErrStaleID", n, err)
		}
	}
	var ids []string
	for _, e := range r.hist.kept() {
		ids = append(ids, e.m.ID())
	}
	if strings.Join(ids, ",") != "push-41,push-42" || len(x.calls) != 2 {
		t.Fatalf("kept %v, %d posts", ids, len(x.calls))
	}
	if r.hist.base != 40 {
		t.Fatalf("base %d, want 40: the message before the first is not kept", r.hist.base)
	}
	for _, tc := range []struct {
		id string
		n  uint64
		ok bool
	}{{"push-42", 42, true}, {"push-", 0, false}, {"pus-42", 0, false}, {"push-x", 0, false}, {"42", 0, false}, {"", 0, false}} {
		if n, ok := r.parseID(tc.id); n != tc.n || ok != tc.ok {
			t.Errorf("parseID(%q) = %d, %v", tc.id, n, ok)
		}
	}
	a, b := NewRoom(), NewRoom()
	if a.epoch == b.epoch || len(a.epoch) != 8 {
		t.Fatalf("default epochs %q, %q", a.epoch, b.epoch)
	}
	// No history: nothing kept, the base follows the latest.
	a.Publish(session.Text, []byte("x"))
	if len(a.hist.kept()) != 0 || a.hist.base != 1 {
		t.Fatalf("no history: kept %d, base %d", len(a.hist.kept()), a.hist.base)
	}
}

// The history's memory stays within twice its bound as it turns over.
func TestRoomHistoryCompacts(t *testing.T) {
	r := NewRoomWith(RoomOptions{History: 8})
	for k := 0; k < 1000; k++ {
		r.Publish(session.Text, []byte("m"))
		if n := len(r.hist.kept()); n > 8 || cap(r.hist.ents) > 64 {
			t.Fatalf("after %d: %d kept, %d entries of capacity", k, n, cap(r.hist.ents))
		}
	}
	if r.hist.bytes != 8 || r.hist.base != 992 {
		t.Fatalf("bytes %d base %d", r.hist.bytes, r.hist.base)
	}
}

// A publish allocates the message, its frame and its id, whatever the
// members (tasks are the executors').
func TestRoomPublishAllocs(t *testing.T) {
	x := &fakeExecutor{}
	r := NewRoomWith(RoomOptions{History: 4})
	for id := uint64(1); id <= 100; id++ {
		r.Join(session.NewHandle(x, id))
	}
	msg := []byte("a reading of about sixty bytes, like the push feed's ones")
	allocs := testing.AllocsPerRun(200, func() {
		_ = r.Publish(session.Text, msg)
		x.calls = x.calls[:0]
	})
	// The Prepared, its frame, the id, the send closure.
	if allocs > 4 {
		t.Fatalf("Publish: %v allocations, want at most 4", allocs)
	}
	t.Logf("Publish: %v allocations", allocs)
}
