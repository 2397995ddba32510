package session

import (
	"time"
)

// Timers. A Conn starts no goroutine and holds no time.Timer: it keeps two
// millisecond stamps of the engine clock (uint32, compared wrap-safely, so
// good for deadlines up to 24 days away: Config.Validate refuses longer
// ones) and answers Machine.Deadline with the next decision point. Input only
// refreshes the last-input stamp; a Tick that comes early (the peer was
// active since the deadline was asked) does nothing but ask to be rearmed.

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
		}
	case StateOpen:
		idle := elapsed(nowMs, c.lastIn)
		if cfg.IdleTimeout > 0 && idle >= durMs(cfg.IdleTimeout) {
			_ = c.Close(StatusGoingAway, "idle timeout")
			return
		}
		if c.flags&fPing != 0 {
			if elapsed(nowMs, c.stamp) >= durMs(cfg.pongTimeout()) {
				c.report(StatusAbnormal, "", ErrPongTimeout)
				c.closeTransport()
			}
		} else if pi := cfg.pingInterval(); pi > 0 && idle >= durMs(pi) {
			c.flags |= fPing
			c.stamp = nowMs
			c.writePing()
		}
	case StateStream:
		c.streamTick(nowMs)
	case StateClosing:
		if elapsed(nowMs, c.stamp) >= durMs(cfg.closeTimeout()) {
			c.report(StatusAbnormal, "", ErrCloseTimeout)
			c.closeTransport()
		}
	}
}

// deadline is the next decision point of the current state (engine clock),
// or 0 when there is none.
func (c *Conn) deadline(now int64) int64 {
	if c.flags&fTClosed != 0 {
		return 0
	}
	cfg := c.cfg
	var (
		due int64 // milliseconds from now
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
		} else if pi := cfg.pingInterval(); pi > 0 {
			until(c.lastIn, pi)
		}
	case StateStream:
		if pi := cfg.pingInterval(); pi > 0 {
			until(c.stamp, pi) // the heartbeat after the last output
		}
	case StateClosing:
		until(c.stamp, cfg.closeTimeout())
	}
	if !set {
		return 0
	}
	// Deadlines are whole milliseconds after the stamps; now's own
	// sub-millisecond part is removed so that msOf(at) is the deadline.
	at := (now/int64(time.Millisecond) + max(due, 0)) * int64(time.Millisecond)
	return max(at, 1)
}
