package loop

// CONTRACT FILE: the lead's facade. Engines implement the engine interface.

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
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

// Server serves WebSocket connections (and plain HTTP on the same port) with
// one of the engines.
type Server struct {
	opts Options
	cfg  session.Config
	eng  engine
	log  *slog.Logger
}

// NewServer checks opts and prepares a server; nothing is bound yet.
func NewServer(h session.Handler, opts Options) (*Server, error) { panic("unimplemented") }

// Listen binds addr and starts serving in the background.
func (s *Server) Listen(addr string) error { panic("unimplemented") }

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { panic("unimplemented") }

// Capacity is the most connections the server will hold at once.
func (s *Server) Capacity() int { panic("unimplemented") }

// Conns is the number of open connections.
func (s *Server) Conns() int { panic("unimplemented") }

// Broadcast sends one message to every open connection: encoded once, one
// task per loop.
func (s *Server) Broadcast(op session.Opcode, p []byte) { panic("unimplemented") }

// Shutdown stops accepting, sends 1001 (going away) to every connection,
// waits for their close replies until ctx is done (or Options.ShutdownTimeout
// when ctx has no deadline), closes the rest, and returns when every
// goroutine and socket of the server is gone.
func (s *Server) Shutdown(ctx context.Context) error { panic("unimplemented") }

// Wait blocks until the server has stopped.
func (s *Server) Wait() error { panic("unimplemented") }

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
