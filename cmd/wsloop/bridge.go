package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/wsloop/wsloop/bridge"
	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/loop"
	"github.com/wsloop/wsloop/session"
)

// bridgeFlags are the flags that bridge WebSocket paths and CGI scripts to
// programs in any language (package bridge).
type bridgeFlags struct {
	execs, backends routeList
	cgiDir          string
	execMax         int
	passEnv         string
	headers         string
	binary, console bool
}

// routeList is a repeatable "PATH[,PATH...]=COMMAND" flag.
type routeList []string

func (r *routeList) String() string     { return strings.Join(*r, " ") }
func (r *routeList) Set(v string) error { *r = append(*r, v); return nil }

// addBridgeFlags registers the bridge flags on fs.
func addBridgeFlags(fs *flag.FlagSet) *bridgeFlags {
	f := new(bridgeFlags)
	fs.Var(&f.execs, "exec", `run a program per connection: "/path=PROGRAM [ARGS]" (websocketd style: stdin/stdout lines; a path ending in / takes the paths below it, the rest is PATH_INFO); repeatable`)
	fs.Var(&f.backends, "backend", `one shared backend for all connections of the path(s): "/path[,/path2]=PROGRAM [ARGS]", or "/path=unix:///run/app.sock" to connect to one; JSON lines (see package bridge); repeatable`)
	fs.StringVar(&f.headers, "backend-headers", strings.Join(bridge.DefaultHeaders, ","), `comma-separated request headers a -backend's open events carry; "*" for all`)
	fs.StringVar(&f.cgiDir, "cgi-dir", "", "serve the executables in this directory as CGI scripts at /cgi-bin/")
	fs.IntVar(&f.execMax, "exec-max", 256, "most -exec programs and CGI scripts running at once (0: no cap); past it: 503")
	fs.StringVar(&f.passEnv, "passenv", "", "comma-separated environment variables passed to -exec, -backend and CGI programs (PATH always is)")
	fs.BoolVar(&f.binary, "binary", false, "-exec programs exchange raw bytes (binary messages) instead of lines")
	fs.BoolVar(&f.console, "console", false, "serve a developer console for the bridged paths at /console/")
	return f
}

// bridges are the running bridges of one wsloop.
type bridges struct {
	execs     []*bridge.Exec
	backends  []*bridge.Backend
	cgi       *bridge.CGI
	console   http.Handler
	endpoints []bridge.Endpoint
	prefixes  []prefixRoute
}

// start checks the flags, starts the bridges, routes their paths on rt
// (replacing demo applications at the same paths) and puts CGI and the
// console in front of opts.HTTP. The per-connection programs' connections
// start from opts.Session.
func (f *bridgeFlags) start(log *slog.Logger, rt *demo.Router, opts *loop.Options) (*bridges, error) {
	tls := opts.TLSConfig != nil
	b := new(bridges)
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	lim := bridge.NewLimit(f.execMax)
	if f.execMax < 0 {
		return nil, fmt.Errorf("-exec-max %d is negative", f.execMax)
	}
	passEnv := splitList(f.passEnv)
	seen := map[string]bool{}
	routes := func(flagName, v string) ([]string, string, error) {
		paths, cmd, found := strings.Cut(v, "=")
		if !found || strings.TrimSpace(cmd) == "" {
			return nil, "", fmt.Errorf("%s %q: use %s /path=PROGRAM [ARGS]", flagName, v, flagName)
		}
		ps := splitList(paths)
		for _, p := range ps {
			if !strings.HasPrefix(p, "/") {
				return nil, "", fmt.Errorf("%s %q: the path %q must start with /", flagName, v, p)
			}
			if seen[p] {
				return nil, "", fmt.Errorf("%s %q: the path %s is bridged twice", flagName, v, p)
			}
			seen[p] = true
		}
		if len(ps) == 0 {
			return nil, "", fmt.Errorf("%s %q: no path before =", flagName, v)
		}
		return ps, strings.TrimSpace(cmd), nil
	}
	for _, v := range f.execs {
		paths, cmd, err := routes("-exec", v)
		if err != nil {
			return nil, err
		}
		argv := strings.Fields(cmd)
		for _, p := range paths {
			// One Exec per path: SCRIPT_NAME and PATH_INFO follow the mount.
			e, err := bridge.NewExec(argv[0], bridge.ExecOptions{Args: argv[1:], Binary: f.binary, PassEnv: passEnv,
				TLS: tls, Limit: lim, Config: &opts.Session, ScriptName: p, Logger: log})
			if err != nil {
				return nil, fmt.Errorf("-exec %q: %w", v, err)
			}
			b.execs = append(b.execs, e)
			b.mount(rt, p, e.Upgrade)
			b.endpoints = append(b.endpoints, bridge.Endpoint{Path: p, Kind: "exec", Program: cmd})
			log.Info("bridge", "path", p, "exec", cmd, "binary", f.binary)
		}
	}
	for _, v := range f.backends {
		paths, cmd, err := routes("-backend", v)
		if err != nil {
			return nil, err
		}
		opts := bridge.BackendOptions{PassEnv: passEnv, Headers: splitList(f.headers), Logger: log}
		if strings.HasPrefix(cmd, "unix:") {
			opts.Socket = strings.TrimPrefix(strings.TrimPrefix(cmd, "unix://"), "unix:")
		} else {
			opts.Command = strings.Fields(cmd)
		}
		be, err := bridge.NewBackend(opts)
		if err != nil {
			return nil, fmt.Errorf("-backend %q: %w", v, err)
		}
		b.backends = append(b.backends, be)
		for _, p := range paths {
			b.mount(rt, p, be.Upgrade)
			b.endpoints = append(b.endpoints, bridge.Endpoint{Path: p, Kind: "backend", Program: cmd})
			log.Info("bridge", "path", p, "backend", cmd)
		}
	}
	if f.cgiDir != "" {
		c, err := bridge.NewCGI(f.cgiDir, bridge.CGIOptions{PassEnv: passEnv, TLS: tls, Limit: lim, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("-cgi-dir: %w", err)
		}
		b.cgi = c
		log.Info("bridge", "path", c.Prefix(), "cgi-dir", f.cgiDir)
	}
	if f.console {
		if len(b.endpoints) == 0 {
			return nil, errors.New("-console lists bridged paths: give -exec or -backend too")
		}
		b.console = http.StripPrefix("/console", bridge.Console(b.endpoints))
		log.Info("bridge", "path", "/console/", "console", len(b.endpoints))
	}
	opts.HTTP = b.http(opts.HTTP)
	if len(b.prefixes) > 0 {
		opts.Session.Upgrade = b.upgrade(opts.Session.Upgrade)
	}
	ok = true
	return b, nil
}

// prefixRoute is a bridged path ending in "/": it takes every path below it
// that has no route of its own.
type prefixRoute struct {
	prefix string
	fn     session.UpgradeFunc
}

// mount routes path to fn: exactly, or, for a path ending in "/", as a
// prefix.
func (b *bridges) mount(rt *demo.Router, path string, fn session.UpgradeFunc) {
	if !strings.HasSuffix(path, "/") {
		rt.HandleFunc(path, fn)
		return
	}
	b.prefixes = append(b.prefixes, prefixRoute{path, fn})
	// Longest first: /ws/app/admin/ before /ws/app/.
	sort.Slice(b.prefixes, func(i, j int) bool { return len(b.prefixes[i].prefix) > len(b.prefixes[j].prefix) })
}

// upgrade tries the prefix routes for the upgrades next has no route for.
func (b *bridges) upgrade(next session.UpgradeFunc) session.UpgradeFunc {
	return func(r *session.Request) (session.Accept, error) {
		acc, err := next(r)
		var re *session.RejectError
		if !errors.As(err, &re) || re.Status != http.StatusNotFound {
			return acc, err
		}
		p := r.Path()
		for _, m := range b.prefixes {
			if strings.HasPrefix(p, m.prefix) || p == strings.TrimSuffix(m.prefix, "/") {
				return m.fn(r)
			}
		}
		return acc, err
	}
}

// http serves CGI scripts at /cgi-bin/ and the console at /console/ in
// front of next.
func (b *bridges) http(next http.Handler) http.Handler {
	if b.cgi == nil && b.console == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case b.cgi != nil && strings.HasPrefix(r.URL.Path, b.cgi.Prefix()):
			b.cgi.ServeHTTP(w, r)
		case b.console != nil && r.URL.Path == "/console":
			http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		case b.console != nil && strings.HasPrefix(r.URL.Path, "/console/"):
			b.console.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// close stops the bridged programs; call it after the server's Shutdown.
func (b *bridges) close() {
	for _, e := range b.execs {
		_ = e.Close()
	}
	for _, be := range b.backends {
		_ = be.Close()
	}
}
