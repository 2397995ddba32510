package demo

import (
	"io/fs"
	"net/http"
	"time"

	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/session"
	"github.com/wsloop/wsloop/web"
)

// Options configure the demo applications.
type Options struct {
	// PushInterval is the time between push readings; default 1s.
	PushInterval time.Duration
	// Bus, when set, spreads chat rooms and push readings over every
	// process on it (see NewChatOn and NewPushOn); nil keeps them to this
	// process.
	Bus bus.Bus
}

// Demo is the set of demo applications behind one Router.
type Demo struct {
	Router *Router
	Chat   *Chat
	Push   *Push
	page   *web.Handler
}

// New returns the demo applications, routed at /ws/echo, /ws/chat and
// /ws/push, and their event streams at /sse/push, /sse/chat and
// /sse/chat/send (served on the loops: set loop.Options.LoopHTTP to
// d.LoopHTTP). Close it when the server shuts down, to stop the push
// ticker.
func New(opts Options) *Demo {
	d := &Demo{
		Router: NewRouter(),
		Chat:   NewChatOn(opts.Bus),
		Push:   NewPushOn(opts.PushInterval, opts.Bus),
	}
	d.Router.Handle("/ws/echo", Echo)
	d.Router.handle("/ws/chat", d.Chat.accept)
	d.Router.Handle("/ws/push", d.Push)
	d.Router.HandleLoop("/sse/push", d.Push.Stream)
	d.Router.HandleLoop("/sse/chat", d.Chat.Stream)
	d.Router.HandleLoop("/sse/chat/send", d.Chat.Post)
	sub, err := fs.Sub(pageFS, "page")
	if err != nil {
		panic("demo: embedded page missing: " + err.Error()) // a build defect, not a runtime condition
	}
	d.page = web.New(sub)
	return d
}

// Upgrade is the session.UpgradeFunc routing to the demo applications: set
// loop.Options.Session.Upgrade to d.Upgrade.
func (d *Demo) Upgrade(r *session.Request) (session.Accept, error) { return d.Router.Upgrade(r) }

// LoopHTTP serves the demo's event streams and its chat's POST on the
// loops: set loop.Options.LoopHTTP to d.LoopHTTP. Other plain requests go
// on to loop.Options.HTTP (d.Page).
func (d *Demo) LoopHTTP(c *session.Conn, r *session.Request) bool { return d.Router.LoopHTTP(c, r) }

// Page serves the embedded demo page (index.html and app.js) and /healthz.
// It uses relative links, so it also works under a prefix through
// http.StripPrefix.
func (d *Demo) Page() http.Handler { return d.page }

// Close stops the push ticker and the chat's bus subscription; connections
// are the server's to close.
func (d *Demo) Close() {
	d.Push.Close()
	d.Chat.Close()
}
