package bridge

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"

	"github.com/wsloop/wsloop/web"
)

// consoleFS is the developer console: plain HTML and JavaScript, no
// external resources.
//
//go:embed console/index.html console/console.js
var consoleFS embed.FS

// Endpoint is a bridged WebSocket path as the developer console lists it.
type Endpoint struct {
	Path    string `json:"path"`
	Kind    string `json:"kind"`    // "exec" (a program per connection) or "backend" (shared)
	Program string `json:"program"` // what serves it, as configured
}

// Console returns the developer console (like websocketd's --devconsole):
// a page on which a person picks one of endpoints (or types any path),
// connects, types messages and sees the replies, close codes included. It
// serves index.html and console.js at its root and the list as
// endpoints.json; the page uses relative links, so mount it under a prefix
// with http.StripPrefix. The list shows how the server is set up: serve it
// only where that is acceptable.
func Console(endpoints []Endpoint) http.Handler {
	sub, err := fs.Sub(consoleFS, "console")
	if err != nil {
		panic("bridge: embedded console missing: " + err.Error()) // a build defect
	}
	page := web.New(sub)
	if endpoints == nil {
		endpoints = []Endpoint{}
	}
	list, _ := json.Marshal(endpoints)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/endpoints.json" || r.URL.Path == "endpoints.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(list)
			return
		}
		page.ServeHTTP(w, r)
	})
}
