package demo

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/wsloop/wsloop/bus"
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
//
// On a bus (NewChatOn) a room spans every process on it: members of room
// "lobby" in all processes talk together, through the bus topic
// "chat.lobby". Each process then counts only its own members (Members, and
// the MaxAnnouncedRoom rule: with P processes up to P x MaxAnnouncedRoom
// joins are announced, each to the whole room), and guests are called
// guest-TAG-N with a random TAG per process so that two processes do not
// hand out the same name.
//
// Members are WebSocket connections (/ws/chat) and event streams
// (/sse/chat, which say things with POST /sse/chat/send: see Stream and
// Post) alike.
type Chat struct {
	rooms  *bus.Rooms
	bus    bus.Bus
	onBus  bool
	guest  string // guest name prefix
	guests atomic.Uint64

	tag       string // this process's part of stream ids: 8 random hex digits
	mu        sync.Mutex
	streams   map[string]*member // by stream id
	cancel    func()             // the bus subscription for POSTs made elsewhere
	lostPosts atomic.Uint64      // POSTs passed on by other processes for streams gone
}

// member is a chat connection's user value.
type member struct {
	room  string
	nick  string
	last  string // a stream's Last-Event-ID, until OnOpen
	token string // a stream's id, for its POSTs
}

// ChatTopicPrefix is put before a room's name to make its bus topic.
const ChatTopicPrefix = "chat."

// NewChat returns a chat with no rooms, in this process only.
func NewChat() *Chat { return NewChatOn(nil) }

// NewChatOn returns a chat whose rooms span the processes on b (nil: this
// process only).
func NewChatOn(b bus.Bus) *Chat {
	ch := &Chat{
		rooms: bus.NewRoomsWith(b, ChatTopicPrefix, loop.RoomOptions{History: ChatHistory, HistoryBytes: ChatHistoryBytes}),
		bus:   b, onBus: b != nil, guest: "guest-", streams: make(map[string]*member),
	}
	var tag [4]byte
	_, _ = rand.Read(tag[:])
	ch.tag = hex.EncodeToString(tag[:])
	if b != nil {
		ch.guest += ch.tag[:4] + "-"
		// Refused only when the bus is closed: POSTs made here still work.
		ch.cancel, _ = b.Subscribe(ChatPostTopicPrefix+ch.tag, ch.posted)
	}
	return ch
}

// Close cancels the bus subscription for POSTs made in other processes.
func (ch *Chat) Close() {
	if ch.cancel != nil {
		ch.cancel()
	}
}

// Rooms returns the number of rooms that have members (in this process).
func (ch *Chat) Rooms() int { return ch.rooms.Len() }

// Members returns the number of members of room name (in this process).
func (ch *Chat) Members(name string) int { return ch.rooms.Members(name) }

// Stats returns the rooms' counters (messages from other processes, bus
// errors).
func (ch *Chat) Stats() bus.RoomStats { return ch.rooms.Stats() }

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

// OnOpen joins the member's room and announces it. A stream first hears
// its id (the "hello" event), then, when it resumes (Last-Event-ID), what
// it missed.
func (ch *Chat) OnOpen(c *session.Conn) {
	m, _ := c.Value().(*member)
	if m == nil { // routed here without accept: defaults
		m = &member{room: DefaultRoom}
		c.SetValue(m)
	}
	if m.nick == "" {
		m.nick = ch.guest + strconv.FormatUint(ch.guests.Add(1), 10)
	}
	// A bus that refuses the subscription leaves the member in the room
	// with this process's members only; the bus's counters show it.
	var members int
	if c.State() == session.StateStream {
		ch.openStream(c, m)
		members, _, _ = ch.rooms.JoinFrom(m.room, c, m.last, 0)
	} else {
		members, _ = ch.rooms.Join(m.room, c.Handle())
	}
	if members <= MaxAnnouncedRoom {
		_ = ch.rooms.Publish(m.room, session.Text, []byte("* "+m.nick+" joined"))
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
	ch.say(m, p)
}

// say publishes text to m's room as "nick: text".
func (ch *Chat) say(m *member, text []byte) {
	msg := make([]byte, 0, len(m.nick)+2+len(text))
	msg = append(append(append(msg, m.nick...), ": "...), text...)
	// A bus error (ErrDropped) means the other processes miss this one
	// message; the local members have it and the bus counts it.
	_ = ch.rooms.Publish(m.room, session.Text, msg)
}

// OnClose leaves the room, removes it when it is empty, and announces the
// departure to those who stay (on a bus, those in other processes too).
func (ch *Chat) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	m, _ := c.Value().(*member)
	if m == nil {
		return
	}
	if m.token != "" {
		ch.closeStream(m)
	}
	left, ok := ch.rooms.Leave(m.room, c.Handle())
	if ok && (left > 0 || ch.onBus) && left < MaxAnnouncedRoom {
		_ = ch.rooms.Publish(m.room, session.Text, []byte("* "+m.nick+" left"))
	}
}
