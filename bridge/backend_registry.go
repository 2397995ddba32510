package bridge

import "github.com/wsloop/wsloop/session"

// The backend keeps no map from connection to anything. Its connections
// live in a chunked slab of 24-byte entries, each pointed to by its Conn's
// Value (a field every Conn has anyway); a connection's id in the protocol
// is its slot and the slot's generation ("S.G"), so a command finds its
// connection, and whether it is still open, by indexing the slab. The slab
// also lets the Backend reach all its connections (broadcast, and closing
// them when the backend dies) without a per-connection map.

const regChunk = 1024

// entry is one open connection of a Backend. It is written under
// Backend.mu, by the connection's OnOpen and OnClose.
type entry struct {
	id    uint64 // Handle.ID while in use; the next free slot (or -1) while free
	gen   uint32 // incremented each time the slot is handed out
	slot  int32
	epoch uint16 // the backend instance that was told about the connection
	xi    uint16 // index of the connection's executor in Backend.execs
	inUse bool
}

// registry is the slab: fixed chunks (never moved, so entry pointers stay
// valid) and a free list through the free slots. It is guarded by Backend.mu.
type registry struct {
	chunks []*[regChunk]entry
	top    int32 // slots ever used: every slot below it is in a chunk
	free   int32 // first free slot below top, -1 when none
	n      int   // slots in use
}

func newRegistry() registry { return registry{free: -1} }

func (r *registry) at(slot int32) *entry { return &r.chunks[slot/regChunk][slot%regChunk] }

// alloc returns an entry in use, with a new generation.
func (r *registry) alloc() *entry {
	slot := r.free
	if slot >= 0 {
		r.free = int32(int64(r.at(slot).id))
	} else {
		slot = r.top
		if int(slot/regChunk) == len(r.chunks) {
			r.chunks = append(r.chunks, new([regChunk]entry))
		}
		r.top++
	}
	e := r.at(slot)
	*e = entry{gen: e.gen + 1, slot: slot, inUse: true}
	r.n++
	return e
}

// release frees e's slot.
func (r *registry) release(e *entry) {
	e.inUse = false
	e.id = uint64(int64(r.free))
	r.free = e.slot
	r.n--
}

// lookup returns the entry in use that protocol id names, or nil.
func (r *registry) lookup(id []byte) *entry {
	for i, c := range id {
		if c != '.' {
			continue
		}
		slot, ok1 := parseUint(id[:i])
		gen, ok2 := parseUint(id[i+1:])
		if !ok1 || !ok2 || slot >= uint64(r.top) {
			return nil
		}
		if e := r.at(int32(slot)); e.inUse && uint64(e.gen) == gen {
			return e
		}
		return nil
	}
	return nil
}

// groups returns the Handle ids of the entries in use, by executor index.
func (r *registry) groups() map[uint16][]uint64 {
	g := make(map[uint16][]uint64)
	for k, ch := range r.chunks {
		last := min(regChunk, int(r.top)-k*regChunk)
		for i := range ch[:last] {
			if e := &ch[i]; e.inUse {
				g[e.xi] = append(g[e.xi], e.id)
			}
		}
	}
	return g
}

// executorIndex returns the index of x in b.execs, adding it (under b.mu).
func (b *Backend) executorIndex(x session.Executor) (uint16, bool) {
	xs := *b.execs.Load()
	for i, y := range xs {
		if y == x {
			return uint16(i), true
		}
	}
	if len(xs) >= 1<<16-1 {
		return 0, false
	}
	nx := append(append(make([]session.Executor, 0, len(xs)+1), xs...), x)
	b.execs.Store(&nx)
	return uint16(len(xs)), true
}

// appendID appends the protocol id of e.
func appendID(dst []byte, e *entry) []byte {
	dst = appendUint(dst, uint64(e.slot))
	dst = append(dst, '.')
	return appendUint(dst, uint64(e.gen))
}

// handleOf returns the Handle of the connection protocol id names, if it is
// open and was told to the current backend instance (under b.mu).
func (b *Backend) handleOf(id []byte) (session.Handle, *entry, bool) {
	e := b.reg.lookup(id)
	if e == nil || e.epoch != uint16(b.epoch.Load()) {
		return session.Handle{}, nil, false
	}
	return session.NewHandle((*b.execs.Load())[e.xi], e.id), e, true
}

// entryOf returns c's entry when it was told to the current backend
// instance. Tasks of commands check this on the connection's loop: the
// backend that sent the command may have gone since.
func (b *Backend) entryOf(c *session.Conn) *entry {
	e, ok := c.Value().(*entry)
	if !ok || e.epoch != uint16(b.epoch.Load()) {
		return nil
	}
	return e
}
