package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/wsloop/wsloop/session"
)

// fakeDriver is an in-memory socket layer: each connection's socket takes
// at most take bytes per Write (-1: everything), as a peer that reads at
// that pace would.
type fakeDriver struct {
	take   int
	out    map[int][]byte
	closed map[int]bool
	write  map[int]bool // write interest
	failW  error
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{take: -1, out: map[int][]byte{}, closed: map[int]bool{}, write: map[int]bool{}}
}

func (d *fakeDriver) Write(c *Conn, bufs [][]byte) (int, error) {
	if d.failW != nil {
		return 0, d.failW
	}
	n := 0
	for _, b := range bufs {
		k := len(b)
		if d.take >= 0 {
			k = min(k, d.take-n)
		}
		d.out[c.FD()] = append(d.out[c.FD()], b[:k]...)
		n += k
		if k < len(b) {
			break
		}
	}
	return n, nil
}

func (d *fakeDriver) Interest(c *Conn, read, write bool) error {
	d.write[c.FD()] = write
	return nil
}

func (d *fakeDriver) Close(c *Conn) { d.closed[c.FD()] = true }
func (d *fakeDriver) RemoteAddr(c *Conn) net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

const upgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// testLoop is one loop on a fake driver serving h.
func testLoop(t testing.TB, cfg *session.Config, h session.Handler) (*Loop, *fakeDriver) {
	t.Helper()
	cfg.Handler = h
	cfg.Role = session.Server
	if cfg.Stats == nil {
		cfg.Stats = new(session.Stats)
	}
	g := NewGroup(cfg, 1<<20, nil)
	d := newFakeDriver()
	return g.AddLoop(d, func() error { return nil }), d
}

// open starts a connection on fd through a real handshake.
func open(t testing.TB, l *Loop, d *fakeDriver, fd int) *Conn {
	t.Helper()
	if !l.g.Claim() {
		t.Fatal("no place")
	}
	c := l.NewConn(fd)
	l.StartServer(c, netip.Addr{})
	l.Input(c, []byte(upgrade))
	if !bytes.HasPrefix(d.out[fd], []byte("HTTP/1.1 101 ")) {
		t.Fatalf("handshake answered %q", d.out[fd])
	}
	d.out[fd] = d.out[fd][:0]
	return c
}

// clientFrame is a masked frame from a client (payload < 126 bytes).
func clientFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op, 0x80 | byte(len(p)), 1, 2, 3, 4}
	for i, x := range p {
		b = append(b, x^[]byte{1, 2, 3, 4}[i&3])
	}
	return b
}

// queued is the memory the connection's queue holds (whole blocks).
func queued(l *Loop, c *Conn) (pending, capacity int) {
	if !c.has(flagOut) {
		return 0, 0
	}
	q := l.outs[c.slot]
	for _, b := range q.blocks {
		capacity += cap(b)
	}
	return q.pending(), capacity
}

// The per-connection record is what an idle connection costs: it lives in
// its loop's connection table (no malloc rounding), so every byte counts.
func TestConnRecordSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	if n := unsafe.Sizeof(Conn{}); n > 112 {
		t.Fatalf("Conn is %d bytes, want at most 112", n)
	}
	if n := unsafe.Sizeof(chunk{}); n > 64<<10 {
		t.Fatalf("a table chunk is %d bytes, want at most 64 KiB", n)
	}
}

// The table spans chunks, reuses freed slots lowest chunk first, shrinks
// back when they empty, and never hands out an ID twice: not after a slot's
// reuse, not after its chunk was dropped and allocated again.
func TestTableReusesSlotsShrinksAndNeverRepeatsAnID(t *testing.T) {
	tb := newTable(1 << 16)
	n := 2*int(chunkLen) + 10
	seen := map[uint64]bool{}
	var cs []*Conn
	take := func() *Conn {
		c := tb.alloc()
		if seen[c.ID()] {
			t.Fatalf("ID %x handed out twice", c.ID())
		}
		seen[c.ID()] = true
		return c
	}
	for range n {
		cs = append(cs, take())
	}
	if len(tb.chunks) != 3 || tb.n != n {
		t.Fatalf("%d chunks, %d live; want 3, %d", len(tb.chunks), tb.n, n)
	}
	old := cs[5].ID()
	tb.release(cs[5])
	if tb.byID(old) != nil {
		t.Fatal("a released ID still names a connection")
	}
	c := take()
	if c.slot != cs[5].slot || tb.byID(old) != nil || tb.byID(c.ID()) != c {
		t.Fatalf("slot %d not reused (got %d) or IDs confused", cs[5].slot, c.slot)
	}
	cs[5] = c
	for _, c := range cs {
		tb.release(c)
	}
	if len(tb.chunks) != 1 || tb.n != 0 {
		t.Fatalf("%d chunks, %d live after releasing all; want 1 (the spare), 0", len(tb.chunks), tb.n)
	}
	// Chunks 1 and 2 were dropped: their slots come back with generations
	// above every one they handed out.
	for range n {
		take()
	}
}

// A generation forced next to its wrap: the slot is retired, so the
// connection's handle can never name a later connection.
func TestGenerationWrapRetiresTheSlot(t *testing.T) {
	tb := newTable(1 << 16)
	c := tb.alloc()
	c.gen = math.MaxUint32 - 1
	stale := c.ID()
	slot := c.slot
	tb.release(c)
	for range 3 * int(chunkLen) {
		n := tb.alloc()
		if n.slot == slot {
			t.Fatalf("retired slot %d reused with generation %d", slot, n.gen)
		}
		if tb.byID(stale) != nil {
			t.Fatal("the stale ID names a live connection")
		}
	}
}

// The same through a loop: a stale handle's task never runs on the
// connection that took its slot.
func TestStaleHandleAfterWrap(t *testing.T) {
	var handles []session.Handle
	h := session.HandlerFuncs{Open: func(c *session.Conn) { handles = append(handles, c.Handle()) }}
	l, d := testLoop(t, &session.Config{}, h)
	c := open(t, l, d, 1)
	c.gen = math.MaxUint32 - 1 // as if 4 billion connections had used the slot
	stale := session.NewHandle(l, c.ID())
	l.finish(c, nil)
	for fd := 2; fd < 50; fd++ {
		open(t, l, d, fd)
	}
	ran := false
	var missed error
	_ = stale.Do(func(*session.Conn) { ran = true })
	_ = stale.SendReport(session.Text, []byte("x"), func(err error) { missed = err })
	l.RunTasks()
	if ran || missed != session.ErrClosed {
		t.Fatalf("stale handle: task ran %v, report %v", ran, missed)
	}
}

// A peer that keeps pace but leaves ~100 KB pending at any moment: after
// 8 MB the queue's memory is still about what is pending, never the
// history, and never more than 2x HighWater.
func TestQueueMemoryFollowsPendingBytes(t *testing.T) {
	const hw = 128 << 10
	l, d := testLoop(t, &session.Config{HighWater: hw, Overflow: session.OverflowError}, session.HandlerFuncs{})
	c := open(t, l, d, 1)
	msg := bytes.Repeat([]byte("m"), 4000)
	d.take = 0
	var sent, maxCap int
	for sent < 8<<20 {
		// the application sends while it may
		_ = session.NewHandle(l, c.ID()).Do(func(sc *session.Conn) {
			for sc.Send(session.Binary, msg) == nil {
				sent += len(msg)
			}
		})
		l.RunTasks()
		pending, capacity := queued(l, c)
		maxCap = max(maxCap, capacity)
		if pending > hw+len(msg)+4 {
			t.Fatalf("pending %d over HighWater %d plus one message", pending, hw)
		}
		// the peer takes a quarter of it
		d.take = max(pending/4, 1)
		l.Writable(c)
		d.take = 0
	}
	if maxCap > 2*hw {
		t.Fatalf("queue held %d bytes of blocks for at most %d pending, want <= 2x HighWater", maxCap, hw)
	}
	d.take = -1
	l.Writable(c)
	if _, capacity := queued(l, c); capacity != 0 || c.has(flagOut) {
		t.Fatalf("drained queue still holds %d bytes", capacity)
	}
	if len(d.out[1]) < 8<<20 {
		t.Fatalf("wrote %d bytes", len(d.out[1]))
	}
}

// A peer that pings without end and never reads: its pongs coalesce, what
// the server holds for it stays within HighWater, and the write timeout
// closes it.
func TestPingFlooderIsBoundedThenClosed(t *testing.T) {
	const hw = 16 << 10
	var closeErr error
	h := session.HandlerFuncs{Close: func(c *session.Conn, code session.StatusCode, reason string, err error) { closeErr = err }}
	cfg := &session.Config{HighWater: hw, WriteTimeout: 50 * time.Millisecond}
	l, d := testLoop(t, cfg, h)
	c := open(t, l, d, 1)
	d.take = 1000 // the socket buffer fills, then takes nothing
	var in []byte
	for range 5000 {
		in = append(in, clientFrame(9, bytes.Repeat([]byte("p"), 100))...)
	}
	for i := 0; i < 50 && c.live(); i++ {
		l.Input(c, append([]byte(nil), in...))
		d.take = 0
		if pending, _ := queued(l, c); pending > hw {
			t.Fatalf("after %d reads of pings: %d bytes queued, HighWater %d", i+1, pending, hw)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for c.live() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		l.Advance()
	}
	if c.live() || !errors.Is(closeErr, ErrWriteTimeout) || !d.closed[1] {
		t.Fatalf("flooder live %v, OnClose err %v", c.live(), closeErr)
	}
	if cfg.Stats.SlowClosed.Load() != 1 {
		t.Fatalf("SlowClosed %d", cfg.Stats.SlowClosed.Load())
	}
}

// A panic in a task is recovered and counted; the connection it ran for
// is failed with 1011, the loop and its other connections go on.
func TestTaskPanicIsCountedAndClosesOnlyItsConnection(t *testing.T) {
	cfg := &session.Config{}
	l, d := testLoop(t, cfg, session.HandlerFuncs{})
	a, b := open(t, l, d, 1), open(t, l, d, 2)
	_ = session.NewHandle(l, a.ID()).Do(func(*session.Conn) { panic("bug") })
	_ = l.Post(func() { panic("housekeeping bug") })
	_ = session.NewHandle(l, b.ID()).Send(session.Text, []byte("fine"))
	l.RunTasks()
	if cfg.Stats.Panics.Load() != 2 {
		t.Fatalf("Panics %d, want 2", cfg.Stats.Panics.Load())
	}
	if len(d.out[1]) < 4 || d.out[1][0] != 0x88 || binary.BigEndian.Uint16(d.out[1][2:]) != 1011 {
		t.Fatalf("a got % x, want a 1011 close", d.out[1])
	}
	if !bytes.Equal(d.out[2], []byte("\x81\x04fine")) {
		t.Fatalf("b got %q", d.out[2])
	}
}

// The task queue refuses work past its bound, and says so.
func TestTaskQueueFullIsReported(t *testing.T) {
	l, d := testLoop(t, &session.Config{}, session.HandlerFuncs{})
	c := open(t, l, d, 1)
	l.q.maxTasks = 2
	h := session.NewHandle(l, c.ID())
	if h.Send(session.Text, []byte("1")) != nil || h.Send(session.Text, []byte("2")) != nil {
		t.Fatal("sends within the bound refused")
	}
	if err := h.Send(session.Text, []byte("3")); err != session.ErrQueueFull {
		t.Fatalf("third send: %v, want ErrQueueFull", err)
	}
}

// A connection that asked to close with bytes still queued waits for them
// at most the linger time.
func TestLingerBoundsAClosingConnection(t *testing.T) {
	var closes int
	h := session.HandlerFuncs{
		Open: func(c *session.Conn) {
			_ = c.Send(session.Binary, make([]byte, 100000))
			_ = c.Close(session.StatusNormal, "")
		},
		Close: func(*session.Conn, session.StatusCode, string, error) { closes++ },
	}
	l, d := testLoop(t, &session.Config{CloseTimeout: 20 * time.Millisecond}, h)
	l.g.SetLinger(50 * time.Millisecond)
	d.take = 1000 // the peer reads the first bytes, then nothing
	c := open(t, l, d, 1)
	start := time.Now()
	for c.live() && time.Since(start) < 2*time.Second {
		time.Sleep(5 * time.Millisecond)
		l.Advance()
		if c.live() && c.has(flagCloseReq) && !d.write[1] {
			t.Fatal("closing with bytes queued, but no write interest")
		}
	}
	if c.live() || !d.closed[1] || closes != 1 {
		t.Fatalf("live %v closed %v OnClose %d: the lingering connection was not closed", c.live(), d.closed[1], closes)
	}
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Fatalf("closed after %v: before the close timeout plus linger", el)
	}
}

// Echo through the core allocates nothing per message once warm.
func TestCoreEchoAllocs(t *testing.T) {
	echo := session.HandlerFuncs{Message: func(c *session.Conn, op session.Opcode, p []byte) { _ = c.Send(op, p) }}
	l, d := testLoop(t, &session.Config{}, echo)
	c := open(t, l, d, 1)
	frame := clientFrame(2, bytes.Repeat([]byte("e"), 64))
	in := make([]byte, len(frame))
	d.out[1] = make([]byte, 0, 1<<16)
	allocs := testing.AllocsPerRun(500, func() {
		copy(in, frame)
		d.out[1] = d.out[1][:0]
		l.Input(c, in)
	})
	if len(d.out[1]) != 66 {
		t.Fatalf("echo wrote %d bytes", len(d.out[1]))
	}
	if allocs != 0 && !raceEnabled {
		t.Fatalf("%v allocations per echoed message, want 0", allocs)
	}
	_ = runtime.NumGoroutine
}

// An idle connection whose next deadline is far (the keepalive ping) holds
// no wheel entry: the loop's sweep watches it and hands the deadline to the
// wheel in time, so the ping still goes out when it is due.
func TestFarDeadlinesAreSweptNotInTheWheel(t *testing.T) {
	defer func(p, h int64) { sweepPeriod, sweepHorizon = p, h }(sweepPeriod, sweepHorizon)
	sweepPeriod, sweepHorizon = int64(50*time.Millisecond), int64(150*time.Millisecond)
	l, d := testLoop(t, &session.Config{PingInterval: 600 * time.Millisecond}, session.HandlerFuncs{})
	start := time.Now()
	c := open(t, l, d, 1)
	for time.Since(start) < 250*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
		l.Advance()
	}
	if !c.has(flagSwept) || l.swept != 1 || l.Timers() != 0 {
		t.Fatalf("idle: swept %v (%d), %d wheel entries; want the sweep to hold it and the wheel empty", c.has(flagSwept), l.swept, l.Timers())
	}
	for len(d.out[1]) == 0 && time.Since(start) < 2*time.Second {
		time.Sleep(10 * time.Millisecond)
		l.Advance()
	}
	el := time.Since(start)
	if !bytes.Equal(d.out[1], []byte{0x89, 0x00}) {
		t.Fatalf("after %v: wrote % x, want the keepalive ping", el, d.out[1])
	}
	if el < 590*time.Millisecond || el > 900*time.Millisecond {
		t.Fatalf("ping after %v, want at its deadline (600 ms, a tick late at most)", el)
	}
	l.finish(c, nil)
	if l.swept != 0 {
		t.Fatalf("swept %d after the connection went", l.swept)
	}
}

// A peer that sends its close frame and then half-closes (FIN) still reads:
// a close reply that had to wait in the queue is written before the socket
// is closed, not dropped at the FIN.
func TestHalfCloseBehindCloseFrameGetsTheReply(t *testing.T) {
	l, d := testLoop(t, &session.Config{}, session.HandlerFuncs{})
	c := open(t, l, d, 1)
	d.take = 0 // the socket is full
	l.Input(c, clientFrame(8, []byte{0x03, 0xe8}))
	if !c.has(flagOut) || !c.has(flagCloseReq) {
		t.Fatalf("the close reply is not queued (out %v, closing %v)", c.has(flagOut), c.has(flagCloseReq))
	}
	l.Hangup(c, io.EOF)
	if !c.live() || d.closed[1] {
		t.Fatal("the FIN closed the connection with its close reply still queued")
	}
	d.take = -1
	l.Writable(c)
	if got := d.out[1]; !bytes.Equal(got, []byte{0x88, 0x02, 0x03, 0xe8}) {
		t.Fatalf("wrote %x, want the close reply", got)
	}
	if !d.closed[1] || c.live() {
		t.Fatal("not closed once the reply was written")
	}
}
