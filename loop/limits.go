package loop

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/wsloop/wsloop/loop/internal/clientlimit"
	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/session"
)

// Limits bound what each client may take of a Server. A zero field is no
// limit. A client is an address: an IPv4 address, or an IPv6 /64 (one
// subscriber's network). A refused connection gets its answer at once
// (429 Too Many Requests, or 503 for MaxHandshakes) and is counted
// (Observer.Refused).
type Limits struct {
	// MaxConnsPerClient is the most connections one client may hold open
	// at once, handshaking ones included.
	MaxConnsPerClient int
	// HandshakeRate is the handshakes per second one client may start,
	// sustained; HandshakeBurst (default: the rate, at least 1) may come at
	// once after a quiet time.
	HandshakeRate  float64
	HandshakeBurst int
	// MaxHandshakes is the most connections in their opening handshake at
	// once, over all clients (a slowloris bound beside the handshake
	// timeout).
	MaxHandshakes int
	// TrustedProxies are the proxies (CIDR prefixes or addresses, such as
	// "127.0.0.1" or "10.0.0.0/8") whose ForwardedHeader names the client:
	// their connections are counted by the client the request names, read
	// from the right, the first address that is not a trusted proxy.
	// Nobody else's header is believed.
	TrustedProxies []string
	// ForwardedHeader is "X-Forwarded-For" (the default) or "Forwarded"
	// (RFC 7239): only the one a proxy writes is read.
	ForwardedHeader string
	// MaxTracked bounds the client addresses tracked at once (default
	// 65,536, about 3 MiB); past it idle ones are forgotten first.
	MaxTracked int
}

func (l *Limits) active() bool {
	return l.MaxConnsPerClient > 0 || l.HandshakeRate > 0 || l.MaxHandshakes > 0
}

// limiter adapts clientlimit to the core.
type limiter struct {
	lim     *clientlimit.Limiter
	proxies *clientlimit.Proxies // nil: none trusted
	header  []byte
}

func newLimiter(l Limits) (*limiter, error) {
	lim, err := clientlimit.New(clientlimit.Config{
		MaxConnsPerClient: l.MaxConnsPerClient,
		HandshakeRate:     l.HandshakeRate,
		HandshakeBurst:    l.HandshakeBurst,
		MaxHandshakes:     l.MaxHandshakes,
		MaxTracked:        l.MaxTracked,
	})
	if err != nil {
		return nil, fmt.Errorf("loop: Limits: %w", err)
	}
	x := &limiter{lim: lim}
	if len(l.TrustedProxies) > 0 {
		h := clientlimit.XForwardedFor
		switch l.ForwardedHeader {
		case "", "X-Forwarded-For":
		case "Forwarded":
			h = clientlimit.Forwarded
		default:
			return nil, fmt.Errorf("loop: Limits.ForwardedHeader %q: use X-Forwarded-For or Forwarded", l.ForwardedHeader)
		}
		if x.proxies, err = clientlimit.NewProxies(l.TrustedProxies, h); err != nil {
			return nil, fmt.Errorf("loop: Limits.TrustedProxies: %w", err)
		}
		x.header = []byte(h.Name())
	}
	return x, nil
}

func (x *limiter) Admit(a netip.Addr, now int64) (uint32, core.RefuseReason, bool) {
	t, v := x.lim.Admit(a, now)
	switch v {
	case clientlimit.TooManyConns:
		return 0, core.RefusePerIP, false
	case clientlimit.TooFast:
		return 0, core.RefuseHandshakeRate, false
	}
	return uint32(t), 0, true
}

func (x *limiter) Release(t uint32, now int64) { x.lim.Release(clientlimit.Ticket(t), now) }
func (x *limiter) BeginHandshake() bool        { return x.lim.BeginHandshake() }
func (x *limiter) EndHandshake()               { x.lim.EndHandshake() }

func (x *limiter) Proxied(a netip.Addr) bool { return x.proxies != nil && x.proxies.Trusted(a) }

func (x *limiter) Client(peer netip.Addr, r *session.Request) netip.Addr {
	res := x.proxies.Resolve(peer)
	r.EachHeader(func(name, value []byte) bool {
		if bytes.EqualFold(name, x.header) {
			res.Add(value)
		}
		return true
	})
	return res.Client()
}
