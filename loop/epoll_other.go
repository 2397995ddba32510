//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package loop

import (
	"fmt"
	"net"
	"runtime"

	"github.com/wsloop/wsloop/session"
)

// errNoEpoll says what to use instead where there is neither epoll nor kqueue.
var errNoEpoll = fmt.Errorf("wsloop: the epoll engine is not available on %s; use Options.Engine \"goroutine\"", runtime.GOOS)

func newEpollEngine(opts *Options, cfg *session.Config) (engine, error) { return nil, errNoEpoll }

// dialEngine is the Dialer's body; it needs an event loop.
type dialEngine struct{}

func newDialEngine(opts DialerOptions) (*dialEngine, error) { return nil, errNoEpoll }

func (d *dialEngine) dial(raddr *net.TCPAddr, src net.IP, r *session.ClientRequest, h session.Handler) error {
	return errNoEpoll
}

func (d *dialEngine) conns() int   { return 0 }
func (d *dialEngine) close() error { return nil }
