package clientlimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"sync/atomic"
	"time"
)

// Config sets the limits; a zero limit is no limit.
type Config struct {
	// MaxConnsPerClient is the most connections one client address may
	// hold open at once (handshaking included).
	MaxConnsPerClient int
	// HandshakeRate is the handshakes per second one client address may
	// start, sustained; HandshakeBurst more may come at once.
	HandshakeRate float64
	// HandshakeBurst is the bucket size: how many handshakes a client
	// address that was quiet may start at once. Default: HandshakeRate
	// rounded up, at least 1.
	HandshakeBurst int
	// MaxHandshakes is the most handshakes in progress at once over all
	// clients (see BeginHandshake).
	MaxHandshakes int
	// MaxTracked is the most client addresses tracked at once; default
	// DefaultMaxTracked. Each costs up to about 50 bytes.
	MaxTracked int
	// IPv4Prefix and IPv6Prefix are the leading bits of an address that
	// identify one client; default 32 and 64.
	IPv4Prefix, IPv6Prefix int
}

// DefaultMaxTracked bounds the table when Config.MaxTracked is 0: about
// 3 MiB at the most.
const DefaultMaxTracked = 1 << 16

// Verdict is the answer of Admit.
type Verdict uint8

const (
	// OK: admitted.
	OK Verdict = iota
	// TooManyConns: the client address holds MaxConnsPerClient connections.
	TooManyConns
	// TooFast: the client address is over its handshake rate.
	TooFast
)

func (v Verdict) String() string {
	switch v {
	case OK:
		return "ok"
	case TooManyConns:
		return "too many connections from this client"
	case TooFast:
		return "too many handshakes per second from this client"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Ticket names the table entry that counts an admitted connection; give
// it back to Release when the connection ends. The zero Ticket means the
// connection was admitted untracked (no per-client limit is on, the
// address was not an IP address, or the table was full): its Release does
// nothing. A Ticket is 4 bytes, to keep in the connection.
type Ticket uint32

const (
	shardBits = 4
	nshards   = 1 << shardBits
	slabBits  = 32 - shardBits
)

// Limiter enforces a Config. It is safe for concurrent use by all the
// loops of a server.
type Limiter struct {
	maxConns    int32
	interval    int64 // ns between two handshakes at the sustained rate; 0: no rate limit
	tolerance   int64 // ns of credit a quiet client may spend at once
	maxHS       int64
	v4, v6      int
	tracks      bool // a per-client limit is on
	seed        maphash.Seed
	inHandshake atomic.Int64
	shards      [nshards]shard
}

// New checks cfg and makes a Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxConnsPerClient < 0 || cfg.HandshakeBurst < 0 || cfg.MaxHandshakes < 0 || cfg.MaxTracked < 0 {
		return nil, errors.New("clientlimit: negative limit")
	}
	if cfg.HandshakeRate < 0 || math.IsNaN(cfg.HandshakeRate) || math.IsInf(cfg.HandshakeRate, 0) {
		return nil, fmt.Errorf("clientlimit: HandshakeRate %v: give a positive rate per second, or 0 for none", cfg.HandshakeRate)
	}
	if cfg.MaxConnsPerClient > math.MaxInt32 {
		cfg.MaxConnsPerClient = math.MaxInt32
	}
	l := &Limiter{
		maxConns: int32(cfg.MaxConnsPerClient),
		maxHS:    int64(cfg.MaxHandshakes),
		v4:       cfg.IPv4Prefix,
		v6:       cfg.IPv6Prefix,
		seed:     maphash.MakeSeed(),
	}
	if l.v4 == 0 {
		l.v4 = 32
	}
	if l.v6 == 0 {
		l.v6 = 64
	}
	if l.v4 < 1 || l.v4 > 32 || l.v6 < 1 || l.v6 > 128 {
		return nil, fmt.Errorf("clientlimit: prefixes /%d (IPv4) and /%d (IPv6) out of range", l.v4, l.v6)
	}
	if cfg.HandshakeRate > 0 {
		l.interval = max(int64(float64(time.Second)/cfg.HandshakeRate), 1)
		burst := cfg.HandshakeBurst
		if burst == 0 {
			burst = max(int(math.Ceil(cfg.HandshakeRate)), 1)
		}
		l.tolerance = int64(burst-1) * l.interval
	}
	l.tracks = l.maxConns > 0 || l.interval > 0
	tracked := cfg.MaxTracked
	if tracked == 0 {
		tracked = DefaultMaxTracked
	}
	per := min(max((tracked+nshards-1)/nshards, 1), 1<<slabBits-2)
	for i := range l.shards {
		l.shards[i].init(per)
	}
	return l, nil
}

// Admit is called when a connection from client address a starts (at
// accept, or once the address behind a trusted proxy is known). It checks
// the connection count and takes one handshake token; on OK it counts the
// connection, and the Ticket must be given to Release when the connection
// ends. On any other verdict nothing is counted. now is the caller's
// monotonic clock in nanoseconds (any base, the same for every call).
func (l *Limiter) Admit(a netip.Addr, now int64) (Ticket, Verdict) {
	if !l.tracks {
		return 0, OK
	}
	key, ok := group(a, l.v4, l.v6)
	if !ok {
		return 0, OK
	}
	h := maphash.Bytes(l.seed, key[:])
	si := h >> (64 - shardBits)
	s := &l.shards[si]
	s.mu.Lock()
	pos := s.find(&key, uint32(h))
	if pos < 0 {
		if pos = s.insert(&key, uint32(h), now); pos < 0 {
			s.mu.Unlock()
			return 0, OK // full of clients with connections: untracked
		}
	}
	e := &s.slab[pos]
	if l.maxConns > 0 && e.conns >= l.maxConns {
		s.mu.Unlock()
		return 0, TooManyConns
	}
	if l.interval > 0 {
		tat := max(e.tat, now)
		if tat-now > l.tolerance {
			s.mu.Unlock()
			return 0, TooFast
		}
		e.tat = tat + l.interval
	}
	e.conns++
	s.mu.Unlock()
	return Ticket(uint32(si)<<slabBits | uint32(pos+1)), OK
}

// Release ends the connection Admit counted under t; call it exactly once
// per Ticket (an entry with connections open is never evicted, so the
// Ticket stays valid until then). A zero Ticket is ignored, and a count
// never goes below zero.
func (l *Limiter) Release(t Ticket, now int64) {
	if t == 0 {
		return
	}
	s := &l.shards[t>>slabBits]
	pos := int32(t&(1<<slabBits-1)) - 1
	s.mu.Lock()
	if int(pos) < len(s.slab) {
		if e := &s.slab[pos]; e.live && e.conns > 0 {
			e.conns--
			if e.idle(now) {
				s.remove(pos)
			}
		}
	}
	s.mu.Unlock()
}

// Conns returns the connections counted for client address a (for tests
// and diagnostics; it takes a shard's lock).
func (l *Limiter) Conns(a netip.Addr) int {
	key, ok := group(a, l.v4, l.v6)
	if !ok {
		return 0
	}
	h := maphash.Bytes(l.seed, key[:])
	s := &l.shards[h>>(64-shardBits)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos := s.find(&key, uint32(h)); pos >= 0 {
		return int(s.slab[pos].conns)
	}
	return 0
}

// Tracked returns how many client addresses the table holds.
func (l *Limiter) Tracked() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// BeginHandshake reserves one of the MaxHandshakes places for a handshake
// starting now; false means all are taken (refuse with 503). Each true
// must be followed by one EndHandshake, when the handshake completes or
// the connection ends before.
func (l *Limiter) BeginHandshake() bool {
	if l.maxHS == 0 {
		return true
	}
	if l.inHandshake.Add(1) > l.maxHS {
		l.inHandshake.Add(-1)
		return false
	}
	return true
}

// EndHandshake gives back a place BeginHandshake reserved.
func (l *Limiter) EndHandshake() {
	if l.maxHS != 0 {
		l.inHandshake.Add(-1)
	}
}

// Handshakes returns the handshakes in progress (counted only when
// MaxHandshakes is set).
func (l *Limiter) Handshakes() int { return int(l.inHandshake.Load()) }
