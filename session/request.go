package session

import (
	"net"
	"net/http"
	"net/url"

	"github.com/wsloop/wsloop/codec"
)

// CONTRACT FILE: signatures fixed by the lead; bodies are implemented in the session work.

// Request is an opening handshake (or a plain HTTP request) as an UpgradeFunc
// or an HTTPFunc sees it. It is valid only during that call; its methods
// copy what they return.
type Request struct {
	req    *codec.Request
	remote net.Addr
}

// Path returns the request path (no query), unescaped as sent.
func (r *Request) Path() string { panic("unimplemented") }

// RawQuery returns the query string without '?'.
func (r *Request) RawQuery() string { panic("unimplemented") }

// Query parses the query string.
func (r *Request) Query() url.Values { panic("unimplemented") }

// Header returns the first value of the named header, or "".
func (r *Request) Header(name string) string { panic("unimplemented") }

// Origin returns the Origin header, or "".
func (r *Request) Origin() string { panic("unimplemented") }

// Host returns the Host header.
func (r *Request) Host() string { panic("unimplemented") }

// Protocols returns the subprotocols the client offered, in its order.
func (r *Request) Protocols() []string { panic("unimplemented") }

// RemoteAddr returns the peer's address, or nil when the engine does not know it.
func (r *Request) RemoteAddr() net.Addr { return r.remote }

// HTTPRequest returns the request as a *http.Request with no body, for
// handing to a net/http Handler off the engine goroutine.
func (r *Request) HTTPRequest() (*http.Request, error) { panic("unimplemented") }
