package loop

import (
	"errors"
	"log/slog"
	"net"
	"runtime"
	"time"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/loop/internal/epoll"
	"github.com/wsloop/wsloop/session"
)

// DialerOptions configure a Dialer.
type DialerOptions struct {
	// Loops is the number of event loops; default runtime.GOMAXPROCS(0).
	Loops int
	// Session configures every connection (Role is forced to Client);
	// with Session.Compression every connection offers permessage-deflate.
	Session session.Config
	// ConnectTimeout bounds connect plus handshake; default 10s.
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Dialer opens many client connections on event loops (the epoll/kqueue
// engine): non-blocking connects, the opening handshake, masked frames. It
// is what the load generator holds tens of thousands of sockets with.
type Dialer struct {
	d   *epoll.Dialer
	cfg session.Config
}

// NewDialer starts the loops.
func NewDialer(opts DialerOptions) (*Dialer, error) {
	if opts.Session.Handler != nil || opts.Session.Upgrade != nil {
		return nil, errors.New("loop: a Dialer's handlers are given to Dial, not in its Session config")
	}
	if err := opts.Session.Validate(); err != nil {
		return nil, err
	}
	dl := &Dialer{cfg: opts.Session}
	dl.cfg.Role = session.Client
	dl.cfg.Normalize()
	if opts.Loops <= 0 {
		opts.Loops = runtime.GOMAXPROCS(0)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	d, err := epoll.NewDialer(&core.Options{Loops: opts.Loops, Config: &dl.cfg, Logger: opts.Logger}, opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	dl.d = d
	return dl, nil
}

// Dial starts connecting to raddr (ip:port) from local address src (nil:
// the kernel's choice), then the handshake for r. It returns at once, with
// an error only when no socket could be made (EMFILE, ...). On success
// h.OnOpen runs on the connection's loop; on failure h.OnClose runs with
// StatusAbnormal and the cause (a syscall error such as ECONNREFUSED or
// ETIMEDOUT, or a *session.HandshakeError).
func (d *Dialer) Dial(raddr *net.TCPAddr, src net.IP, r *session.ClientRequest, h session.Handler) error {
	return d.d.Dial(raddr, src, r, h)
}

// Conns is the number of connections open or being opened.
func (d *Dialer) Conns() int { return d.d.Conns() }

// Close closes every connection (no close handshake) and stops the loops.
func (d *Dialer) Close() error { return d.d.Close() }
