// Package chatrules holds the rules of wsloop's demo chat that both
// baseline servers follow, so that the benchmark compares the same
// application: the limits, and how a request names its room and nick.
package chatrules

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Limits, as in wsloop's demo chat (demo/chat.go).
const (
	DefaultRoom      = "lobby"
	MaxRoomName      = 32
	MaxNick          = 24
	MaxChatMessage   = 4 << 10 // bytes of text per chat message; over it: 1009
	MaxAnnouncedRoom = 100     // joins and leaves are announced in rooms up to this size
)

// ErrParams is the 400 answer to a bad room or nick.
var ErrParams = errors.New("room must be 1-32 characters of A-Z a-z 0-9 . _ -; nick at most 24 printable characters")

var guests atomic.Uint64

// Params reads ?room= and ?nick= from r: the room defaults to DefaultRoom,
// a missing nick becomes guest-N.
func Params(r *http.Request) (room, nick string, err error) {
	q := r.URL.Query()
	room, nick = q.Get("room"), q.Get("nick")
	if room == "" {
		room = DefaultRoom
	}
	if !validRoom(room) || !validNick(nick) {
		return "", "", ErrParams
	}
	if nick == "" {
		nick = "guest-" + strconv.FormatUint(guests.Add(1), 10)
	}
	return room, nick, nil
}

// Message is what a room receives when nick says p.
func Message(nick string, p []byte) []byte {
	return append(append(append(make([]byte, 0, len(nick)+2+len(p)), nick...), ": "...), p...)
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
