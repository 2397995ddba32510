package bridge

import (
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// command is one parsed command line. Its byte fields are views of the line
// or of the parser's scratch buffers: valid until the next line.
type command struct {
	name, id, room, reason []byte
	code                   int64
	hasCode                bool
	op                     session.Opcode // Text or Binary when the command carries a message; 0 when not
	payload                []byte
}

// commandParser parses command lines, reusing its buffers.
type commandParser struct {
	s   jsonScanner
	bin []byte // decoded base64
}

var (
	errNoCommand = errors.New(`no "cmd"`)
	errBadBase64 = errors.New(`"binary" is not standard base64`)
	errUnknown   = errors.New("unknown command")
	errNoPayload = errors.New(`needs "text" or "binary"`)
	errNoRoom    = errors.New(`needs "room"`)
	errBadCode   = errors.New(`"code" must be 1000, 1001, 1008, 1011, 1012, 1013 or 3000-4999`)
)

// parse reads line into cmd.
func (p *commandParser) parse(line []byte, cmd *command) error {
	s := &p.s
	s.reset(line)
	*cmd = command{}
	if !s.expect('{') {
		return errJSON
	}
	if !s.expect('}') {
		for {
			key, err := s.str()
			if err != nil || !s.expect(':') {
				return errJSON
			}
			switch string(key) {
			case "cmd":
				cmd.name, err = s.str()
			case "id":
				cmd.id, err = s.str()
			case "room":
				cmd.room, err = s.str()
			case "reason":
				cmd.reason, err = s.str()
			case "code":
				cmd.code, err = s.integer()
				cmd.hasCode = true
			case "text":
				cmd.payload, err = s.str()
				cmd.op = session.Text
			case "binary":
				var v []byte
				if v, err = s.str(); err == nil {
					n := base64.StdEncoding.DecodedLen(len(v))
					if cap(p.bin) < n {
						p.bin = make([]byte, n)
					}
					n, err = base64.StdEncoding.Decode(p.bin[:n], v)
					if err != nil {
						return errBadBase64
					}
					cmd.payload, cmd.op = p.bin[:n], session.Binary
				}
			default:
				err = s.skip()
			}
			if err != nil {
				return errJSON
			}
			if s.expect('}') {
				break
			}
			if !s.expect(',') {
				return errJSON
			}
		}
	}
	if s.space(); s.i != len(s.b) {
		return errJSON
	}
	if cmd.name == nil {
		return errNoCommand
	}
	if cmd.op == session.Text {
		// A text message must be valid UTF-8; raw invalid bytes in the
		// line are replaced (lone \u surrogates already were).
		cmd.payload = validUTF8(cmd.payload)
	}
	return nil
}

// execute carries out one command, in order: a command's effect on the
// bridge's state (rooms) is complete before the next command is read, and
// messages to one connection go to its loop in order.
func (b *Backend) execute(cmd *command) error {
	switch string(cmd.name) {
	case "send":
		if cmd.op == 0 {
			return errNoPayload
		}
		b.mu.Lock()
		h, _, ok := b.handleOf(cmd.id)
		b.mu.Unlock()
		if !ok {
			b.dropped.Add(1) // usually a connection that closed meanwhile
			return nil
		}
		b.send(h, cmd.op, cmd.payload)
	case "broadcast":
		if cmd.op == 0 {
			return errNoPayload
		}
		b.broadcast(cmd.op, cmd.payload)
	case "join", "leave":
		if len(cmd.room) == 0 {
			return errNoRoom
		}
		if !b.joinLeave(cmd.id, cmd.room, cmd.name[0] == 'j') {
			return nil // closed meanwhile: nothing to do
		}
	case "publish":
		if len(cmd.room) == 0 {
			return errNoRoom
		}
		if cmd.op == 0 {
			return errNoPayload
		}
		b.publish(cmd.room, cmd.op, cmd.payload)
	case "close":
		code := int64(session.StatusNormal)
		if cmd.hasCode {
			code = cmd.code
		}
		switch {
		case code == 1000, code == 1001, code == 1008, code == 1011, code == 1012, code == 1013, 3000 <= code && code <= 4999:
		default:
			return errBadCode
		}
		b.mu.Lock()
		h, _, ok := b.handleOf(cmd.id)
		b.mu.Unlock()
		if !ok {
			return nil
		}
		reason := cmd.reason
		if len(reason) > 123 {
			reason = reason[:runeCut(reason[:123])]
		}
		rs := string(reason)
		_ = h.Do(func(c *session.Conn) {
			if b.entryOf(c) != nil {
				_ = c.Close(session.StatusCode(code), rs)
			}
		})
	default:
		return errUnknown
	}
	b.commands.Add(1)
	return nil
}

// sendTask carries one "send" to a connection's loop. Tasks are pooled and
// their functions bound once, so a send allocates nothing in the steady
// state: a task goes back to the pool when it has run, or when its
// connection had gone (missed).
type sendTask struct {
	b        *Backend
	op       session.Opcode
	p        []byte
	fn       func(*session.Conn)
	missedFn func()
}

var sendTasks sync.Pool

func init() {
	sendTasks.New = func() any {
		t := new(sendTask)
		t.fn, t.missedFn = t.run, t.missed
		return t
	}
}

// maxPooledPayload: tasks that carried larger messages are not kept.
const maxPooledPayload = 64 << 10

// send posts p to the connection h. While h's loop has its task queue full
// (session.ErrQueueFull) it waits and tries again, which stops the reading
// of commands meanwhile: the backend is held up only by a saturated loop,
// never by one slow client.
func (b *Backend) send(h session.Handle, op session.Opcode, p []byte) {
	t := sendTasks.Get().(*sendTask)
	t.b, t.op, t.p = b, op, append(t.p[:0], p...)
	for wait := stallMin; ; wait = min(2*wait, stallMax) {
		err := h.Executor().Execute(h.ID(), t.fn, t.missedFn, len(t.p))
		if err == nil {
			return
		}
		if !errors.Is(err, session.ErrQueueFull) {
			b.dropped.Add(1)
			t.release()
			return
		}
		time.Sleep(wait)
	}
}

func (t *sendTask) run(c *session.Conn) {
	if t.b.entryOf(c) == nil || c.Send(t.op, t.p) != nil {
		t.b.dropped.Add(1)
	}
	t.release()
}

func (t *sendTask) missed() {
	t.b.dropped.Add(1)
	t.release()
}

func (t *sendTask) release() {
	t.b = nil
	if cap(t.p) <= maxPooledPayload {
		t.p = t.p[:0]
		sendTasks.Put(t)
	}
}

// broadcast sends one message to every connection of the current backend:
// encoded once, one task per loop.
func (b *Backend) broadcast(op session.Opcode, p []byte) {
	m := session.NewPrepared(op, p)
	b.mu.Lock()
	groups := b.reg.groups()
	b.mu.Unlock()
	xs := *b.execs.Load()
	fn := func(c *session.Conn) {
		if b.entryOf(c) == nil || c.SendPrepared(m) != nil {
			b.dropped.Add(1)
		}
	}
	for xi, ids := range groups {
		if err := xs[xi].ExecuteAll(ids, fn, len(m.Frame())); err != nil {
			b.dropped.Add(uint64(len(ids))) // that loop is saturated or stopped
		}
	}
}

// backendRoom is a room of a Backend; it exists while it has members.
type backendRoom struct {
	name string
	room *loop.Room
	n    int // members, counted under roomsMu
}

// joinLeave adds the connection id names to (or removes it from) room
// name. It reports false when id names no open connection. b.mu is held
// throughout, so the connection's OnClose (which releases its entry under
// b.mu, then leaves its rooms) cannot slip in between the check and the
// join.
func (b *Backend) joinLeave(id, name []byte, join bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, _, ok := b.handleOf(id)
	if !ok {
		return false
	}
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	rs := b.members[h]
	at := -1
	for i, r := range rs {
		if r.name == string(name) {
			at = i
		}
	}
	switch {
	case join && at < 0:
		r := b.rooms[string(name)]
		if r == nil {
			r = &backendRoom{name: string(name), room: loop.NewRoom()}
			b.rooms[r.name] = r
		}
		r.room.Join(h)
		r.n++
		b.members[h] = append(rs, r)
	case !join && at >= 0:
		b.leave(h, rs[at])
		rs[at] = rs[len(rs)-1]
		if rs = rs[:len(rs)-1]; len(rs) == 0 {
			delete(b.members, h)
		} else {
			b.members[h] = rs
		}
	}
	return true
}

// leave removes h from r (under roomsMu), and r when it is empty.
func (b *Backend) leave(h session.Handle, r *backendRoom) {
	r.room.Leave(h)
	if r.n--; r.n == 0 && b.rooms[r.name] == r {
		delete(b.rooms, r.name)
	}
}

// leaveAll removes a closed connection from every room it joined.
func (b *Backend) leaveAll(h session.Handle) {
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	for _, r := range b.members[h] {
		b.leave(h, r)
	}
	delete(b.members, h)
}

// publish sends a message to every member of a room (if it exists).
func (b *Backend) publish(name []byte, op session.Opcode, p []byte) {
	b.roomsMu.Lock()
	r := b.rooms[string(name)]
	b.roomsMu.Unlock()
	if r != nil && r.room.Publish(op, p) != nil {
		b.dropped.Add(1) // a loop refused it (session.ErrQueueFull): its members miss it
	}
}

// resetRooms forgets every room (the backend that made them has gone).
func (b *Backend) resetRooms() {
	b.roomsMu.Lock()
	b.rooms = make(map[string]*backendRoom)
	b.members = make(map[session.Handle][]*backendRoom)
	b.roomsMu.Unlock()
}
