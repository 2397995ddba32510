//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package epoll

import (
	"errors"
	"net"
	"runtime"
	"time"

	"github.com/wsloop/wsloop/loop/internal/core"
	"github.com/wsloop/wsloop/session"
)

// errNoEpoll says what to use instead where there is neither epoll nor kqueue.
var errNoEpoll = errors.New("wsloop: the epoll engine is not available on " + runtime.GOOS + `; use Options.Engine "goroutine"`)

func init() {
	core.Register("epoll", func(*core.Options) (core.Engine, error) { return nil, errNoEpoll })
}

// Dialer needs an event loop.
type Dialer struct{}

func NewDialer(o *core.Options, timeout time.Duration) (*Dialer, error) { return nil, errNoEpoll }

func (d *Dialer) Dial(raddr *net.TCPAddr, src net.IP, r *session.ClientRequest, h session.Handler) error {
	return errNoEpoll
}

func (d *Dialer) Conns() int   { return 0 }
func (d *Dialer) Close() error { return nil }
