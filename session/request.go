package session

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"

	"github.com/wsloop/wsloop/codec"
)

// Request is an opening handshake (or a plain HTTP request) as an UpgradeFunc
// or an HTTPFunc sees it. It is valid only during that call; its methods
// copy what they return.
type Request struct {
	req    *codec.Request
	io     *IO
	cfg    *Config
	body   []byte
	remote net.Addr // asked of the engine on first use: most hooks never look
}

// Body returns a plain request's body (its Content-Length bytes, at most
// Config.MaxRequestBody); it aliases the connection's buffers: copy it to
// keep it.
func (r *Request) Body() []byte { return r.body }

// KeepAlive reports whether the request allows the connection to stay open
// for another request after the answer.
func (r *Request) KeepAlive() bool {
	return r.req.Major == 1 && (r.req.Minor >= 1 && !r.req.Close || r.req.Minor == 0 && r.req.KeepAlive)
}

// Method returns the request method.
func (r *Request) Method() string { return string(r.req.Method) }

// Target returns the request-target as sent (path and query).
func (r *Request) Target() string { return string(r.req.Target) }

// Path returns the request path (no query), unescaped as sent.
func (r *Request) Path() string { return string(r.req.Path) }

// RawQuery returns the query string without '?'.
func (r *Request) RawQuery() string { return string(r.req.Query) }

// Query parses the query string; malformed pairs are skipped.
func (r *Request) Query() url.Values {
	v, _ := url.ParseQuery(string(r.req.Query))
	return v
}

// Header returns the first value of the named header (case-insensitive), or "".
func (r *Request) Header(name string) string { return string(r.req.Header(name)) }

// Origin returns the Origin header, or "".
func (r *Request) Origin() string { return string(r.req.Origin) }

// OriginAllowed reports whether the Config's origin rule, which upgrades
// pass before their hook runs, admits this request: no Origin (not a
// browser, or a browser's same-origin GET), the server's own origin, or one
// of Config.AllowedOrigins. A plain request's hook asks it for routes that
// browsers of other sites must not use (an event stream, a POST that acts).
func (r *Request) OriginAllowed() bool {
	return originAllowed(string(r.req.Origin), string(r.req.Host), r.cfg.AllowedOrigins)
}

// Host returns the Host header.
func (r *Request) Host() string { return string(r.req.Host) }

// Protocols returns the subprotocols the client offered, in its order.
func (r *Request) Protocols() []string {
	var ps []string
	r.req.EachProtocol(func(tok []byte) bool {
		ps = append(ps, string(tok))
		return true
	})
	return ps
}

// EachHeader calls fn for every header line, in order, until fn returns
// false; name and value are views valid only during the call (nothing is
// allocated).
func (r *Request) EachHeader(fn func(name, value []byte) bool) { r.req.EachHeader(fn) }

// RemoteAddrPort returns the peer's address without allocating (the zero
// AddrPort when the engine does not know it).
func (r *Request) RemoteAddrPort() netip.AddrPort {
	if r.io == nil {
		return netip.AddrPort{}
	}
	if a, ok := r.io.Exec.(interface {
		RemoteAddrPort(id uint64) netip.AddrPort
	}); ok {
		return a.RemoteAddrPort(r.io.ID)
	}
	return netip.AddrPort{}
}

// TLS reports whether the request came over TLS (https, wss).
func (r *Request) TLS() bool {
	if r.io == nil {
		return false
	}
	a, ok := r.io.Exec.(interface{ TLS(id uint64) bool })
	return ok && a.TLS(r.io.ID)
}

// RemoteAddr returns the peer's address, or nil when the engine does not know it.
func (r *Request) RemoteAddr() net.Addr {
	if r.remote == nil && r.io != nil {
		r.remote = r.io.remoteAddr()
	}
	return r.remote
}

// HTTPRequest returns the request as a *http.Request with no body, for
// handing to a net/http Handler off the engine goroutine: Method, URL (from
// the request-target), Proto, Header (every line, in order), Host,
// RemoteAddr and RequestURI are set as net/http's server sets them.
func (r *Request) HTTPRequest() (*http.Request, error) {
	target := string(r.req.Target)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	h := make(http.Header)
	r.req.EachHeader(func(name, value []byte) bool {
		k := textproto.CanonicalMIMEHeaderKey(string(name))
		h[k] = append(h[k], string(value))
		return true
	})
	host := string(r.req.Host)
	if host == "" {
		host = u.Host
	}
	hr := &http.Request{
		Method:     string(r.req.Method),
		URL:        u,
		Proto:      "HTTP/" + strconv.Itoa(r.req.Major) + "." + strconv.Itoa(r.req.Minor),
		ProtoMajor: r.req.Major,
		ProtoMinor: r.req.Minor,
		Header:     h,
		Body:       http.NoBody,
		Close:      !r.KeepAlive(),
		Host:       host,
		RequestURI: target,
	}
	if len(r.body) > 0 {
		hr.Body = io.NopCloser(bytes.NewReader(append([]byte(nil), r.body...)))
		hr.ContentLength = int64(len(r.body))
	}
	if ra := r.RemoteAddr(); ra != nil {
		hr.RemoteAddr = ra.String()
	}
	return hr, nil
}
