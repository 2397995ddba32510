package session

import (
	"sync/atomic"
	"time"
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

// Config is shared by many connections (typically all of one server) and must
// not be changed once a Conn uses it.
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

	MaxMessage       int // largest message in bytes (after reassembly); default 1 MiB; over it: 1009
	MaxRequestHeader int // largest handshake head; default 8 KiB; over it: 431
	HighWater        int // unsent bytes per connection before Overflow applies; default 1 MiB
	Overflow         Overflow

	HandshakeTimeout time.Duration // default 10s (slowloris guard); server role
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
