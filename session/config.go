package session

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/codec"
)

// Overflow is what a Send does once a connection's unsent bytes have reached
// Config.HighWater. Every byte a connection queues counts: data frames,
// pongs (of which only the latest waits past the mark: RFC 6455 5.5.3
// allows it) and the close frame. A message is admitted while the unsent
// bytes are under HighWater, the one that crosses the mark included, so a
// connection never holds more than HighWater plus its largest message (and
// a close frame): worst-case queued memory is that times the connections.
type Overflow uint8

const (
	// OverflowClose1008 (the default) treats the connection as a slow
	// consumer: the message is not queued, the connection is closed with
	// 1008 (policy violation, reason "slow consumer"), and Send returns
	// ErrClosed. Counted in Stats.SlowClosed.
	OverflowClose1008 Overflow = iota
	// OverflowClose1013 is OverflowClose1008 with 1013 (try again later).
	OverflowClose1013
	// OverflowDrop drops the message, counts it in Stats.Dropped and
	// returns ErrDropped; the connection stays open.
	OverflowDrop
	// OverflowError returns ErrBackpressure and queues nothing; a Drainer
	// hears when the queue has drained.
	OverflowError
)

func (o Overflow) String() string {
	switch o {
	case OverflowClose1008:
		return "close-1008"
	case OverflowClose1013:
		return "close-1013"
	case OverflowDrop:
		return "drop"
	case OverflowError:
		return "error"
	}
	return fmt.Sprintf("overflow %d", uint8(o))
}

// Defaults for the zero values of Config fields.
const (
	DefaultMaxMessage       = 1 << 20
	DefaultMaxRequestHeader = codec.DefaultMaxRequestHeader
	DefaultMaxRequestBody   = 1 << 20
	// DefaultHighWater bounds each connection's unsent bytes. The worst case
	// a server queues is HighWater x connections: 64 KiB x 20,000 = 1.25 GiB,
	// which a small machine can hold; raise it with care.
	DefaultHighWater        = 64 << 10
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultCloseTimeout     = 5 * time.Second
	DefaultWriteTimeout     = 30 * time.Second
)

// MaxTimeout is the longest timeout a Config may hold: connections keep
// millisecond stamps in 32 bits, compared wrap-safely.
const MaxTimeout = 24 * 24 * time.Hour

// Config is shared by many connections (typically all of one server) and must
// not be changed once a Conn uses it. Zero limits and timeouts mean the
// documented defaults; a Conn applies them when it reads a field, so a Config
// works as it is. Normalize writes the defaults into the fields, for callers
// that want to show or log the effective values, and Validate reports
// settings that cannot work.
type Config struct {
	Role Role

	// Handler handles connections for which Upgrade chose none.
	Handler Handler
	// Upgrade, when set, decides each valid upgrade request (authentication,
	// per-path handlers). Server role only. It runs after the Origin check.
	Upgrade UpgradeFunc
	// HTTP, when set, takes requests without an upgrade; when nil they get 426.
	HTTP HTTPFunc
	// Protocols are the subprotocols the server supports, most preferred first.
	Protocols []string

	// AllowedOrigins are the browser origins (scheme://host[:port], compared
	// case-insensitively) that may open a connection besides the server's
	// own; "*" allows every origin. By default only same-origin pages may: a
	// request whose Origin names another host is refused with 403 before
	// Upgrade runs. Requests without Origin (not browsers) are accepted.
	AllowedOrigins []string

	MaxMessage       int // largest message in bytes (after reassembly); default 1 MiB, at most 2 GiB - 1; over it: 1009
	MaxRequestHeader int // largest handshake head; default 8 KiB; over it: 431
	MaxRequestBody   int // largest plain HTTP request body; default 1 MiB; over it: 413
	HighWater        int // unsent bytes per connection before Overflow applies; default 64 KiB
	Overflow         Overflow

	HandshakeTimeout time.Duration // default 10s (slowloris guard); both roles (client: the response)
	IdleTimeout      time.Duration // close after this long without input; 0: never
	PingInterval     time.Duration // ping after this long without input; default 30s; negative: never
	PongTimeout      time.Duration // close when no input this long after a ping; default 10s
	CloseTimeout     time.Duration // wait for the peer's close reply; default 5s
	// WriteTimeout closes a connection whose queued bytes the peer has not
	// taken any of for this long (the socket is closed without a close
	// frame: nothing more can be sent); default 30s; negative: never. The
	// engine enforces it.
	WriteTimeout time.Duration

	// Compression, when set, negotiates permessage-deflate (RFC 7692):
	// a server accepts a client's offer, a client makes one. Nil: off.
	Compression *Compression

	// Stats, when set, counts events across all connections of this Config.
	Stats *Stats
}

// Stats are counters shared by the connections of one Config.
type Stats struct {
	Opened         atomic.Uint64
	Closed         atomic.Uint64
	Messages       atomic.Uint64 // messages delivered to handlers
	Dropped        atomic.Uint64 // messages dropped by OverflowDrop
	SlowClosed     atomic.Uint64 // connections closed by OverflowClose1008/1013 or WriteTimeout
	ProtocolErrors atomic.Uint64 // connections failed for a peer's protocol violation
	Panics         atomic.Uint64 // handler, hook and task panics recovered
	Compressed     atomic.Uint64 // connections opened with permessage-deflate negotiated
	Deflated       atomic.Uint64 // messages sent compressed
	Inflated       atomic.Uint64 // compressed messages received
}

// Normalize replaces zero limits and timeouts with their defaults. Call it
// once, before the Config is shared: it writes c. Conns do not need it (they
// apply the same defaults when reading a field) and never modify their
// Config.
func (c *Config) Normalize() {
	c.MaxMessage = c.maxMessage()
	c.MaxRequestHeader = c.maxRequestHeader()
	c.MaxRequestBody = c.maxRequestBody()
	c.HighWater = c.highWater()
	c.HandshakeTimeout = c.handshakeTimeout()
	c.PongTimeout = c.pongTimeout()
	c.CloseTimeout = c.closeTimeout()
	if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
}

// Validate reports a setting that cannot work: a timeout beyond MaxTimeout
// (it would never fire), a negative limit, an unknown Overflow.
func (c *Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HandshakeTimeout", c.HandshakeTimeout}, {"IdleTimeout", c.IdleTimeout},
		{"PingInterval", c.PingInterval}, {"PongTimeout", c.PongTimeout},
		{"CloseTimeout", c.CloseTimeout}, {"WriteTimeout", c.WriteTimeout},
	} {
		if d.v > MaxTimeout {
			return fmt.Errorf("session: %s %v is beyond the longest timeout a connection can keep (%v)", d.name, d.v, MaxTimeout)
		}
	}
	switch {
	case c.MaxMessage < 0:
		return fmt.Errorf("session: MaxMessage %d is negative", c.MaxMessage)
	case c.MaxRequestHeader < 0:
		return fmt.Errorf("session: MaxRequestHeader %d is negative", c.MaxRequestHeader)
	case c.MaxRequestBody < 0 || c.MaxRequestBody > maxMessageCap:
		return fmt.Errorf("session: MaxRequestBody %d is out of range", c.MaxRequestBody)
	case c.HighWater < 0:
		return fmt.Errorf("session: HighWater %d is negative", c.HighWater)
	case c.Overflow > OverflowError:
		return fmt.Errorf("session: unknown Overflow %d", c.Overflow)
	}
	return nil
}

// positive is v, or def when v is zero or negative.
func positive[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// optional is v, def when v is zero, and 0 (off) when v is negative.
func optional(v, def time.Duration) time.Duration {
	if v < 0 {
		return 0
	}
	return positive(v, def)
}

func (c *Config) maxMessage() int {
	return int(min(int64(positive(c.MaxMessage, DefaultMaxMessage)), maxMessageCap))
}

func (c *Config) maxRequestHeader() int { return positive(c.MaxRequestHeader, DefaultMaxRequestHeader) }
func (c *Config) maxRequestBody() int   { return positive(c.MaxRequestBody, DefaultMaxRequestBody) }
func (c *Config) highWater() int        { return positive(c.HighWater, DefaultHighWater) }

func (c *Config) handshakeTimeout() time.Duration {
	return positive(c.HandshakeTimeout, DefaultHandshakeTimeout)
}

func (c *Config) pingInterval() time.Duration { return optional(c.PingInterval, DefaultPingInterval) }
func (c *Config) pongTimeout() time.Duration  { return positive(c.PongTimeout, DefaultPongTimeout) }
func (c *Config) closeTimeout() time.Duration { return positive(c.CloseTimeout, DefaultCloseTimeout) }

// WriteTimeoutOrDefault is the effective WriteTimeout (0: never), for engines.
func (c *Config) WriteTimeoutOrDefault() time.Duration {
	return optional(c.WriteTimeout, DefaultWriteTimeout)
}

// maxMessageCap bounds MaxMessage (2 GiB - 1) so that a frame's length fits
// the 32-bit counter a Conn keeps, and an int on 32-bit platforms.
const maxMessageCap = 1<<31 - 1
