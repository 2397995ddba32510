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
