package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/session"
)

// BackendOptions configure a Backend: either Command (a program wsloop
// starts and restarts) or Socket (a Unix socket a backend listens on).
type BackendOptions struct {
	// Command is the program and its arguments. Its stdin carries events,
	// its stdout commands, its stderr goes to the log.
	Command []string
	// Socket is the path of a Unix socket (a "unix://" prefix is allowed) on
	// which a backend accepts one connection carrying events one way and
	// commands the other.
	Socket string
	// Dir is the program's working directory; PassEnv names variables of
	// wsloop's environment it gets (PATH always); Env adds "NAME=value".
	Dir     string
	PassEnv []string
	Env     []string
	// QueueBytes bounds the events waiting for the backend to read them;
	// default 4 MiB. See the package documentation for what happens at the
	// bound.
	QueueBytes int
	// Headers are the request headers an open event carries (those the
	// request has, first value only); default DefaultHeaders. ["*"] passes
	// every header (repeated ones joined with ", "), which costs an upgrade
	// a few hundred bytes of garbage more.
	Headers []string
	// NoRemoteAddr leaves the peer's address out of open events ("remote"
	// is then ""). Asking the engine for it (Request.RemoteAddr:
	// getpeername and a net.TCPAddr) leaves about 200 bytes of garbage per
	// upgrade, which TestMeasure sees in the server's RSS as about 390
	// bytes per idle connection at 6,000 connections; behind a proxy the
	// address that matters is in X-Forwarded-For anyway.
	NoRemoteAddr bool
	// MaxMessage is the largest message a command may carry (decoded);
	// default 1 MiB. Longer command lines are skipped and counted as bad.
	MaxMessage int
	// RestartMin and RestartMax bound the wait before restarting (or
	// reconnecting to) a backend that has gone: it starts at RestartMin
	// (default 100 ms) and doubles up to RestartMax (default 10 s), and
	// starts over once a backend has run for 10 s.
	RestartMin, RestartMax time.Duration
	// TermDelay and KillDelay stop a program that is to go (Close, or a
	// broken link): its stdin is closed, SIGTERM follows after TermDelay
	// (default 1s) and SIGKILL KillDelay (default 2s) after that.
	TermDelay, KillDelay time.Duration
	// Logger receives the backend's stderr lines and the bridge's messages;
	// default slog.Default().
	Logger *slog.Logger
}

// Defaults of BackendOptions.
const (
	DefaultQueueBytes = 4 << 20
	DefaultMaxMessage = 1 << 20
	DefaultRestartMin = 100 * time.Millisecond
	DefaultRestartMax = 10 * time.Second
)

// restartReset is how long a backend must run for its restart wait to
// start over from RestartMin.
const restartReset = 10 * time.Second

// Backend is one shared backend for every connection routed to it: a
// long-running program (or a Unix socket peer) that receives the
// connections' events and sends commands, in the JSON-lines protocol of the
// package documentation. Safe for concurrent use.
type Backend struct {
	opts       BackendOptions
	allHeaders bool
	log        *slog.Logger
	program    string // resolved Command[0]
	h          backendHandler

	// mu guards the event queue, the link state and the registry; epoch
	// is written under it and read without it by tasks.
	mu      sync.Mutex
	up      bool
	epoch   atomic.Uint32 // the backend instance (link) now current; bumped when one goes
	q       []byte        // events not yet taken by the writer
	spare   []byte
	writing int // bytes the writer is writing now
	reg     registry
	execs   atomic.Pointer[[]session.Executor] // appended under mu
	wake    chan struct{}

	roomsMu sync.Mutex
	rooms   map[string]*backendRoom
	members map[session.Handle][]*backendRoom // only connections that joined a room

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	restarts, opened, closed, messages, refused, overloaded, commands, badCommands, dropped atomic.Uint64
	pid                                                                                     atomic.Int64 // the running program's, 0 when none
}

// BackendStats are a Backend's counters.
type BackendStats struct {
	Up          bool   // a backend is running (connected) and taking events
	Restarts    uint64 // backends started (or connected) after the first
	Conns       int    // connections the current backend was told about and that are still open
	QueueBytes  int    // event bytes waiting for the backend
	Opened      uint64 // open events queued
	Closed      uint64 // close events queued
	Messages    uint64 // message events queued
	Refused     uint64 // upgrades refused (503; 1013 when found after the upgrade): no backend, or the queue full
	Overloaded  uint64 // connections closed with 1013 because a message found the queue full
	Commands    uint64 // commands carried out
	BadCommands uint64 // command lines that were not valid (logged, skipped)
	Dropped     uint64 // sends not delivered: the connection had gone or was over its high-water mark
}

// NewBackend starts the backend (or connects to its socket) and keeps it
// running until Close. It returns once the first attempt is made: a program
// that could be started (or a socket that took the connection) takes events
// from then on; after a failure, logged, it is tried again in the
// background, and upgrades get 503 until it runs.
func NewBackend(opts BackendOptions) (*Backend, error) {
	b := &Backend{opts: opts, log: opts.Logger, reg: newRegistry(), wake: make(chan struct{}, 1),
		rooms: make(map[string]*backendRoom), members: make(map[session.Handle][]*backendRoom),
		stop: make(chan struct{}), done: make(chan struct{})}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.execs.Store(new([]session.Executor))
	switch {
	case len(opts.Command) > 0 && opts.Socket != "":
		return nil, errors.New("bridge: a backend is a Command or a Socket, not both")
	case len(opts.Command) > 0:
		p, err := exec.LookPath(opts.Command[0])
		if err != nil {
			return nil, fmt.Errorf("bridge: backend program %q: %w", opts.Command[0], err)
		}
		b.program = p
	case opts.Socket != "":
	default:
		return nil, errors.New("bridge: a backend needs a Command or a Socket")
	}
	if b.opts.Headers == nil {
		b.opts.Headers = DefaultHeaders
	}
	b.allHeaders = len(b.opts.Headers) == 1 && b.opts.Headers[0] == "*"
	if b.opts.QueueBytes <= 0 {
		b.opts.QueueBytes = DefaultQueueBytes
	}
	if b.opts.MaxMessage <= 0 {
		b.opts.MaxMessage = DefaultMaxMessage
	}
	if b.opts.RestartMin <= 0 {
		b.opts.RestartMin = DefaultRestartMin
	}
	if b.opts.RestartMax < b.opts.RestartMin {
		b.opts.RestartMax = max(DefaultRestartMax, b.opts.RestartMin)
	}
	if b.opts.TermDelay <= 0 {
		b.opts.TermDelay = DefaultTermDelay
	}
	if b.opts.KillDelay <= 0 {
		b.opts.KillDelay = DefaultKillDelay
	}
	b.h = backendHandler{b}
	first := make(chan struct{})
	go b.supervise(first)
	<-first
	return b, nil
}

// Stats returns the counters.
func (b *Backend) Stats() BackendStats {
	b.mu.Lock()
	up, conns, q := b.up, b.reg.n, len(b.q)+b.writing
	b.mu.Unlock()
	return BackendStats{
		Up: up, Restarts: b.restarts.Load(), Conns: conns, QueueBytes: q,
		Opened: b.opened.Load(), Closed: b.closed.Load(), Messages: b.messages.Load(),
		Refused: b.refused.Load(), Overloaded: b.overloaded.Load(), Commands: b.commands.Load(),
		BadCommands: b.badCommands.Load(), Dropped: b.dropped.Load(),
	}
}

// Close stops the backend (a program: stdin closed, then SIGTERM and
// SIGKILL after the delays; a socket: closed), closes its connections that
// are still open with 1001, and returns once every goroutine and
// descriptor of the Backend is gone. Call it after the server's Shutdown.
func (b *Backend) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.done
	return nil
}

// DefaultHeaders are the request headers an open event carries unless
// BackendOptions.Headers says otherwise.
var DefaultHeaders = []string{"Origin", "User-Agent", "Cookie", "Authorization", "X-Forwarded-For",
	"X-Real-Ip", "Sec-Websocket-Protocol", "Accept-Language"}

// openBufs pools the open events' fields prepared during the upgrade (a
// connection's Value until OnOpen), so that an upgrade leaves no garbage
// but the few strings the Request API copies.
var openBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Upgrade is the session.UpgradeFunc of the backend's routes. It refuses
// with 503 while no backend runs or while the event queue is full.
func (b *Backend) Upgrade(r *session.Request) (session.Accept, error) {
	b.mu.Lock()
	up, full := b.up, len(b.q)+b.writing >= b.opts.QueueBytes
	b.mu.Unlock()
	if !up || full {
		b.refused.Add(1)
		msg := "the backend is not running: try again later"
		if up {
			msg = "the backend is busy: try again later"
		}
		return session.Accept{}, &session.RejectError{Status: http.StatusServiceUnavailable, Message: msg, Header: "Retry-After: 1"}
	}
	return session.Accept{Handler: b.h, Value: b.openTail(r)}, nil
}

// openTail encodes the open event's fields after the id, from r (valid
// only during the upgrade):
//
//	,"path":...,"query":...,"remote":...,"headers":{...}}\n
func (b *Backend) openTail(r *session.Request) *[]byte {
	bp := openBufs.Get().(*[]byte)
	t := append((*bp)[:0], `,"path":`...)
	t = appendJSONStr(t, r.Path())
	t = append(t, `,"query":`...)
	t = appendJSONStr(t, r.RawQuery())
	t = append(t, `,"remote":`...)
	var ap netip.AddrPort
	if !b.opts.NoRemoteAddr {
		ap = r.RemoteAddrPort() // asked of the kernel, nothing allocated
	}
	if ap.IsValid() {
		t = append(t, '"')
		t = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(t)
		t = append(t, '"')
	} else {
		t = append(t, `""`...)
	}
	t = append(t, `,"headers":{`...)
	n := 0
	header := func(k, v string) {
		if n > 0 {
			t = append(t, ',')
		}
		n++
		t = appendJSONStr(t, k)
		t = append(t, ':')
		t = appendJSONStr(t, v)
	}
	if b.allHeaders {
		h, names := requestHeaders(r)
		for _, k := range names {
			header(k, strings.Join(h[k], ", "))
		}
	} else {
		for _, k := range b.opts.Headers {
			if v := r.Header(k); v != "" {
				header(k, v)
			}
		}
	}
	*bp = append(t, "}}\n"...)
	return bp
}

// backendHandler is the session.Handler of every connection of a Backend;
// a connection's Value is its *entry once open.
type backendHandler struct{ b *Backend }

func (h backendHandler) OnOpen(c *session.Conn) {
	b := h.b
	p, ok := c.Value().(*[]byte)
	c.SetValue(nil)
	if !ok {
		_ = c.Close(session.StatusInternalError, "no backend for this connection")
		return
	}
	hd := c.Handle()
	b.mu.Lock()
	if !b.up || len(b.q)+b.writing >= b.opts.QueueBytes {
		b.mu.Unlock()
		b.refused.Add(1)
		_ = c.Close(session.StatusTryAgainLater, "the backend is not available: try again later")
		return
	}
	xi, ok := b.executorIndex(hd.Executor())
	if !ok {
		b.mu.Unlock()
		_ = c.Close(session.StatusInternalError, "too many event loops")
		return
	}
	e := b.reg.alloc()
	e.id, e.epoch, e.xi = hd.ID(), uint16(b.epoch.Load()), xi
	b.q = append(b.q, `{"event":"open","id":"`...)
	b.q = appendID(b.q, e)
	b.q = append(b.q, '"')
	b.q = append(b.q, *p...)
	b.mu.Unlock()
	if cap(*p) <= 16<<10 {
		openBufs.Put(p)
	}
	b.opened.Add(1)
	c.SetValue(e)
	b.signal()
}

func (h backendHandler) OnMessage(c *session.Conn, op session.Opcode, p []byte) {
	b := h.b
	e, ok := c.Value().(*entry)
	if !ok {
		return
	}
	b.mu.Lock()
	if !b.up || e.epoch != uint16(b.epoch.Load()) {
		// Its backend has gone: the connection is being closed (1012).
		b.mu.Unlock()
		return
	}
	if len(b.q)+b.writing >= b.opts.QueueBytes {
		b.mu.Unlock()
		b.overloaded.Add(1)
		_ = c.Close(session.StatusTryAgainLater, "the backend is too slow: try again later")
		return
	}
	b.q = appendMessageEvent(b.q, e, op, p)
	b.mu.Unlock()
	b.messages.Add(1)
	b.signal()
}

func (h backendHandler) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	b := h.b
	e, ok := c.Value().(*entry)
	if !ok {
		return
	}
	c.SetValue(nil)
	told := false
	b.mu.Lock()
	if b.up && e.epoch == uint16(b.epoch.Load()) {
		// Close events are never refused: the backend must learn of every
		// connection it was told about leaving. They may take the queue
		// past its bound, by at most one event per open connection.
		told = true
		b.q = appendCloseEvent(b.q, e, code, reason)
	}
	b.reg.release(e)
	b.mu.Unlock()
	if told {
		b.closed.Add(1)
		b.signal()
	}
	b.leaveAll(c.Handle())
}

func (b *Backend) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// appendMessageEvent appends a message event line.
func appendMessageEvent(dst []byte, e *entry, op session.Opcode, p []byte) []byte {
	dst = append(dst, `{"event":"message","id":"`...)
	dst = appendID(dst, e)
	if op == session.Text {
		dst = append(dst, `","text":`...)
		dst = appendJSONString(dst, p)
	} else {
		dst = append(dst, `","binary":`...)
		dst = appendBase64(dst, p)
	}
	return append(dst, "}\n"...)
}

// appendCloseEvent appends a close event line.
func appendCloseEvent(dst []byte, e *entry, code session.StatusCode, reason string) []byte {
	dst = append(dst, `{"event":"close","id":"`...)
	dst = appendID(dst, e)
	dst = append(dst, `","code":`...)
	dst = appendUint(dst, uint64(code))
	dst = append(dst, `,"reason":`...)
	dst = appendJSONStr(dst, reason)
	return append(dst, "}\n"...)
}
