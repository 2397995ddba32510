package loop

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/wsloop/wsloop/session"
)

// Room is a set of connections that receive the same messages (a chat room,
// a topic): WebSocket connections and event streams (session.Conn.StartStream)
// alike. Publish encodes a message once per format (the frame at once, the
// event on first use by a stream: session.Prepared) and posts one task per
// loop, not one per connection. Safe for concurrent use.
//
// Every message gets an event id, "<epoch>-<n>", which streams receive as
// their events' id: field: n counts the room's messages from 1 (or is the
// publisher's own number, PublishID), epoch tells this room's numbering
// from any other's (RoomOptions.Epoch). Publishes are serialized, so every
// member receives a room's messages in the order of their ids.
//
// A room may keep its latest messages (RoomOptions.History) for event
// streams that reconnect: JoinFrom hands a stream what it missed since the
// Last-Event-ID its client sent, exactly once and in order, before anything
// newer.
//
// Join and Leave are O(1) amortized. A Publish hands each loop the room's
// current member list without copying it; the next Join or Leave on that
// loop's list copies it first (copy on write), so a task in flight never sees
// a list change under it.
type Room struct {
	mu     sync.Mutex
	n      int
	groups map[session.Executor]*roomGroup
	epoch  string
	last   uint64 // the latest message's number
	hist   history
}

// roomGroup is the members that one executor (one loop) owns.
type roomGroup struct {
	ids    []uint64
	pos    map[uint64]int // id -> index in ids
	shared bool           // ids was handed to ExecuteAll: copy before changing
}

// RoomOptions configure a Room (NewRoomWith).
type RoomOptions struct {
	// History is how many of its latest messages the room keeps for event
	// streams that reconnect; 0 keeps none.
	History int
	// HistoryBytes bounds the payload bytes kept (default
	// DefaultHistoryBytes): the oldest messages go first, and one larger
	// than the bound is not kept (nor, then, anything before it). The
	// memory is about twice that once streams have asked for the event
	// encoding, plus some 250 bytes per message.
	HistoryBytes int
	// Epoch is the first part of the room's event ids. Default: 8 random
	// hex digits, so that an id from another room, process or run is never
	// taken for one of this room's. Rooms in several processes whose
	// publishers number messages alike (PublishID) share one, and then a
	// stream may resume in any of them.
	Epoch string
}

// DefaultHistoryBytes bounds a room's kept messages when RoomOptions.History
// is set and HistoryBytes is not.
const DefaultHistoryBytes = 64 << 10

// ErrStaleID is PublishID's refusal of a number not above the room's latest.
var ErrStaleID = errors.New("loop: PublishID with a number not above the room's latest")

// NewRoom returns an empty room that keeps no history.
func NewRoom() *Room { return NewRoomWith(RoomOptions{}) }

// NewRoomWith returns an empty room configured by o.
func NewRoomWith(o RoomOptions) *Room {
	r := &Room{groups: make(map[session.Executor]*roomGroup), epoch: o.Epoch}
	if r.epoch == "" {
		r.epoch = fmt.Sprintf("%08x", rand.Uint32())
	}
	r.hist.max = max(o.History, 0)
	r.hist.maxBytes = o.HistoryBytes
	if r.hist.maxBytes <= 0 {
		r.hist.maxBytes = DefaultHistoryBytes
	}
	return r
}

// own makes g.ids safe to modify.
func (g *roomGroup) own() {
	if g.shared {
		g.ids = append(make([]uint64, 0, len(g.ids)+1), g.ids...)
		g.shared = false
	}
}

// Join adds the connection h names. Joining twice is the same as once; a
// zero Handle is ignored.
func (r *Room) Join(h session.Handle) {
	if h.IsZero() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.join(h)
}

func (r *Room) join(h session.Handle) {
	x := h.Executor()
	g := r.groups[x]
	if g == nil {
		g = &roomGroup{pos: make(map[uint64]int)}
		r.groups[x] = g
	}
	if _, ok := g.pos[h.ID()]; ok {
		return
	}
	g.own()
	g.pos[h.ID()] = len(g.ids)
	g.ids = append(g.ids, h.ID())
	r.n++
}

// JoinFrom joins c and, before anything published after, sends it the kept
// messages published after the event id last: what an event stream whose
// client reconnects with Last-Event-ID missed. It must run on c's loop,
// inside one of c's callbacks or tasks (OnOpen), like the Conn methods.
//
// It reports whether last was resumed from: one of this room's ids (its
// epoch) with everything after it still kept (or nothing after it). Else
// c gets the latest fresh kept messages instead (0: none; a feed whose new
// subscribers see its latest reading at once gives 1), after, when last
// was set (the client missed messages, or its id is another room's), an
// event named "gap" whose data is last: a stream's client learns that it
// must catch up some other way. A message c's Config.Overflow refuses
// ends the replay. Reconnecting to another process resumes only for rooms
// that share an Epoch and number their messages alike (PublishID).
func (r *Room) JoinFrom(c *session.Conn, last string, fresh int) (resumed bool) {
	h := c.Handle()
	if h.IsZero() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.join(h)
	kept := r.hist.kept()
	from := max(len(kept)-fresh, 0)
	if n, ok := r.parseID(last); ok && r.hist.started && n >= r.hist.base && n <= r.last {
		resumed = true
		from = len(kept)
		for from > 0 && kept[from-1].id > n {
			from--
		}
	}
	if !resumed && last != "" && c.SendEvent("gap", []byte(last)) != nil {
		return false
	}
	for _, e := range kept[from:] {
		if c.SendPrepared(e.m) != nil {
			break
		}
	}
	return resumed
}

// parseID reads an event id of this room: its number.
func (r *Room) parseID(id string) (uint64, bool) {
	p := len(r.epoch)
	if len(id) <= p+1 || id[:p] != r.epoch || id[p] != '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(id[p+1:], 10, 64)
	return n, err == nil
}

// Leave removes it; unknown handles are ignored.
func (r *Room) Leave(h session.Handle) {
	if h.IsZero() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	x := h.Executor()
	g := r.groups[x]
	if g == nil {
		return
	}
	i, ok := g.pos[h.ID()]
	if !ok {
		return
	}
	g.own()
	last := len(g.ids) - 1
	if i != last {
		g.ids[i] = g.ids[last]
		g.pos[g.ids[i]] = i
	}
	g.ids = g.ids[:last]
	delete(g.pos, h.ID())
	r.n--
	if len(g.ids) == 0 {
		delete(r.groups, x)
	}
}

// Len is the number of members.
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Publish sends one message to every member: it encodes it once and posts
// one task per loop. Members whose connections have gone away are skipped
// by their loops (Leave them from OnClose to keep the room small). Each
// member's loop applies its Config.Overflow (Stats count drops and slow
// consumers closed). It returns the first loop's refusal, if any
// (session.ErrQueueFull: that loop's members miss this message; a stream
// among them that reconnects gets it from the history).
func (r *Room) Publish(op session.Opcode, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last++
	return r.publish(r.last, op, p)
}

// PublishID is Publish with the message's number chosen by the caller (its
// event id is "<epoch>-<n>"): n must be above the room's latest, else
// nothing is published and it returns ErrStaleID. Processes that make the
// same messages under the same numbers (the demo's push feed numbers its
// readings by the clock) give their rooms one Epoch, and an event stream
// may then resume in any of them.
func (r *Room) PublishID(n uint64, op session.Opcode, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= r.last {
		return ErrStaleID
	}
	r.last = n
	return r.publish(n, op, p)
}

// publish keeps and posts message n; r.mu is held, so that every loop gets
// the room's messages in the order of their numbers and JoinFrom sees each
// either kept or still to come.
func (r *Room) publish(n uint64, op session.Opcode, p []byte) error {
	var id [48]byte // an epoch of a usual length, its number: one allocation for the id
	m := session.NewPreparedID(op, p, string(strconv.AppendUint(append(append(id[:0], r.epoch...), '-'), n, 10)))
	r.hist.add(n, m)
	if r.n == 0 {
		return nil
	}
	send := func(c *session.Conn) { _ = c.SendPrepared(m) }
	var first error
	for x, g := range r.groups {
		g.shared = true
		if err := x.ExecuteAll(g.ids, send, len(m.Frame())); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// history is a room's latest messages, oldest first, within its bounds.
type history struct {
	max, maxBytes int
	ents          []histEntry // ents[head:] are kept
	head          int
	bytes         int
	// Every message numbered above base is kept. It is known (started)
	// from the first message on: the one before it is base.
	base    uint64
	started bool
}

type histEntry struct {
	id uint64
	m  *session.Prepared
}

func (h *history) kept() []histEntry { return h.ents[h.head:] }

func (h *history) add(n uint64, m *session.Prepared) {
	if !h.started {
		h.started, h.base = true, n-1
	}
	if h.max == 0 {
		h.base = n
		return
	}
	h.ents = append(h.ents, histEntry{n, m})
	h.bytes += len(m.Payload())
	for len(h.ents)-h.head > h.max || h.bytes > h.maxBytes {
		e := &h.ents[h.head]
		h.base = e.id
		h.bytes -= len(e.m.Payload())
		*e = histEntry{}
		h.head++
	}
	if h.head > len(h.ents)/2 {
		// Compact now and then: at most twice the kept entries in memory.
		k := copy(h.ents, h.ents[h.head:])
		clear(h.ents[k:])
		h.ents, h.head = h.ents[:k], 0
	}
}
