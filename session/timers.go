package session

import (
	"time"

	"github.com/gobwas/ws"
)

// Timers. A Conn starts no goroutine and holds no time.Timer: it keeps two
// millisecond stamps of the engine clock (uint32, compared wrap-safely, so
// good for deadlines up to 24 days away) and asks its engine for one Tick at
// the next decision point with Transport.SetTimer. Input only refreshes the
// last-input stamp; a Tick that comes early (the peer was active since the
// timer was armed) just re-arms it.

// msOf converts the engine clock (nanoseconds) to the stamp unit.
func msOf(now int64) uint32 { return uint32(now / int64(time.Millisecond)) }

// elapsed is the time in milliseconds from stamp s to now, wrap-safe.
func elapsed(nowMs, s uint32) int64 {
	d := int64(int32(nowMs - s))
	if d < 0 {
		return 0
	}
	return d
}

func durMs(d time.Duration) int64 { return int64(d / time.Millisecond) }

// tick takes the decisions that are due at now.
func (c *Conn) tick(now int64) {
	nowMs := msOf(now)
	cfg := c.cfg
	switch c.state {
	case StateHandshake:
		if elapsed(nowMs, c.stamp) >= durMs(cfg.handshakeTimeout()) {
			c.report(StatusAbnormal, "", &HandshakeError{Reason: "timed out waiting for the handshake"})
			c.closeTransport()
			return
		}
	case StateOpen:
		idle := elapsed(nowMs, c.lastIn)
		if cfg.IdleTimeout > 0 && idle >= durMs(cfg.IdleTimeout) {
			_ = c.Close(ws.StatusGoingAway, "idle timeout")
			return // exit stamps the closing deadline
		}
		if c.flags&fPing != 0 {
			if elapsed(nowMs, c.stamp) >= durMs(cfg.pongTimeout()) {
				c.report(StatusAbnormal, "", ErrPongTimeout)
				c.closeTransport()
				return
			}
		} else if cfg.PingInterval > 0 && idle >= durMs(cfg.PingInterval) {
			c.flags |= fPing
			c.stamp = nowMs
			if c.writePing() != nil {
				return
			}
		}
	case StateClosing:
		if c.flags&fStampPending != 0 {
			return // stamped and armed by exit
		}
		if elapsed(nowMs, c.stamp) >= durMs(cfg.closeTimeout()) {
			c.report(StatusAbnormal, "", ErrCloseTimeout)
			c.closeTransport()
			return
		}
	}
	c.arm(now)
}

// arm asks the engine for a Tick at the next deadline of the current state
// (or cancels the timer when there is none).
func (c *Conn) arm(now int64) {
	if c.flags&fTClosed != 0 || c.state == StateClosed {
		return
	}
	cfg := c.cfg
	var (
		due int64 // milliseconds from the stamps' origin, relative to now
		set bool
	)
	nowMs := msOf(now)
	until := func(s uint32, d time.Duration) {
		left := durMs(d) - elapsed(nowMs, s)
		if !set || left < due {
			due, set = left, true
		}
	}
	switch c.state {
	case StateHandshake:
		until(c.stamp, cfg.handshakeTimeout())
	case StateOpen:
		if cfg.IdleTimeout > 0 {
			until(c.lastIn, cfg.IdleTimeout)
		}
		if c.flags&fPing != 0 {
			until(c.stamp, cfg.pongTimeout())
		} else if cfg.PingInterval > 0 {
			until(c.lastIn, cfg.PingInterval)
		}
	case StateClosing:
		until(c.stamp, cfg.closeTimeout())
	}
	if !set {
		c.t.SetTimer(0)
		return
	}
	// Deadlines are whole milliseconds after the stamps; now's own
	// sub-millisecond part is removed so that msOf(at) is the deadline.
	at := (now/int64(time.Millisecond) + max(due, 0)) * int64(time.Millisecond)
	if at <= 0 {
		at = 1
	}
	c.t.SetTimer(at)
}
