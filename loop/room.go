package loop

import (
	"sync"

	"github.com/wsloop/wsloop/session"
)

// Room is a set of connections that receive the same messages (a chat room,
// a topic). Publish encodes a message once and posts one task per loop, not
// one per connection. Safe for concurrent use.
//
// Join and Leave are O(1) amortized. A Publish hands each loop the room's
// current member list without copying it; the next Join or Leave on that
// loop's list copies it first (copy on write), so a task in flight never sees
// a list change under it.
type Room struct {
	mu     sync.Mutex
	n      int
	groups map[session.Executor]*roomGroup
}

// roomGroup is the members that one executor (one loop) owns.
type roomGroup struct {
	ids    []uint64
	pos    map[uint64]int // id -> index in ids
	shared bool           // ids was handed to ExecuteAll: copy before changing
}

// NewRoom returns an empty room.
func NewRoom() *Room {
	return &Room{groups: make(map[session.Executor]*roomGroup)}
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

// Publish sends one message to every member: it encodes the frame once and
// posts one task per loop. Members whose connections have gone away are
// skipped by their loops (Leave them from OnClose to keep the room small).
// Each member's loop applies its Config.Overflow (Stats count drops and
// slow consumers closed). It returns the first loop's refusal, if any
// (session.ErrQueueFull: that loop's members miss this message).
func (r *Room) Publish(op session.Opcode, p []byte) error {
	m := session.NewPrepared(op, p)
	type post struct {
		x   session.Executor
		ids []uint64
	}
	var stack [8]post
	posts := stack[:0]
	r.mu.Lock()
	for x, g := range r.groups {
		g.shared = true
		posts = append(posts, post{x, g.ids})
	}
	r.mu.Unlock()
	send := func(c *session.Conn) { _ = c.SendPrepared(m) }
	var first error
	for _, p := range posts {
		if err := p.x.ExecuteAll(p.ids, send, len(m.Frame())); err != nil && first == nil {
			first = err
		}
	}
	return first
}
