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
// session.Config.AllowedOrigins.) Register routes before serving; after
// that a Router is only read and safe for concurrent use.
type Router struct {
	routes map[string]route
}

// NewRouter returns a Router with no routes.
func NewRouter() *Router { return &Router{routes: make(map[string]route)} }

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
