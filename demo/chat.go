package demo

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// Chat limits.
const (
	DefaultRoom    = "lobby"
	MaxRoomName    = 32
	MaxNick        = 24
	MaxChatMessage = 4 << 10 // bytes of text per chat message

	// MaxAnnouncedRoom is the largest room whose joins and leaves are
	// announced. Announcing every join to everyone costs N²/2 messages while
	// a room fills (180 million for 19,000 subscribers), so rooms larger than
	// this, which are broadcast channels rather than conversations, skip them.
	MaxAnnouncedRoom = 100
)

// Chat is the chat application: rooms named by the ?room= query parameter,
// created on first join and removed when the last member leaves. Every text
// message a member sends goes to all members (the sender included) as
// "nick: text"; members without a ?nick= are called guest-N. Joins and
// leaves are announced as "* nick joined" and "* nick left" in rooms of at
// most MaxAnnouncedRoom members.
type Chat struct {
	mu     sync.Mutex
	rooms  map[string]*chatRoom
	guests atomic.Uint64
}

type chatRoom struct {
	room    *loop.Room
	members int // counted here, under Chat.mu, so that removal cannot race a join
}

// member is a chat connection's user value.
type member struct {
	room string
	nick string
}

// NewChat returns a chat with no rooms.
func NewChat() *Chat { return &Chat{rooms: make(map[string]*chatRoom)} }

// Rooms returns the number of rooms that have members.
func (ch *Chat) Rooms() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.rooms)
}

// Members returns the number of members of room name.
func (ch *Chat) Members(name string) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if r := ch.rooms[name]; r != nil {
		return r.members
	}
	return 0
}

// accept reads room and nick from the query; invalid ones are refused with 400.
func (ch *Chat) accept(r request) (session.Accept, error) {
	q := r.Query()
	room := q.Get("room")
	if room == "" {
		room = DefaultRoom
	}
	if !validRoom(room) {
		return session.Accept{}, &session.RejectError{Status: http.StatusBadRequest,
			Message: "room must be 1-32 characters of A-Z a-z 0-9 . _ -"}
	}
	nick := q.Get("nick")
	if !validNick(nick) {
		return session.Accept{}, &session.RejectError{Status: http.StatusBadRequest,
			Message: "nick must be at most 24 printable characters"}
	}
	return session.Accept{Handler: ch, Value: &member{room: room, nick: nick}}, nil
}

func validRoom(s string) bool {
	if len(s) == 0 || len(s) > MaxRoomName {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func validNick(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNick {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// OnOpen joins the member's room and announces it.
func (ch *Chat) OnOpen(c *session.Conn) {
	m, _ := c.Value().(*member)
	if m == nil { // routed here without accept: defaults
		m = &member{room: DefaultRoom}
		c.SetValue(m)
	}
	if m.nick == "" {
		m.nick = "guest-" + strconv.FormatUint(ch.guests.Add(1), 10)
	}
	ch.mu.Lock()
	r := ch.rooms[m.room]
	if r == nil {
		r = &chatRoom{room: loop.NewRoom()}
		ch.rooms[m.room] = r
	}
	r.members++
	announce := r.members <= MaxAnnouncedRoom
	r.room.Join(c.Handle())
	ch.mu.Unlock()
	if announce {
		r.room.Publish(session.Text, []byte("* "+m.nick+" joined"))
	}
}

// OnMessage publishes a text message to the room; binary messages are not
// chat (1003), and overlong ones are refused (1009).
func (ch *Chat) OnMessage(c *session.Conn, op session.Opcode, p []byte) {
	m, _ := c.Value().(*member)
	if m == nil {
		return
	}
	if op != session.Text {
		_ = c.Close(session.StatusUnsupported, "chat takes text messages")
		return
	}
	if len(p) > MaxChatMessage {
		_ = c.Close(session.StatusTooBig, "chat messages are at most 4 KiB")
		return
	}
	ch.mu.Lock()
	r := ch.rooms[m.room]
	ch.mu.Unlock()
	if r == nil {
		return
	}
	msg := make([]byte, 0, len(m.nick)+2+len(p))
	msg = append(append(append(msg, m.nick...), ": "...), p...)
	r.room.Publish(session.Text, msg)
}

// OnClose leaves the room, removes it when it is empty, and announces the
// departure to those who stay.
func (ch *Chat) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	m, _ := c.Value().(*member)
	if m == nil {
		return
	}
	ch.mu.Lock()
	r := ch.rooms[m.room]
	if r == nil {
		ch.mu.Unlock()
		return
	}
	r.room.Leave(c.Handle())
	r.members--
	empty := r.members == 0
	if empty {
		delete(ch.rooms, m.room)
	}
	announce := !empty && r.members < MaxAnnouncedRoom
	ch.mu.Unlock()
	if announce {
		r.room.Publish(session.Text, []byte("* "+m.nick+" left"))
	}
}
