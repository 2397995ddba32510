package core

import (
	"net/netip"
	"time"

	"github.com/wsloop/wsloop/session"
)

// Observer is what the core reports for metrics: loop.Observer without
// Started (see its documentation for when each method is called).
type Observer interface {
	Accepted(loop int)
	Refused(loop int, reason RefuseReason)
	HandshakeFailed(loop int, status int, took time.Duration)
	Opened(loop int, took time.Duration)
	Closed(loop int, code session.StatusCode)
	MessagesIn(loop int, messages, bytes int)
	MessagesOut(loop int, messages, bytes int)
	Overflowed(loop int, policy session.Overflow)
	LoopTick(loop int, lag, busy time.Duration)
	FanOut(loop int, members int, took time.Duration)
}

// RefuseReason says which server limit refused a connection.
type RefuseReason uint8

const (
	RefuseCapacity RefuseReason = iota
	RefusePerIP
	RefuseHandshakeRate
	RefuseHandshakesInProgress
	RefuseShuttingDown
	NumRefuseReasons
)

var refuseNames = [NumRefuseReasons]string{
	RefuseCapacity:             "capacity",
	RefusePerIP:                "per_ip",
	RefuseHandshakeRate:        "handshake_rate",
	RefuseHandshakesInProgress: "handshakes_in_progress",
	RefuseShuttingDown:         "shutting_down",
}

// String returns the reason as a metric label value.
func (r RefuseReason) String() string {
	if r < NumRefuseReasons {
		return refuseNames[r]
	}
	return "unknown"
}

// tickEvery is how often a loop reports LoopTick.
const tickEvery = int64(time.Second)

// observeCall reports what a call into c's machine did (settle calls it
// before acting on the answer).
func (l *Loop) observeCall(c *Conn, ev *session.Events) {
	o := l.g.obs
	if o == nil {
		return
	}
	if ev.In > 0 {
		o.MessagesIn(l.idx, ev.In, ev.InBytes)
	}
	if ev.Out > 0 {
		o.MessagesOut(l.idx, ev.Out, ev.OutBytes)
	}
	for range ev.Overflowed {
		o.Overflowed(l.idx, c.m.Config().Overflow)
	}
	if ev.Opened {
		c.flags |= flagCounted
		o.Opened(l.idx, c.m.HandshakeTook(Now()))
	} else if ev.Status != 0 && c.flags&flagCounted == 0 {
		c.flags |= flagCounted
		o.HandshakeFailed(l.idx, ev.Status, c.m.HandshakeTook(Now()))
	}
	if ev.Reported {
		o.Closed(l.idx, ev.Code)
	}
}

// Accepted reports an accepted socket to the Observer.
func (l *Loop) Accepted() {
	if o := l.g.obs; o != nil {
		o.Accepted(l.idx)
	}
}

// Refused reports a connection a limit refused to the Observer.
func (l *Loop) Refused(reason RefuseReason) {
	if o := l.g.obs; o != nil {
		o.Refused(l.idx, reason)
	}
}

// Idle and Awake bracket a driver's wait in its poller: the time between
// them is the loop's idle time, the rest its busy time (LoopTick).
func (l *Loop) Idle() { l.idleAt = Now() }

// Awake ends an Idle.
func (l *Loop) Awake() {
	now := Now()
	if l.idleAt != 0 {
		l.idle += now - l.idleAt
		l.idleAt = 0
	}
}

// tickReport sends LoopTick once a second: lag is the latest any timer ran
// since the last report, busy the time not spent in the poller.
func (l *Loop) tickReport(now int64) {
	o := l.g.obs
	if o == nil {
		return
	}
	if l.tickAt == 0 {
		l.tickAt, l.idle, l.lag = now, 0, 0
		return
	}
	if now-l.tickAt < tickEvery {
		return
	}
	busy := now - l.tickAt - l.idle
	o.LoopTick(l.idx, time.Duration(l.lag), time.Duration(max(busy, 0)))
	l.tickAt, l.idle, l.lag = now, 0, 0
}

// ---- Per-client limits ----

// Limits enforce per-client and global handshake limits at accept (and,
// for clients behind a trusted proxy, once their request is read).
type Limits interface {
	// Admit counts a connection of client a; ok false refuses it for
	// reason. The ticket goes back to Release when it ends.
	Admit(a netip.Addr, now int64) (ticket uint32, reason RefuseReason, ok bool)
	Release(ticket uint32, now int64)
	// BeginHandshake takes a place among the handshakes in progress;
	// false at the bound. EndHandshake gives it back.
	BeginHandshake() bool
	EndHandshake()
	// Proxied reports whether a is a trusted proxy: its clients are
	// admitted once their request names them (Client).
	Proxied(a netip.Addr) bool
	// Client is the client address a proxied request names.
	Client(peer netip.Addr, r *session.Request) netip.Addr
}

// refusals are the answers to refused connections.
var refusals = [NumRefuseReasons][]byte{
	RefuseCapacity:             []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"),
	RefusePerIP:                []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"),
	RefuseHandshakeRate:        []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"),
	RefuseHandshakesInProgress: []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"),
	RefuseShuttingDown:         []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
}

// RefusalResponse is the HTTP answer to a connection refused for reason.
func RefusalResponse(reason RefuseReason) []byte { return refusals[reason] }
