package loop

// CONTRACT FILE: signatures fixed by the lead; bodies are implemented in the facade work.

import "github.com/wsloop/wsloop/session"

// Room is a set of connections that receive the same messages (a chat room,
// a topic). Publish encodes a message once and posts one task per loop, not
// one per connection. Safe for concurrent use.
type Room struct{}

// NewRoom returns an empty room.
func NewRoom() *Room { panic("unimplemented") }

// Join adds the connection h names.
func (r *Room) Join(h session.Handle) { panic("unimplemented") }

// Leave removes it; unknown handles are ignored.
func (r *Room) Leave(h session.Handle) { panic("unimplemented") }

// Len is the number of members.
func (r *Room) Len() int { panic("unimplemented") }

// Publish sends one message to every member.
func (r *Room) Publish(op session.Opcode, p []byte) { panic("unimplemented") }
