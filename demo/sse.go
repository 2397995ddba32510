package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wsloop/wsloop/session"
)

// The demo over Server-Sent Events: the push feed and the chat rooms for
// clients that cannot (or may not) open a WebSocket, on the same topics,
// served on the event loops (session.Conn.StartStream: no goroutine per
// subscriber). Down is an event stream, up (chat) a POST, as socket.io and
// SockJS degrade:
//
//	GET  /sse/push                the readings: "id: push-<seq>", "data: {...}"
//	GET  /sse/chat?room=R&nick=N  a chat room: first an event "hello" with
//	                              {"id":"...","nick":"...","room":"..."}, then
//	                              every message as /ws/chat sends it
//	POST /sse/chat/send?id=ID     the body (UTF-8 text, at most MaxChatMessage
//	                              bytes) is said in the room as the stream
//	                              whose hello carried ID: 204; 404 when no
//	                              such stream is open
//
// Streams resume with Last-Event-ID (loop.Room.JoinFrom): the push feed
// keeps PushHistory readings, a chat room ChatHistory messages while it has
// members in the process; past that a stream gets an event "gap" first.
// Browsers from other sites are refused with 403 (the server's
// AllowedOrigins, as for upgrades), and any method but the one of the
// route with 405.
//
// On a bus, a POST may reach another process than its stream's (the kernel
// spreads connections over -procs workers, nginx over nodes): it is passed
// on over the bus, to the topic ChatPostTopicPrefix + the process tag that
// starts the id, and answered 202; that process says it in the room if the
// stream is still open there (at most once, as the bus delivers).

// resumeFrom is an event stream's Last-Event-ID, its Value until OnOpen.
type resumeFrom string

// ChatPostTopicPrefix is put before a process's tag to make the bus topic
// of the chat messages POSTed for its streams elsewhere.
const ChatPostTopicPrefix = "chatpost."

// Chat rooms' history for streams that reconnect: at most ChatHistory
// messages and ChatHistoryBytes of text per room with members, so at worst
// (every connection a room of its own) about 32 KiB per connection.
const (
	ChatHistory      = 32
	ChatHistoryBytes = 16 << 10
)

// answer ends a plain request with a short text response.
func answer(c *session.Conn, r *session.Request, status int, text, header string) {
	keep := r.KeepAlive()
	b := make([]byte, 0, 128+len(text))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	b = append(b, header...)
	if status != http.StatusNoContent {
		b = append(b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(text)), 10)
		b = append(b, "\r\n"...)
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if status != http.StatusNoContent && r.Method() != http.MethodHead {
		b = append(b, text...)
	}
	_ = c.WriteHTTP(b)
	_ = c.EndHTTP(keep)
}

// streamable answers the requests an event-stream route does not take:
// other methods (405) and other sites' pages (403).
func streamable(c *session.Conn, r *session.Request) bool {
	switch {
	case r.Method() != http.MethodGet:
		answer(c, r, http.StatusMethodNotAllowed, "GET an event stream here\n", "Allow: GET\r\n")
		return false
	case !r.OriginAllowed():
		answer(c, r, http.StatusForbidden, "origin not allowed\n", "")
		return false
	}
	return true
}

// Stream serves GET /sse/push: the feed as an event stream (a
// Router.HandleLoop handler).
func (p *Push) Stream(c *session.Conn, r *session.Request) {
	if streamable(c, r) {
		_ = c.StartStream(session.Accept{Handler: p, Value: resumeFrom(r.Header("Last-Event-ID"))})
	}
}

// Stream serves GET /sse/chat?room=R&nick=N: a member of the room as an
// event stream (a Router.HandleLoop handler).
func (ch *Chat) Stream(c *session.Conn, r *session.Request) {
	if !streamable(c, r) {
		return
	}
	acc, err := ch.accept(r)
	if err != nil {
		re, _ := err.(*session.RejectError)
		answer(c, r, re.Status, re.Message+"\n", "")
		return
	}
	acc.Value.(*member).last = r.Header("Last-Event-ID")
	_ = c.StartStream(acc)
}

// hello is the first event of a chat stream.
type hello struct {
	ID   string `json:"id"`
	Nick string `json:"nick"`
	Room string `json:"room"`
}

// openStream gives a chat stream its id and tells the client (OnOpen).
func (ch *Chat) openStream(c *session.Conn, m *member) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	m.token = ch.tag + "." + hex.EncodeToString(b[:])
	ch.mu.Lock()
	ch.streams[m.token] = m
	ch.mu.Unlock()
	ev, _ := json.Marshal(hello{ID: m.token, Nick: m.nick, Room: m.room})
	_ = c.SendEvent("hello", ev)
}

// closeStream forgets a chat stream's id (OnClose).
func (ch *Chat) closeStream(m *member) {
	ch.mu.Lock()
	delete(ch.streams, m.token)
	ch.mu.Unlock()
}

// Post serves POST /sse/chat/send?id=ID (a Router.HandleLoop handler).
func (ch *Chat) Post(c *session.Conn, r *session.Request) {
	body := r.Body()
	switch {
	case r.Method() != http.MethodPost:
		answer(c, r, http.StatusMethodNotAllowed, "POST a chat message here\n", "Allow: POST\r\n")
		return
	case !r.OriginAllowed():
		answer(c, r, http.StatusForbidden, "origin not allowed\n", "")
		return
	case len(body) > MaxChatMessage:
		answer(c, r, http.StatusRequestEntityTooLarge, "chat messages are at most 4 KiB\n", "")
		return
	case !utf8.Valid(body):
		answer(c, r, http.StatusBadRequest, "chat messages are UTF-8 text\n", "")
		return
	}
	id := r.Query().Get("id")
	ch.mu.Lock()
	m := ch.streams[id]
	ch.mu.Unlock()
	if m != nil {
		ch.say(m, body)
		answer(c, r, http.StatusNoContent, "", "")
		return
	}
	tag, _, ok := strings.Cut(id, ".")
	if _, err := hex.DecodeString(tag); !ok || err != nil || len(tag) != len(ch.tag) || tag == ch.tag || ch.bus == nil {
		answer(c, r, http.StatusNotFound, "no such chat stream (reconnect)\n", "")
		return
	}
	msg := make([]byte, 0, len(id)+1+len(body))
	msg = append(append(append(msg, id...), '\n'), body...)
	if err := ch.bus.Publish(ChatPostTopicPrefix+tag, session.Text, msg); err != nil {
		answer(c, r, http.StatusServiceUnavailable, "the message bus refused it: "+err.Error()+"\n", "")
		return
	}
	answer(c, r, http.StatusAccepted, "passed on to the stream's process\n", "")
}

// posted takes a chat message POSTed in another process for a stream of
// this one (the bus's delivery goroutine).
func (ch *Chat) posted(op session.Opcode, p []byte) {
	id, text, ok := strings.Cut(string(p), "\n")
	ch.mu.Lock()
	m := ch.streams[id]
	ch.mu.Unlock()
	if !ok || m == nil {
		ch.lostPosts.Add(1)
		return
	}
	ch.say(m, []byte(text))
}
