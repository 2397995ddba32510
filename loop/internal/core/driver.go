package core

import "net"

// Driver moves bytes for a Loop's connections: it is what an engine adds to
// the core (a poller and system calls, gnet, or goroutines with blocking
// I/O). The Loop calls it on the loop's goroutine only, and never while a
// driver call is on the stack.
type Driver interface {
	// Write writes bufs in order without blocking and returns how many
	// bytes the socket took: all, fewer when it is full (the core keeps the
	// rest and asks for writable reports), or an error when the socket is
	// broken (the core then finishes the connection with that error).
	Write(c *Conn, bufs [][]byte) (int, error)
	// Interest sets whether the driver reports c readable (Loop.Input,
	// Loop.Hangup) and writable (Loop.Writable). A driver that cannot stop
	// reading may go on: the core ignores what no longer matters.
	Interest(c *Conn, read, write bool) error
	// Close closes c's socket; the core has finished with it and ignores
	// any later report of it.
	Close(c *Conn)
	// RemoteAddr returns c's peer address, or nil.
	RemoteAddr(c *Conn) net.Addr
}
