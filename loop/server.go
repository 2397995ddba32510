package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/wsloop/wsloop/loop/internal/core"
	_ "github.com/wsloop/wsloop/loop/internal/epoll"     // registers "epoll"
	_ "github.com/wsloop/wsloop/loop/internal/goroutine" // registers "goroutine"
	"github.com/wsloop/wsloop/session"
)

// Options configure a Server. The zero value serves with the epoll engine,
// one loop per CPU, as many connections as the open-file limit allows.
type Options struct {
	// Engine is "epoll" (default; kqueue on BSD and macOS, "kqueue" is an
	// alias), "goroutine", or "gnet" once its package is imported:
	//
	//	import _ "github.com/wsloop/wsloop/loop/gnet"
	Engine string
	// Loops is the number of event loops; default runtime.GOMAXPROCS(0).
	Loops int
	// MaxConns caps open connections; default and ceiling: what RLIMIT_NOFILE
	// allows after raising the soft limit to the hard one, less a reserve.
	MaxConns int
	// Session configures every connection (Role is forced to Server).
	// Session.HTTP is set by the Server from HTTP below.
	Session session.Config
	// HTTP answers requests that do not ask for an upgrade. It runs on its
	// own goroutine, off the loops, with the request body read
	// (Session.MaxRequestBody); a response of up to 64 KiB is sent whole,
	// a larger or flushed one (an event stream) is streamed at the pace the
	// client reads, and HTTP/1.1 keep-alive is honoured. nil: 404 for every
	// path except /healthz.
	HTTP http.Handler
	// LoopHTTP, when set, sees every plain request first, on the
	// connection's loop, and returns true for those it takes; the others
	// go to HTTP. It must not block. It answers with c.WriteHTTP and
	// c.EndHTTP (then or later, through c.Handle()), or makes the request
	// an event stream (c.StartStream: a subscriber that costs no goroutine,
	// for a Room or Broadcast). r is valid only during the call. A panic
	// before it answers is a 500.
	LoopHTTP func(c *session.Conn, r *session.Request) bool
	// TLSConfig serves wss and https on the port, on every engine (the
	// engines' shared core speaks TLS below the sessions, with
	// crypto/tls). It is cloned; TLS 1.2 is the minimum and ALPN offers
	// "http/1.1" unless NextProtos says otherwise. Certificates may change
	// without a restart through GetCertificate (see KeyPair). Handshakes
	// run off the event loops, and a peer that does not complete its
	// handshake within Session.HandshakeTimeout is cut; both are counted in
	// Session.Stats (TLSHandshakes, TLSHandshakeErrors, ...). Limits apply
	// at accept, before the TLS handshake: a refused TLS connection is
	// closed without an answer (a plain 429 would be garbage to its
	// client, and a handshake would cost what the limit saves).
	TLSConfig *tls.Config
	// MaxTLSHandshakes bounds the TLS handshakes running at once (default
	// 1024; half the CPUs compute them); past it new TLS connections wait
	// for a place, counted in Stats.TLSHandshakeWaits (their handshake
	// deadline runs meanwhile). Limits.MaxHandshakes, when set, refuses
	// connections past its bound outright instead.
	MaxTLSHandshakes int
	// SendBuffer, when positive, sets SO_SNDBUF on accepted sockets: the
	// kernel's send buffer per connection, which otherwise grows up to the
	// system's tcp_wmem maximum (megabytes) for a peer that does not read.
	// HighWater bounds what the server holds beyond it.
	SendBuffer int
	// ShutdownTimeout bounds Shutdown's wait for close replies when its
	// context has no deadline; default 5s.
	ShutdownTimeout time.Duration
	// Logger receives the engine's logs; default slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told what the server does (package metrics
	// implements it); nil costs nothing.
	Observer Observer
	// Limits bound what each client may take (connections, handshake
	// rate) and the handshakes in progress; the zero value is none.
	Limits Limits
}

// defaultShutdownTimeout bounds Shutdown when its context has no deadline.
const defaultShutdownTimeout = 5 * time.Second

// Server serves WebSocket connections (and plain HTTP on the same port) with
// one of the engines.
type Server struct {
	opts Options
	cfg  session.Config
	eng  core.Engine
	log  *slog.Logger

	// The HTTP bridge's goroutines: httpCtx is the requests' context,
	// cancelled by Shutdown, which then waits for httpWG.
	httpCtx    context.Context
	httpCancel context.CancelFunc
	httpWG     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// NewServer checks opts and prepares a server; nothing is bound yet.
func NewServer(h session.Handler, opts Options) (*Server, error) {
	if h == nil && opts.Session.Handler == nil && opts.Session.Upgrade == nil {
		return nil, errors.New("loop: NewServer needs a handler (or Options.Session.Upgrade)")
	}
	s := &Server{opts: opts, cfg: opts.Session}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.Default()
	}
	s.log = s.opts.Logger
	if s.opts.Engine == "" || s.opts.Engine == "kqueue" {
		s.opts.Engine = "epoll"
	}
	if s.opts.Loops <= 0 {
		s.opts.Loops = runtime.GOMAXPROCS(0)
	}
	if s.opts.ShutdownTimeout <= 0 {
		s.opts.ShutdownTimeout = defaultShutdownTimeout
	}
	if s.opts.MaxConns < 0 {
		return nil, fmt.Errorf("loop: MaxConns %d is negative", s.opts.MaxConns)
	}
	factory, ok := core.Lookup(s.opts.Engine)
	if !ok {
		hint := ""
		if s.opts.Engine == "gnet" {
			hint = ` (import _ "github.com/wsloop/wsloop/loop/gnet" to link it)`
		}
		return nil, fmt.Errorf("loop: unknown engine %q%s: choose one of %s", opts.Engine, hint, core.Names())
	}
	if err := s.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	if h != nil {
		s.cfg.Handler = h
	}
	s.cfg.Role = session.Server
	s.cfg.Normalize()
	s.httpCtx, s.httpCancel = context.WithCancel(context.Background())
	s.cfg.HTTP = s.serveHTTP

	eng, err := factory(&core.Options{
		Loops:            s.opts.Loops,
		MaxConns:         s.opts.MaxConns,
		Config:           &s.cfg,
		Logger:           s.log,
		TLS:              s.opts.TLSConfig,
		MaxTLSHandshakes: s.opts.MaxTLSHandshakes,
		SendBuffer:       s.opts.SendBuffer,
		ShutdownTimeout:  s.opts.ShutdownTimeout,
	})
	if err != nil {
		s.httpCancel()
		return nil, fmt.Errorf("loop: engine %s: %w", s.opts.Engine, err)
	}
	s.eng = eng
	if s.opts.Observer != nil {
		eng.Group().Observe(s.opts.Observer)
	}
	if s.opts.Limits.active() || len(s.opts.Limits.TrustedProxies) > 0 {
		lim, err := newLimiter(s.opts.Limits)
		if err != nil {
			s.httpCancel()
			return nil, err
		}
		eng.Group().Limit(lim)
	}
	return s, nil
}

// Listen binds addr and starts serving in the background.
func (s *Server) Listen(addr string) error {
	if o := s.opts.Observer; o != nil {
		g := s.eng.Group()
		o.Started(ServerInfo{Engine: s.opts.Engine, Loops: len(g.Loops()), Capacity: g.Capacity(), Snapshot: g.Snapshot})
	}
	if err := s.eng.Listen(addr); err != nil {
		return fmt.Errorf("loop: listen %s (%s engine): %w", addr, s.opts.Engine, err)
	}
	s.log.Debug("wsloop listening", "addr", s.eng.Addr(), "engine", s.opts.Engine,
		"loops", s.opts.Loops, "capacity", s.Capacity())
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.eng.Addr() }

// Engine is the name of the engine serving (after defaults: "epoll", "gnet"
// or "goroutine").
func (s *Server) Engine() string { return s.opts.Engine }

// Loops is the number of event loops.
func (s *Server) Loops() int { return s.opts.Loops }

// Capacity is the most connections the server will hold at once.
func (s *Server) Capacity() int { return s.eng.Group().Capacity() }

// Conns is the number of open connections.
func (s *Server) Conns() int { return s.eng.Group().Conns() }

// Queued returns what the server's connections have queued and not yet
// written: pending bytes, and the memory of the buffers holding them (it
// follows the pending bytes: at most HighWater plus a message per
// connection, see session.Overflow).
func (s *Server) Queued() (pending, memory int64) { return s.eng.Group().Queued() }

// TLSHandshakes reports the TLS handshakes in progress: running (at most
// Options.MaxTLSHandshakes) and waiting for a place.
func (s *Server) TLSHandshakes() (running, waiting int) { return s.eng.Group().Handshakes() }

// Config is the effective Config of the server's connections (defaults
// filled in); it must not be modified.
func (s *Server) Config() *session.Config { return &s.cfg }

// Broadcast sends one message to every open connection: encoded once, one
// task per loop. It returns the first loop's refusal, if any (ErrClosed
// once the server has stopped).
func (s *Server) Broadcast(op session.Opcode, p []byte) error {
	return s.eng.Group().Broadcast(session.NewPrepared(op, p))
}

// Shutdown stops accepting, sends 1001 (going away) to every connection,
// waits for their close replies until ctx is done (or Options.ShutdownTimeout
// when ctx has no deadline), closes the rest, and returns when every
// goroutine and socket of the server is gone.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.opts.ShutdownTimeout)
			defer cancel()
		}
		// Handlers still running get a cancelled request context; their
		// answers find their connections gone and are dropped.
		s.httpCancel()
		err := s.eng.Shutdown(ctx)
		done := make(chan struct{})
		go func() { s.httpWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			// The engine is gone; HTTP handlers that ignore their context
			// got one more moment.
			if err == nil {
				err = errors.New("loop: shutdown: HTTP handlers still running after the deadline")
			}
		}
		s.shutdownErr = err
	})
	return s.shutdownErr
}

// Wait blocks until the server has stopped.
func (s *Server) Wait() error { return s.eng.Wait() }

// ListenAndServe serves h on addr until the server stops (Shutdown from
// another goroutine, or a fatal error).
func ListenAndServe(addr string, h session.Handler, opts Options) error {
	s, err := NewServer(h, opts)
	if err != nil {
		return err
	}
	if err := s.Listen(addr); err != nil {
		return err
	}
	return s.Wait()
}

// ErrWriteTimeout is the error OnClose receives when the peer took none of a
// connection's queued bytes for session.Config.WriteTimeout.
var ErrWriteTimeout = core.ErrWriteTimeout
