package bus

import (
	"sync"
	"sync/atomic"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Rooms are named rooms of connections that span every process on a Bus.
//
// This process keeps, for each room with members here, one loop.Room and
// one subscription to the room's topic (Prefix + name), made when the first
// local member joins and cancelled when the last one leaves. Publish hands
// the message to the local members at once (encoded once, one task per event
// loop) and publishes it once on the bus; every other process with members
// receives it once and does the same for its own. Delivery across processes
// is the Bus's: at most once, in order per publisher. Within this process a
// message never depends on the bus, so local members keep talking while it
// is down.
//
// Members are WebSocket connections and event streams alike (loop.Room).
// Rooms made by NewRoomsWith keep their latest messages for streams that
// reconnect (JoinFrom): each room's history, and its event ids, are this
// process's (messages from other processes enter it as they arrive), so a
// stream resumes in the process it left, while the room has members here;
// elsewhere its Last-Event-ID is not recognized.
//
// Member counts are this process's; a room's size over all processes is not
// known here. Safe for concurrent use; no method blocks.
type Rooms struct {
	bus    Bus // nil: this process only
	prefix string
	opts   loop.RoomOptions

	mu    sync.Mutex
	rooms map[string]*room

	published, received, busErrors, localErrors atomic.Uint64
}

type room struct {
	topic   string // prefix + name, made once
	local   *loop.Room
	members int
	cancel  func() // the bus subscription; nil without a bus
}

// RoomStats are the counters of Rooms.
type RoomStats struct {
	Rooms     int    `json:"rooms"`      // rooms with members in this process
	Published uint64 `json:"published"`  // Publish calls
	Received  uint64 `json:"received"`   // messages from other processes handed to local members
	BusErrors uint64 `json:"bus_errors"` // publishes or subscriptions the bus refused (ErrDropped, ErrClosed)
	// LocalErrors are hand-offs to this process's loops that a loop refused
	// (session.ErrQueueFull): that loop's members missed the message.
	LocalErrors uint64 `json:"local_errors"`
}

// NewRooms returns rooms on b whose topics are prefix + room name; b nil
// keeps them to this process.
func NewRooms(b Bus, prefix string) *Rooms { return NewRoomsWith(b, prefix, loop.RoomOptions{}) }

// NewRoomsWith is NewRooms for rooms that keep o's history (o.Epoch is not
// used: every room, each time it is made, numbers its messages under a
// random epoch of its own).
func NewRoomsWith(b Bus, prefix string, o loop.RoomOptions) *Rooms {
	o.Epoch = ""
	return &Rooms{bus: b, prefix: prefix, opts: o, rooms: make(map[string]*room)}
}

// Join adds the connection h names to room name and returns the room's
// local member count after it. Joining twice counts twice (a connection
// joins a room once, from OnOpen). When the bus refuses the room's
// subscription the member still joins and hears this process's messages;
// the error says why the others' are missing.
func (rs *Rooms) Join(name string, h session.Handle) (members int, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, err := rs.room(name)
	r.members++
	r.local.Join(h)
	return r.members, err
}

// JoinFrom is Join for a connection on its own loop (OnOpen) that resumes
// from an event id: loop.Room.JoinFrom, which hands c the kept messages
// after last (or the latest fresh ones) and reports whether it resumed.
func (rs *Rooms) JoinFrom(name string, c *session.Conn, last string, fresh int) (members int, resumed bool, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, err := rs.room(name)
	r.members++
	resumed = r.local.JoinFrom(c, last, fresh)
	return r.members, resumed, err
}

// room returns room name, made (and subscribed) when it has no members
// here; rs.mu is held.
func (rs *Rooms) room(name string) (r *room, err error) {
	r = rs.rooms[name]
	if r == nil {
		r = &room{topic: rs.prefix + name, local: loop.NewRoomWith(rs.opts)}
		if rs.bus != nil {
			local := r.local
			r.cancel, err = rs.bus.Subscribe(r.topic, func(op session.Opcode, p []byte) {
				rs.received.Add(1)
				if local.Publish(op, p) != nil {
					rs.localErrors.Add(1)
				}
			})
			if err != nil {
				rs.busErrors.Add(1)
			}
		}
		rs.rooms[name] = r
	}
	return r, err
}

// Leave removes h from room name and returns the local member count left;
// the room and its subscription go with its last local member. ok is false
// when the room had no local members.
func (rs *Rooms) Leave(name string, h session.Handle) (members int, ok bool) {
	rs.mu.Lock()
	r := rs.rooms[name]
	if r == nil {
		rs.mu.Unlock()
		return 0, false
	}
	r.local.Leave(h)
	r.members--
	members = r.members
	var cancel func()
	if members <= 0 {
		delete(rs.rooms, name)
		cancel = r.cancel
	}
	rs.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return max(members, 0), true
}

// Publish sends a message to every member of room name in every process:
// the local ones at once, the others through one bus message. The error is
// a local loop's refusal (session.ErrQueueFull: its members miss the
// message), or else the bus's (ErrDropped: the other processes miss it);
// either way the rest get it. A room without local members still
// publishes to the others.
func (rs *Rooms) Publish(name string, op session.Opcode, p []byte) error {
	rs.published.Add(1)
	rs.mu.Lock()
	r := rs.rooms[name]
	rs.mu.Unlock()
	topic := ""
	var lerr error
	if r != nil {
		if lerr = r.local.Publish(op, p); lerr != nil {
			rs.localErrors.Add(1)
		}
		topic = r.topic
	}
	if rs.bus == nil {
		return lerr
	}
	if topic == "" {
		topic = rs.prefix + name
	}
	if err := rs.bus.Publish(topic, op, p); err != nil {
		rs.busErrors.Add(1)
		if lerr == nil {
			return err
		}
	}
	return lerr
}

// Members returns the local member count of room name.
func (rs *Rooms) Members(name string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r := rs.rooms[name]; r != nil {
		return r.members
	}
	return 0
}

// Len returns the number of rooms with local members.
func (rs *Rooms) Len() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.rooms)
}

// Stats returns the counters.
func (rs *Rooms) Stats() RoomStats {
	return RoomStats{Rooms: rs.Len(), Published: rs.published.Load(), Received: rs.received.Load(),
		BusErrors: rs.busErrors.Load(), LocalErrors: rs.localErrors.Load()}
}
