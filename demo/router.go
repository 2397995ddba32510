package demo

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/wsloop/wsloop/session"
)

// request is what routing reads from a handshake; *session.Request has it.
type request interface {
	Path() string
	Query() url.Values
	Origin() string
	Host() string
}

type route func(r request) (session.Accept, error)

// Router is a session.UpgradeFunc (through its Upgrade method) that chooses a
// connection's Handler by request path. Unknown paths are refused with 404,
// origins that are not allowed with 403. Register routes before serving;
// after that a Router is only read and safe for concurrent use.
type Router struct {
	routes  map[string]route
	origins map[string]bool
	anyOrig bool
}

// NewRouter returns a Router with no routes. allowedOrigins lists the
// browser origins (scheme://host[:port], compared case-insensitively) that
// may connect besides the server's own; "*" allows every origin. A request
// without an Origin header (not a browser) is always allowed: the check
// exists to stop other sites' pages from using a visitor's browser.
func NewRouter(allowedOrigins []string) *Router {
	rt := &Router{routes: make(map[string]route), origins: make(map[string]bool)}
	for _, o := range allowedOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			rt.anyOrig = true
		default:
			rt.origins[strings.ToLower(o)] = true
		}
	}
	return rt
}

// Handle serves path with h.
func (rt *Router) Handle(path string, h session.Handler) {
	rt.routes[path] = func(request) (session.Accept, error) { return session.Accept{Handler: h}, nil }
}

// HandleFunc lets fn decide the upgrades of path (after the Origin check),
// for handlers that need the request: query parameters, authentication.
func (rt *Router) HandleFunc(path string, fn session.UpgradeFunc) {
	rt.routes[path] = func(r request) (session.Accept, error) { return fn(r.(*session.Request)) }
}

// handle registers a route that reads the request through the interface,
// so that the demo's own routes can be tested without a live handshake.
func (rt *Router) handle(path string, fn route) { rt.routes[path] = fn }

// Upgrade is the session.UpgradeFunc: set loop.Options.Session.Upgrade to it.
func (rt *Router) Upgrade(r *session.Request) (session.Accept, error) {
	return rt.upgrade(r)
}

func (rt *Router) upgrade(r request) (session.Accept, error) {
	if !rt.originAllowed(r.Origin(), r.Host()) {
		return session.Accept{}, &session.RejectError{Status: http.StatusForbidden,
			Message: "origin not allowed: " + r.Origin()}
	}
	fn, ok := rt.routes[r.Path()]
	if !ok {
		return session.Accept{}, &session.RejectError{Status: http.StatusNotFound,
			Message: "no websocket endpoint at " + r.Path()}
	}
	return fn(r)
}

// originAllowed reports whether a browser at origin may connect to host.
func (rt *Router) originAllowed(origin, host string) bool {
	if origin == "" || rt.anyOrig {
		return true
	}
	if rt.origins[strings.ToLower(origin)] {
		return true
	}
	// Same origin: the page was served by this server (the scheme does not
	// matter here: a TLS-terminating proxy sees https pages over ws).
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host) || strings.EqualFold(u.Host, defaultPort(host, u.Scheme)) ||
		strings.EqualFold(defaultPort(u.Host, u.Scheme), host)
}

// defaultPort adds the scheme's default port to a host without one, so that
// "example.com" and "example.com:80" compare equal.
func defaultPort(host, scheme string) string {
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		return host
	}
	switch scheme {
	case "http", "ws":
		return host + ":80"
	case "https", "wss":
		return host + ":443"
	}
	return host
}
