package core

import (
	"math"
	"unsafe"

	"github.com/wsloop/wsloop/session"
)

// Conn is one connection of a loop: its protocol machine and what the core
// needs to serve it. It is what an idle connection costs, 112 bytes, and it
// lives in its loop's connection table itself (see chunk): no allocation
// and no pointer per connection. The bytes a connection has not been able
// to send yet wait in the loop's out map (flagOut), so an idle one holds
// no pointer for them.
type Conn struct {
	m     session.Machine
	fd    int32  // the driver's: a file descriptor, or an index of its own
	slot  int32  // index in the loop's table
	gen   uint32 // the slot's generation: bumped each time a connection leaves it
	timer uint32 // the wheel entry asked for, engine milliseconds (0: none)
	flags uint32
	// ticket is the connection's place in the per-client limits (0: none).
	ticket uint32
}

const (
	flagClosed     uint32 = 1 << iota // the socket is closed and the slot free
	flagCloseReq                      // the machine asked for the close: it happens once out drains
	flagOut                           // bytes wait in the loop's outs[slot]
	flagWrite                         // the driver reports the socket writable
	flagNoRead                        // the driver no longer reports it readable
	flagConnecting                    // client: connect in progress, no machine yet
	flagDialing                       // client: handshake in progress, dial state in the loop's dials
	flagStarted                       // the machine was started (server or client)
	flagSwept                         // its next deadline is far: the loop's sweep watches it, not the wheel
	flagCounted                       // its handshake's outcome was reported (Observer), or it served plain HTTP
	flagHSGate                        // it holds a place among the handshakes in progress (Limits)
	flagProxied                       // its peer is a trusted proxy: the client is admitted once its request names it
)

// FD returns the driver's handle for the connection's socket.
func (c *Conn) FD() int { return int(c.fd) }

// Slot returns the connection's index in its loop's table: drivers use it
// as the poller token.
func (c *Conn) Slot() int32 { return c.slot }

// ID names the connection within its loop: slot and generation. A slot's
// generation grows each time a connection leaves it and the slot is retired
// before the generation would wrap, so an ID is never reused.
func (c *Conn) ID() uint64 { return uint64(c.slot)<<32 | uint64(c.gen) }

// Machine returns the connection's protocol machine.
func (c *Conn) Machine() *session.Machine { return &c.m }

func (c *Conn) has(f uint32) bool { return c.flags&f != 0 }

// live reports whether the connection holds a socket: started or
// connecting, not finished.
func (c *Conn) live() bool { return c.flags&flagClosed == 0 }

// chunkLen makes a chunk just under 64 KiB, a whole number of the heap's
// 8 KiB pages.
const chunkLen = int32((64<<10 - chunkHeader - 7) / unsafe.Sizeof(Conn{}))

// chunkHeader is the size of a chunk's fields before conns.
const chunkHeader = 4 * unsafe.Sizeof(int32(0))

// chunk is a block of a loop's connection table. The table holds the conns
// themselves rather than pointers to conns allocated one by one: an idle
// connection costs its Conn and nothing else, the loop makes no garbage as
// connections come and go, and a garbage collection marks a few dozen
// chunks rather than one object per connection. A chunk's pages become
// resident as its conns are first used (top grows), not when it is
// allocated.
type chunk struct {
	live  int32 // conns in use
	top   int32 // conns[:top] have been used: in use, or free
	free  int32 // the first free conn below top (-1: none); each free conn's fd links the next
	_     int32
	conns [chunkLen]Conn
}

func (ch *chunk) full() bool { return ch.free < 0 && ch.top == chunkLen }

// table is a loop's connection table: conns in chunks of chunkLen (slot =
// chunk index * chunkLen + index in chunk). A chunk is allocated when every
// earlier one is full and dropped when it and the one before it are empty;
// conns never move (handlers hold *session.Conn pointers into them). New
// connections take the lowest chunk with room, so that the table shrinks
// back after a peak.
//
// Generations are per slot and survive a chunk being dropped: floor[k] is
// above every generation chunk k has handed out, and a new chunk at index k
// starts there. A slot whose generation would wrap is retired for good.
type table struct {
	chunks []*chunk
	floor  []uint32 // per chunk index: the generation new conns of a new chunk start at
	low    int      // no chunk below this index has room
	n      int      // conns in use
}

func newTable(capacity int) table {
	n := (capacity + int(chunkLen) - 1) / int(chunkLen)
	// Reserved, not touched: appending makes no garbage.
	return table{chunks: make([]*chunk, 0, n), floor: make([]uint32, 0, n)}
}

// alloc takes a free slot and returns its conn, reset but for its
// generation.
func (t *table) alloc() *Conn {
	for t.low < len(t.chunks) && t.chunks[t.low].full() {
		t.low++
	}
	if t.low == len(t.chunks) {
		ch := &chunk{free: -1}
		if t.low == len(t.floor) {
			t.floor = append(t.floor, 1)
		}
		for i := range ch.conns {
			ch.conns[i].gen = t.floor[t.low]
		}
		t.chunks = append(t.chunks, ch)
	}
	ch := t.chunks[t.low]
	i := ch.free
	if i >= 0 {
		ch.free = ch.conns[i].fd
	} else {
		i = ch.top
		ch.top++
	}
	ch.live++
	t.n++
	c := &ch.conns[i]
	gen := c.gen
	*c = Conn{slot: int32(t.low)*chunkLen + i, gen: gen}
	return c
}

// release frees c's slot: its memory is reused by a later connection given
// the slot, with the next generation. When the last two chunks are empty,
// the last one is dropped (one empty chunk stays, so that a count going up
// and down across a chunk boundary does not allocate and drop a chunk each
// time).
func (t *table) release(c *Conn) {
	k := int(c.slot / chunkLen)
	ch := t.chunks[k]
	c.flags = flagClosed
	c.timer = 0
	ch.live--
	t.n--
	if g := c.gen + 1; g > t.floor[k] {
		t.floor[k] = g
	}
	if c.gen == math.MaxUint32-1 {
		// Retired: the slot stays taken (live is not restored: its chunk is
		// never dropped), so no handle can ever name a reuse of it.
		ch.live++
		return
	}
	c.gen++
	c.fd = ch.free
	ch.free = c.slot % chunkLen
	if k < t.low {
		t.low = k
	}
	for n := len(t.chunks); n >= 2 && t.chunks[n-1].live == 0 && t.chunks[n-2].live == 0; n-- {
		t.chunks[n-1] = nil
		t.chunks = t.chunks[:n-1]
		t.low = min(t.low, n-1)
	}
}

// bySlot returns the conn of slot, in use or free, or nil when the slot is
// not in the table.
func (t *table) bySlot(slot int32) *Conn {
	k, i := slot/chunkLen, slot%chunkLen
	if slot < 0 || int(k) >= len(t.chunks) || i >= t.chunks[k].top {
		return nil
	}
	return &t.chunks[k].conns[i]
}

// byID returns the live conn id names, or nil.
func (t *table) byID(id uint64) *Conn {
	c := t.bySlot(int32(id >> 32 & math.MaxInt32))
	if c == nil || !c.live() || c.gen != uint32(id) {
		return nil
	}
	return c
}

// each calls fn for every live conn (fn may finish it).
func (t *table) each(fn func(c *Conn)) {
	for k := 0; k < len(t.chunks); k++ {
		ch := t.chunks[k]
		for i := range ch.top {
			if c := &ch.conns[i]; c.live() {
				fn(c)
			}
		}
	}
}

// Connecting reports whether c is a client socket whose connect is still in
// progress (the driver checks its result instead of reading).
func (c *Conn) Connecting() bool { return c.has(flagConnecting) }
