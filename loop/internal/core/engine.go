package core

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wsloop/wsloop/loop/internal/netpoll"
	"github.com/wsloop/wsloop/session"
)

// Options configure an engine.
type Options struct {
	Loops    int             // event loops (at least 1)
	MaxConns int             // most open connections; 0: what the open-file limit allows
	Config   *session.Config // completed: defaults set, Role Server, HTTP wired
	Logger   *slog.Logger
	TLS      *tls.Config // nil: plain TCP (see Group.UseTLS)
	// MaxTLSHandshakes bounds the TLS handshakes in progress; 0:
	// DefaultMaxTLSHandshakes.
	MaxTLSHandshakes int
	// SendBuffer, when positive, is the SO_SNDBUF of accepted sockets
	// (the kernel's buffer per connection; 0 keeps its autotuning).
	SendBuffer int
	// ShutdownTimeout bounds Shutdown when its context has no deadline.
	ShutdownTimeout time.Duration
}

// Engine is one way of moving bytes between sockets and the core.
type Engine interface {
	// Listen binds addr and starts serving; it returns once the socket is bound.
	Listen(addr string) error
	Addr() net.Addr
	// Group is the engine's connections: counts, capacity, broadcast.
	Group() *Group
	// Shutdown stops accepting, sends 1001 to every connection, waits for
	// the close replies until ctx is done, then closes what is left and
	// returns once every goroutine and socket of the engine is gone.
	Shutdown(ctx context.Context) error
	// Wait blocks until the engine has stopped (after Shutdown or a fatal
	// error) and returns that error.
	Wait() error
}

// Factory makes an engine ready to listen.
type Factory func(o *Options) (Engine, error)

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes an engine available by name (from an init function).
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[name] = f
}

// Lookup returns the engine registered as name.
func Lookup(name string) (Factory, bool) {
	regMu.Lock()
	defer regMu.Unlock()
	f, ok := registry[name]
	return f, ok
}

// Names lists the registered engines, for error messages.
func Names() string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// connFDReserve is kept out of a connection capacity derived from the
// open-file limit: listeners, pollers, wake-ups, logs, the application.
const connFDReserve = 64

// unlimitedConns is the capacity where nothing limits descriptors.
const unlimitedConns = 1 << 30

// ConnLimit is an engine's connection capacity: the open-file limit (the
// soft limit raised to the hard one) less a reserve for listeners, pollers
// and the application, and max when that is set and lower.
func ConnLimit(max, loops int) (int, error) {
	limit, err := netpoll.RaiseOpenFileLimit()
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

// OverCapacityResponse answers a connection that arrives when an engine that
// cannot leave it in the listen backlog holds its capacity.
var OverCapacityResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")
