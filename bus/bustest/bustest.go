// Package bustest is the conformance suite every bus.Bus implementation
// passes: the delivery promises of package bus (at most once, in order per
// publisher, nothing echoed to the publisher, nothing after cancel), and
// Rooms and Broadcast across processes with real servers and clients.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Factory returns n buses on one transport, each standing for one process.
// It closes them in t.Cleanup (closing one twice must be harmless).
type Factory func(t *testing.T, n int) []bus.Bus

// Syncer is implemented by buses whose subscriptions take effect
// asynchronously: Sync returns when every subscription change made before
// it is in force at the transport.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Statser is implemented by buses with counters.
type Statser interface {
	Stats() bus.Stats
}

// Timeout bounds every wait of the suite.
const Timeout = 15 * time.Second

// Run runs the suite on buses from f.
func Run(t *testing.T, f Factory) {
	t.Run("NoEcho", func(t *testing.T) { testNoEcho(t, f) })
	t.Run("OrderPerPublisher", func(t *testing.T) { testOrder(t, f) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, f) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, f) })
	t.Run("RoomsAcrossProcesses", func(t *testing.T) { testRooms(t, f) })
	t.Run("RoomSubscriptionFollowsMembers", func(t *testing.T) { testRoomSubscription(t, f) })
	t.Run("BroadcastAcrossProcesses", func(t *testing.T) { testBroadcast(t, f) })
}

// Sync waits until b's subscriptions are in force, when b needs that.
func Sync(t testing.TB, buses ...bus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for _, b := range buses {
		if s, ok := b.(Syncer); ok {
			if err := s.Sync(ctx); err != nil {
				t.Fatalf("sync: %v", err)
			}
		}
	}
}

// collector gathers what a handler receives.
type collector struct {
	mu   sync.Mutex
	msgs []string
	ops  []session.Opcode
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) handle(op session.Opcode, p []byte) {
	c.mu.Lock()
	c.msgs = append(c.msgs, string(p))
	c.ops = append(c.ops, op)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// waitN waits until c has n messages.
func (c *collector) waitN(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		if got := c.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("received %d messages, want %d", len(c.snapshot()), n)
		}
	}
}

func testNoEcho(t *testing.T, f Factory) {
	bs := f(t, 2)
	own, other := newCollector(), newCollector()
	for i, c := range []*collector{own, other} {
		if _, err := bs[i].Subscribe("t.echo", c.handle); err != nil {
			t.Fatal(err)
		}
	}
	Sync(t, bs...)
	if err := bs[0].Publish("t.echo", session.Binary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := bs[1].Publish("t.echo", session.Text, []byte("from 1")); err != nil {
		t.Fatal(err)
	}
	if got := other.waitN(t, 1); got[0] != "\x00\x01\x02" || other.ops[0] != session.Binary {
		t.Errorf("bus 1 got %q op %v, want bus 0's binary message", got, other.ops[0])
	}
	if got := own.waitN(t, 1); got[0] != "from 1" || own.ops[0] != session.Text {
		t.Errorf("bus 0 got %q op %v, want bus 1's text message", got, own.ops[0])
	}
	// A marker published after the messages: once it is in, anything echoed
	// would be too.
	if err := bs[1].Publish("t.echo", session.Text, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	own.waitN(t, 2)
	if got := other.snapshot(); len(got) != 1 {
		t.Errorf("bus 1 received %q: its own messages came back", got)
	}
	if got := own.snapshot(); len(got) != 2 || got[1] != "marker" {
		t.Errorf("bus 0 received %q, want [from 1, marker]", got)
	}
}

func testOrder(t *testing.T, f Factory) {
	const n = 500
	bs := f(t, 3)
	subs := []*collector{newCollector(), newCollector()}
	for i, c := range subs {
		if _, err := bs[i+1].Subscribe("t.order", c.handle); err != nil {
			t.Fatal(err)
		}
	}
	Sync(t, bs...)
	for i := range n {
		if err := bs[0].Publish("t.order", session.Text, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for k, c := range subs {
		got := c.waitN(t, n)
		for i, m := range got {
			if m != strconv.Itoa(i) {
				t.Fatalf("subscriber %d: message %d is %q (lost, duplicated or reordered)", k, i, m)
			}
		}
	}
}

func testCancel(t *testing.T, f Factory) {
	bs := f(t, 2)
	a, b := newCollector(), newCollector()
	cancelA, err := bs[1].Subscribe("t.cancel", a.handle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs[1].Subscribe("t.cancel", b.handle); err != nil {
		t.Fatal(err)
	}
	Sync(t, bs...)
	if err := bs[0].Publish("t.cancel", session.Text, []byte("1")); err != nil {
		t.Fatal(err)
	}
	a.waitN(t, 1)
	b.waitN(t, 1)
	cancelA()
	cancelA() // idempotent
	if err := bs[0].Publish("t.cancel", session.Text, []byte("2")); err != nil {
		t.Fatal(err)
	}
	b.waitN(t, 2)
	if got := a.snapshot(); len(got) != 1 {
		t.Errorf("cancelled handler received %q", got)
	}
}

func testErrors(t *testing.T, f Factory) {
	bs := f(t, 1)
	if err := bs[0].Publish("", session.Text, nil); !errors.Is(err, bus.ErrBadTopic) {
		t.Errorf("empty topic: %v, want ErrBadTopic", err)
	}
	if _, err := bs[0].Subscribe(strings.Repeat("x", bus.MaxTopic+1), func(session.Opcode, []byte) {}); !errors.Is(err, bus.ErrBadTopic) {
		t.Errorf("long topic: %v, want ErrBadTopic", err)
	}
	// Any bytes are a valid topic; the transport encodes them.
	odd := "a b.*>\x00é"
	if _, err := bs[0].Subscribe(odd, func(session.Opcode, []byte) {}); err != nil {
		t.Errorf("topic %q: %v", odd, err)
	}
	if err := bs[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := bs[0].Publish("t", session.Text, nil); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("publish after Close: %v, want ErrClosed", err)
	}
	if _, err := bs[0].Subscribe("t", func(session.Opcode, []byte) {}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("subscribe after Close: %v, want ErrClosed", err)
	}
}

// node is one "process": a server whose connections join Rooms on a bus.
type node struct {
	srv   *loop.Server
	rooms *bus.Rooms
	addr  string
}

// startNode serves room chat on b: a connection to /ROOM joins ROOM, and
// every message it sends is published there.
func startNode(t *testing.T, b bus.Bus) *node {
	t.Helper()
	n := &node{rooms: bus.NewRooms(b, "test.room.")}
	h := session.HandlerFuncs{
		Open: func(c *session.Conn) { _, _ = n.rooms.Join(c.Value().(string), c.Handle()) },
		Message: func(c *session.Conn, op session.Opcode, p []byte) {
			_ = n.rooms.Publish(c.Value().(string), op, p)
		},
		Close: func(c *session.Conn, _ session.StatusCode, _ string, _ error) {
			if r, ok := c.Value().(string); ok {
				n.rooms.Leave(r, c.Handle())
			}
		},
	}
	upgrade := func(r *session.Request) (session.Accept, error) {
		return session.Accept{Value: strings.TrimPrefix(r.Path(), "/")}, nil
	}
	srv, err := loop.NewServer(h, loop.Options{Loops: 2, Session: session.Config{Upgrade: upgrade},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	n.srv, n.addr = srv, srv.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return n
}

func dial(t *testing.T, addr, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s%s: %v", addr, path, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testRooms: three processes, two members of one room each (and one member
// of another room); every member sends perMember messages, and every member
// of the room receives every one exactly once, each sender's in order, and
// nothing from the other room.
func testRooms(t *testing.T, f Factory) {
	const procs, perProc, perMember = 3, 2, 20
	bs := f(t, procs)
	nodes := make([]*node, procs)
	var members []*websocket.Conn
	for i := range nodes {
		nodes[i] = startNode(t, bs[i])
		for range perProc {
			members = append(members, dial(t, nodes[i].addr, "/lobby"))
		}
		dial(t, nodes[i].addr, "/other") // must hear nothing of lobby
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d members", i), func() bool {
			return n.rooms.Members("lobby") == perProc && n.rooms.Members("other") == 1
		})
	}
	Sync(t, bs...)
	other := dial(t, nodes[0].addr, "/other")
	waitFor(t, "second member of other", func() bool { return nodes[0].rooms.Members("other") == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 3*Timeout)
	defer cancel()
	total := len(members) * perMember
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(members))
	for i, c := range members {
		wg.Go(func() {
			for k := range perMember {
				if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "%d:%d", i, k)); err != nil {
					errs <- fmt.Errorf("member %d: write %d: %w", i, k, err)
					return
				}
			}
		})
		wg.Go(func() {
			next := make([]int, len(members))
			for got := 0; got < total; got++ {
				typ, p, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("member %d: read after %d of %d messages: %w", i, got, total, err)
					return
				}
				var from, k int
				if _, err := fmt.Sscanf(string(p), "%d:%d", &from, &k); err != nil || typ != websocket.MessageText || from >= len(members) {
					errs <- fmt.Errorf("member %d: unexpected message %v %q", i, typ, p)
					return
				}
				if k != next[from] {
					errs <- fmt.Errorf("member %d: from %d got message %d, want %d (lost, duplicated or reordered)", i, from, k, next[from])
					return
				}
				next[from]++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A message crossed the bus once per other process, not once per
	// member: each process received the others' messages once.
	for i, n := range nodes {
		if got, want := n.rooms.Stats().Received, uint64((procs-1)*perProc*perMember); got != want {
			t.Errorf("process %d received %d messages from the bus, want %d (one per message of the other processes)", i, got, want)
		}
	}
	// Nothing more may come (no duplicates after the expected count), and
	// the other room heard nothing of lobby: a message in it now is the
	// first its member reads.
	if err := other.Write(ctx, websocket.MessageText, []byte("other-room")); err != nil {
		t.Fatal(err)
	}
	for i, c := range members {
		rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, p, err := c.Read(rctx)
		rcancel()
		if err == nil {
			t.Errorf("member %d: extra message %q", i, p)
		}
	}
}

func testRoomSubscription(t *testing.T, f Factory) {
	bs := f(t, 2)
	st, ok := bs[0].(Statser)
	if !ok {
		t.Skip("bus has no Stats")
	}
	n := startNode(t, bs[0])
	subs := func() int { return st.Stats().Subscriptions }
	if subs() != 0 {
		t.Fatalf("subscriptions %d before any member", subs())
	}
	a := dial(t, n.addr, "/r1")
	b := dial(t, n.addr, "/r1")
	waitFor(t, "two members", func() bool { return n.rooms.Members("r1") == 2 })
	Sync(t, bs[0])
	if subs() != 1 {
		t.Errorf("subscriptions %d with two members of one room, want 1", subs())
	}
	a.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "one member", func() bool { return n.rooms.Members("r1") == 1 })
	Sync(t, bs[0])
	if subs() != 1 {
		t.Errorf("subscriptions %d with one member left, want 1", subs())
	}
	b.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "room gone", func() bool { return n.rooms.Len() == 0 })
	Sync(t, bs[0])
	if subs() != 0 {
		t.Errorf("subscriptions %d after the last member left, want 0", subs())
	}
}

func testBroadcast(t *testing.T, f Factory) {
	const procs = 3
	bs := f(t, procs)
	type proc struct {
		srv *loop.Server
		bc  *bus.Broadcast
	}
	ps := make([]proc, procs)
	var conns []*websocket.Conn
	for i := range ps {
		srv, err := loop.NewServer(session.HandlerFuncs{}, loop.Options{Loops: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		bc, err := bus.NewBroadcast(bs[i], "test.all", srv.Broadcast)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bc.Close)
		ps[i] = proc{srv, bc}
		for range 2 {
			conns = append(conns, dial(t, srv.Addr().String(), "/"))
		}
		waitFor(t, "connections", func() bool { return srv.Conns() == 2 })
	}
	Sync(t, bs...)
	for i, p := range ps {
		if err := p.bc.Send(session.Text, fmt.Appendf(nil, "all-%d", i)); err != nil {
			t.Fatalf("send from %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for k, c := range conns {
		seen := map[string]int{}
		for range procs {
			_, p, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("conn %d: %v after %v", k, err, seen)
			}
			seen[string(p)]++
		}
		for i := range procs {
			if n := seen[fmt.Sprintf("all-%d", i)]; n != 1 {
				t.Errorf("conn %d: all-%d received %d times", k, i, n)
			}
		}
	}
	for i, p := range ps {
		if got := p.bc.Received(); got != procs-1 {
			t.Errorf("process %d: received %d broadcasts from the others, want %d", i, got, procs-1)
		}
	}
}
