package session

import (
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/codec"
)

// Overflow is what happens when a connection's unsent bytes pass Config.HighWater.
type Overflow uint8

const (
	// OverflowError makes Send return ErrBackpressure; the message is not queued.
	OverflowError Overflow = iota
	// OverflowDrop drops the message silently and counts it in Stats.Dropped.
	OverflowDrop
	// OverflowClose1008 closes the connection with 1008 (policy violation).
	OverflowClose1008
	// OverflowClose1013 closes the connection with 1013 (try again later).
	OverflowClose1013
)

// Defaults for the zero values of Config fields.
const (
	DefaultMaxMessage       = 1 << 20
	DefaultMaxRequestHeader = codec.DefaultMaxRequestHeader
	DefaultHighWater        = 1 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultCloseTimeout     = 5 * time.Second
)

// Config is shared by many connections (typically all of one server) and must
// not be changed once a Conn uses it. Zero (or negative) limits and timeouts
// mean the documented defaults; a Conn applies them when it reads a field, so
// a Config works as it is. Normalize writes the defaults into the fields, for
// callers that want to show or log the effective values.
type Config struct {
	Role Role

	// Handler handles connections for which Upgrade chose none.
	Handler Handler
	// Upgrade, when set, decides each valid upgrade request (authentication,
	// Origin checks, per-path handlers). Server role only.
	Upgrade UpgradeFunc
	// HTTP, when set, takes requests without an upgrade; when nil they get 426.
	HTTP HTTPFunc
	// Protocols are the subprotocols the server supports, most preferred first.
	Protocols []string

	MaxMessage       int // largest message in bytes (after reassembly); default 1 MiB, at most 2 GiB - 1; over it: 1009
	MaxRequestHeader int // largest handshake head; default 8 KiB; over it: 431
	HighWater        int // unsent bytes per connection before Overflow applies; default 1 MiB
	Overflow         Overflow

	HandshakeTimeout time.Duration // default 10s (slowloris guard); both roles (client: the response)
	IdleTimeout      time.Duration // close after this long without input; 0: never
	PingInterval     time.Duration // ping after this long without input; 0: never
	PongTimeout      time.Duration // close when no input this long after a ping; default 10s
	CloseTimeout     time.Duration // wait for the peer's close reply; default 5s

	// Stats, when set, counts events across all connections of this Config.
	Stats *Stats
}

// Stats are counters shared by the connections of one Config.
type Stats struct {
	Opened         atomic.Uint64
	Closed         atomic.Uint64
	Messages       atomic.Uint64 // messages delivered to handlers
	Dropped        atomic.Uint64 // messages dropped by OverflowDrop
	ProtocolErrors atomic.Uint64 // connections failed for a peer's protocol violation
	Panics         atomic.Uint64 // handler panics recovered
}

// Normalize replaces zero (or negative) limits and timeouts with their
// defaults. Call it once, before the Config is shared: it writes c. Conns do
// not need it (they apply the same defaults when reading a field) and never
// modify their Config.
func (c *Config) Normalize() {
	c.MaxMessage = c.maxMessage()
	c.MaxRequestHeader = c.maxRequestHeader()
	c.HighWater = c.highWater()
	c.HandshakeTimeout = c.handshakeTimeout()
	c.PongTimeout = c.pongTimeout()
	c.CloseTimeout = c.closeTimeout()
	if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.PingInterval < 0 {
		c.PingInterval = 0
	}
}

func (c *Config) maxMessage() int {
	if c.MaxMessage <= 0 {
		return DefaultMaxMessage
	}
	return int(min(int64(c.MaxMessage), maxMessageCap))
}

func (c *Config) maxRequestHeader() int {
	if c.MaxRequestHeader <= 0 {
		return DefaultMaxRequestHeader
	}
	return c.MaxRequestHeader
}

func (c *Config) highWater() int {
	if c.HighWater <= 0 {
		return DefaultHighWater
	}
	return c.HighWater
}

func (c *Config) handshakeTimeout() time.Duration {
	if c.HandshakeTimeout <= 0 {
		return DefaultHandshakeTimeout
	}
	return c.HandshakeTimeout
}

func (c *Config) pongTimeout() time.Duration {
	if c.PongTimeout <= 0 {
		return DefaultPongTimeout
	}
	return c.PongTimeout
}

func (c *Config) closeTimeout() time.Duration {
	if c.CloseTimeout <= 0 {
		return DefaultCloseTimeout
	}
	return c.CloseTimeout
}

// maxMessageCap bounds MaxMessage (2 GiB - 1) so that a frame's length fits
// the 32-bit counter a Conn keeps, and an int on 32-bit platforms.
const maxMessageCap = 1<<31 - 1
