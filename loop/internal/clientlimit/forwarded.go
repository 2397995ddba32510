package clientlimit

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"
)

// Header names the forwarding header a proxy writes.
type Header uint8

const (
	// XForwardedFor is "X-Forwarded-For: client, proxy1, proxy2" (nginx's
	// $proxy_add_x_forwarded_for, HAProxy's option forwardfor, most load
	// balancers).
	XForwardedFor Header = iota
	// Forwarded is RFC 7239's "Forwarded: for=client;proto=https, for=proxy1".
	Forwarded
)

// Name returns the header's name.
func (h Header) Name() string {
	if h == Forwarded {
		return "Forwarded"
	}
	return "X-Forwarded-For"
}

// Proxies says which peers are trusted to tell the client's address, and
// in which header. Only the one header the proxies write is read: a proxy
// that appends to X-Forwarded-For passes a client's own Forwarded header
// through unchanged, so reading both would let any client choose its
// address. A Proxies is immutable and safe for concurrent use.
type Proxies struct {
	nets   []netip.Prefix
	header Header
}

// NewProxies parses the trusted proxies: CIDR prefixes ("10.0.0.0/8",
// "2001:db8::/32") or single addresses ("127.0.0.1", "::1").
func NewProxies(trusted []string, h Header) (*Proxies, error) {
	p := &Proxies{header: h}
	for _, s := range trusted {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			pf, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %v", s, err)
			}
			pf = pf.Masked()
			if pf.Addr().Is4In6() {
				pf = netip.PrefixFrom(pf.Addr().Unmap(), max(pf.Bits()-96, 0))
			}
			p.nets = append(p.nets, pf)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted proxy %q: not an IP address or CIDR prefix", s)
		}
		a = a.Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// Header is the header to feed to a Resolver.
func (p *Proxies) Header() Header { return p.header }

// Trusted reports whether a is one of the trusted proxies. A connection
// from any other peer is its own client: its headers are not read.
func (p *Proxies) Trusted(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client address of a connection from peer whose
// request carried values as the lines of Header (in order). See Resolver.
func (p *Proxies) Client(peer netip.Addr, values ...[]byte) netip.Addr {
	r := p.Resolve(peer)
	for _, v := range values {
		r.Add(v)
	}
	return r.Client()
}

// Resolve starts resolving the client address of a connection from peer:
// feed it every line of p.Header() of the request, in order, with Add,
// then ask Client. It is a value: resolving allocates nothing.
func (p *Proxies) Resolve(peer netip.Addr) Resolver {
	return Resolver{p: p, peer: peer.Unmap(), trusted: p.Trusted(peer)}
}

// Resolver finds the rightmost untrusted address of the forwarding chain
// (the header's list, then the peer): each trusted proxy appended the
// address it received the request from, so that address is the first one
// a trusted hop vouches for and nothing left of it can be believed. An
// entry that is not an address ("unknown", an obfuscated identifier,
// garbage) ends what can be believed: the address just right of it is the
// answer when everything right of it is trusted. When every hop is
// trusted, the leftmost is the client.
type Resolver struct {
	p       *Proxies
	peer    netip.Addr
	trusted bool       // the peer is a trusted proxy; otherwise nothing is read
	last    netip.Addr // the rightmost untrusted address since the last bad entry
	first   netip.Addr // the first address since the last bad entry
}

// Add feeds one header line's value.
func (r *Resolver) Add(v []byte) {
	if !r.trusted {
		return
	}
	if r.p.header == Forwarded {
		r.addForwarded(v)
		return
	}
	for len(v) > 0 {
		var el []byte
		el, v, _ = bytes.Cut(v, []byte{','})
		el = bytes.TrimSpace(el)
		if len(el) == 0 {
			continue // "a,,b" or a trailing comma: nothing was claimed
		}
		r.hop(parseHost(el))
	}
}

// hop takes the next address of the chain, left to right.
func (r *Resolver) hop(a netip.Addr, ok bool) {
	if !ok {
		r.last, r.first = netip.Addr{}, netip.Addr{}
		return
	}
	if !r.first.IsValid() {
		r.first = a
	}
	if !r.p.Trusted(a) {
		r.last = a
	}
}

// Client returns the client's address.
func (r *Resolver) Client() netip.Addr {
	switch {
	case !r.trusted:
		return r.peer
	case r.last.IsValid():
		return r.last
	case r.first.IsValid():
		return r.first
	}
	return r.peer
}

// addForwarded reads RFC 7239 elements: "for=a;by=b, for=c", values as
// tokens or quoted strings; each element's for= is one hop.
func (r *Resolver) addForwarded(v []byte) {
	for len(v) > 0 {
		var el []byte
		el, v = cutOutsideQuotes(v, ',')
		el = bytes.TrimSpace(el)
		if len(el) == 0 {
			continue
		}
		var host []byte
		found := false
		for len(el) > 0 {
			var pair []byte
			pair, el = cutOutsideQuotes(el, ';')
			name, val, ok := bytes.Cut(bytes.TrimSpace(pair), []byte{'='})
			if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("for")) {
				continue
			}
			if found { // two for= in one element: malformed
				found, host = true, nil
				break
			}
			found, host = true, unquote(bytes.TrimSpace(val))
		}
		if !found || host == nil {
			r.hop(netip.Addr{}, false)
			continue
		}
		r.hop(parseHost(host))
	}
}

// cutOutsideQuotes splits s at the first sep that is not inside a quoted
// string.
func cutOutsideQuotes(s []byte, sep byte) (before, after []byte) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			return s[:i], s[i+1:]
		}
	}
	return s, nil
}

// unquote returns a quoted string's content (escapes removed only when
// there are none to remove, which is all an address needs), a token as it
// is, or nil when malformed.
func unquote(v []byte) []byte {
	if len(v) == 0 || v[0] != '"' {
		return v
	}
	if len(v) < 2 || v[len(v)-1] != '"' || bytes.IndexByte(v[1:len(v)-1], '\\') >= 0 {
		return nil
	}
	return v[1 : len(v)-1]
}

// parseHost reads an address in the forms proxies write: "192.0.2.1",
// "192.0.2.1:4711", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:4711".
// Zones, names, "unknown" and obfuscated identifiers are not addresses.
func parseHost(h []byte) (netip.Addr, bool) {
	if len(h) == 0 || len(h) > 64 || bytes.IndexByte(h, '%') >= 0 {
		return netip.Addr{}, false
	}
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 || !validPort(h[end+1:], true) {
			return netip.Addr{}, false
		}
		a, err := parseAddr(h[1:end])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	if c := bytes.Count(h, []byte{':'}); c == 1 { // IPv4 with a port
		i := bytes.IndexByte(h, ':')
		if !validPort(h[i:], false) {
			return netip.Addr{}, false
		}
		h = h[:i]
	}
	a, err := parseAddr(h)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort accepts "" (when optional) or ":" and 1-5 digits.
func validPort(p []byte, optional bool) bool {
	if len(p) == 0 {
		return optional
	}
	if p[0] != ':' || len(p) < 2 || len(p) > 6 {
		return false
	}
	for _, c := range p[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseAddr parses without copying b into a string: netip.ParseAddr keeps
// nothing of its argument for an address without a zone, and parseHost
// has refused zones.
func parseAddr(b []byte) (netip.Addr, error) {
	return netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
}
