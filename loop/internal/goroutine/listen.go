package goroutine

import (
	"context"
	"net"
	"syscall"
)

// listen is net.Listen with SO_REUSEPORT where the system has it, so that
// worker processes can share the port as with the event loops.
func listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setReusePort(fd) })
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
