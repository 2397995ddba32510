package demo

import (
	"net/http"
	"net/url"

	"github.com/wsloop/wsloop/session"
)

// request is what routing reads from a handshake; *session.Request has it.
type request interface {
	Path() string
	Query() url.Values
}

type route func(r request) (session.Accept, error)

// Router is a session.UpgradeFunc (through its Upgrade method) that chooses a
// connection's Handler by request path. Unknown paths are refused with 404.
// (Browsers from other sites were refused with 403 before a Router runs:
// session.Config.AllowedOrigins.) Through its LoopHTTP method it also
// serves plain requests of the paths given to HandleLoop on the event
// loops (event streams, small answers). Register routes before serving;
// after that a Router is only read and safe for concurrent use.
type Router struct {
	routes map[string]route
	plain  map[string]func(c *session.Conn, r *session.Request)
}

// NewRouter returns a Router with no routes.
func NewRouter() *Router {
	return &Router{routes: make(map[string]route), plain: make(map[string]func(*session.Conn, *session.Request))}
}

// HandleLoop serves the plain (not upgrade) requests for path with fn, on
// the connection's event loop: fn must not block, and must answer (see
// loop.Options.LoopHTTP).
func (rt *Router) HandleLoop(path string, fn func(c *session.Conn, r *session.Request)) {
	rt.plain[path] = fn
}

// LoopHTTP is a loop.Options.LoopHTTP hook: it takes the plain requests for
// the paths given to HandleLoop and leaves the others to Options.HTTP.
func (rt *Router) LoopHTTP(c *session.Conn, r *session.Request) bool {
	fn, ok := rt.plain[r.Path()]
	if ok {
		fn(c, r)
	}
	return ok
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
	fn, ok := rt.routes[r.Path()]
	if !ok {
		return session.Accept{}, &session.RejectError{Status: http.StatusNotFound,
			Message: "no websocket endpoint at " + r.Path()}
	}
	return fn(r)
}
