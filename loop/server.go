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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
)

// Options configure a Server. The zero value serves with the epoll engine,
// one loop per CPU, as many connections as the open-file limit allows.
type Options struct {
	// Engine is "epoll" (default; kqueue on BSD and macOS, "kqueue" is an
	// alias), "gnet" or "goroutine".
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
	// own goroutine, off the loops; its response is buffered and sent with
	// Connection: close. nil: 404 for every path except /healthz.
	HTTP http.Handler
	// TLSConfig serves wss; only the goroutine engine supports it.
	TLSConfig *tls.Config
	// ShutdownTimeout bounds Shutdown's wait for close replies when its
	// context has no deadline; default 5s.
	ShutdownTimeout time.Duration
	// Logger receives the engine's logs; default slog.Default().
	Logger *slog.Logger
}

// engine is one way of moving bytes between sockets and session.Conns.
type engine interface {
	// listen binds addr and starts serving; it returns once the socket is bound.
	listen(addr string) error
	addr() net.Addr
	// capacity is the most connections the engine will hold at once.
	capacity() int
	// conns is the number of open connections.
	conns() int
	// broadcast writes m to every open connection, one task per loop.
	broadcast(m *session.Prepared)
	// shutdown stops accepting, sends 1001 to every connection, waits for the
	// close replies until ctx is done, then closes what is left and returns
	// once every goroutine and socket of the engine is gone.
	shutdown(ctx context.Context) error
	// wait blocks until the engine has stopped (after shutdown or a fatal error).
	wait() error
}

// Engine constructors, one per engine file. Each returns an engine ready to
// listen; cfg is already completed (defaults set, Role Server, HTTP wired).
//
//	newEpollEngine(opts *Options, cfg *session.Config) (engine, error)     // loop/epoll*.go
//	newGnetEngine(opts *Options, cfg *session.Config) (engine, error)      // loop/gnet.go
//	newGoroutineEngine(opts *Options, cfg *session.Config) (engine, error) // loop/goroutine.go
type engineFactory func(opts *Options, cfg *session.Config) (engine, error)

// engines maps Options.Engine names to constructors. Engine files register
// themselves from init, so a platform without an engine simply lacks its name.
var engines = map[string]engineFactory{}

// registerEngine is called from the init functions of the engine files.
func registerEngine(name string, f engineFactory) { engines[name] = f }

// engineNames lists the registered engines for error messages.
func engineNames() string {
	names := make([]string, 0, len(engines))
	for n := range engines {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// defaultShutdownTimeout bounds Shutdown when its context has no deadline.
const defaultShutdownTimeout = 5 * time.Second

// completeConfig fills the documented defaults of session.Config (the
// Dialer uses it too).
func completeConfig(c *session.Config) { c.Normalize() }

// Server serves WebSocket connections (and plain HTTP on the same port) with
// one of the engines.
type Server struct {
	opts Options
	cfg  session.Config
	eng  engine
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
	factory, ok := engines[s.opts.Engine]
	if !ok {
		return nil, fmt.Errorf("loop: unknown engine %q: choose one of %s", opts.Engine, engineNames())
	}
	if s.opts.TLSConfig != nil && s.opts.Engine != "goroutine" {
		return nil, fmt.Errorf("loop: TLS is supported only by the goroutine engine, not %q: use -engine goroutine", s.opts.Engine)
	}

	if h != nil {
		s.cfg.Handler = h
	}
	s.cfg.Role = session.Server
	completeConfig(&s.cfg)
	s.httpCtx, s.httpCancel = context.WithCancel(context.Background())
	s.cfg.HTTP = s.serveHTTP

	eng, err := factory(&s.opts, &s.cfg)
	if err != nil {
		s.httpCancel()
		return nil, fmt.Errorf("loop: engine %s: %w", s.opts.Engine, err)
	}
	s.eng = eng
	return s, nil
}

// Listen binds addr and starts serving in the background.
func (s *Server) Listen(addr string) error {
	if err := s.eng.listen(addr); err != nil {
		return fmt.Errorf("loop: listen %s (%s engine): %w", addr, s.opts.Engine, err)
	}
	s.log.Debug("wsloop listening", "addr", s.eng.addr(), "engine", s.opts.Engine,
		"loops", s.opts.Loops, "capacity", s.eng.capacity())
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.eng.addr() }

// Engine is the name of the engine serving (after defaults: "epoll", "gnet"
// or "goroutine").
func (s *Server) Engine() string { return s.opts.Engine }

// Loops is the number of event loops (the goroutine engine has none of its
// own; it reports the configured number).
func (s *Server) Loops() int { return s.opts.Loops }

// Capacity is the most connections the server will hold at once.
func (s *Server) Capacity() int { return s.eng.capacity() }

// Conns is the number of open connections.
func (s *Server) Conns() int { return s.eng.conns() }

// Broadcast sends one message to every open connection: encoded once, one
// task per loop.
func (s *Server) Broadcast(op session.Opcode, p []byte) {
	s.eng.broadcast(session.NewPrepared(op, p))
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
		err := s.eng.shutdown(ctx)
		done := make(chan struct{})
		go func() { s.httpWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			// The engine is gone; give HTTP handlers that ignore their
			// context one more moment, then report them.
			select {
			case <-done:
			case <-time.After(time.Second):
				if err == nil {
					err = errors.New("loop: shutdown: HTTP handlers still running after the deadline")
				}
			}
		}
		s.shutdownErr = err
	})
	return s.shutdownErr
}

// Wait blocks until the server has stopped.
func (s *Server) Wait() error { return s.eng.wait() }

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

// engineClock is the clock engines hand to session.Conn (nanoseconds,
// monotonic). It starts at one second so that no real time reads as zero,
// which SetTimer takes for "no timer".
func engineClock() int64 { return int64(time.Since(clockBase)) + int64(time.Second) }

var clockBase = time.Now()

// connFDReserve is kept out of a connection capacity derived from the
// open-file limit: listeners, pollers, wake-ups, logs, the application.
const connFDReserve = 64

// connLimit is the connection cap of the gnet and goroutine engines: the
// open-file limit (raised to the hard limit) less a reserve, and max when
// that is set and lower. Where the system has no such limit, max, or
// unlimitedConns when max is 0.
func connLimit(max, loops int) (int, error) {
	limit, err := raiseOpenFileLimit()
	if err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if limit == 0 {
		if max > 0 {
			return max, nil
		}
		return unlimitedConns, nil
	}
	c := limit - connFDReserve - 4*loops
	if max > 0 && max < c {
		c = max
	}
	if c < 1 {
		return 0, fmt.Errorf("the open-file limit (%d) leaves no room for connections; raise it (ulimit -n)", limit)
	}
	return c, nil
}

// overCapacityResponse answers a connection that arrives when the gnet or
// goroutine engine holds MaxConns connections; the socket is then closed.
// (The epoll engine leaves such connections in the listen backlog.)
var overCapacityResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")

// unlimitedConns is the capacity reported where nothing limits descriptors.
const unlimitedConns = 1 << 30

func init() {
	registerEngine("epoll", newEpollEngine)
}
