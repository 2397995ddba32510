package supervisor

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReservePort binds a socket to addr with SO_REUSEPORT and does not listen
// on it: the port is the supervisor's for as long as it runs (port 0 picks
// a free one), workers that listen with SO_REUSEPORT can share it, and no
// connection ever waits on this socket, since only listening sockets take
// them. It returns the address with the port filled in.
func ReservePort(addr string) (bound string, release func(), err error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("supervisor: address %q: %w", addr, err)
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr
	switch ip4 := ta.IP.To4(); {
	case ta.IP == nil || ta.IP.IsUnspecified() && ip4 == nil:
		sa = &unix.SockaddrInet6{Port: ta.Port}
	case ip4 != nil:
		family = unix.AF_INET
		s := &unix.SockaddrInet4{Port: ta.Port}
		copy(s.Addr[:], ip4)
		sa = s
	default:
		s := &unix.SockaddrInet6{Port: ta.Port}
		copy(s.Addr[:], ta.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil && family == unix.AF_INET6 && ta.IP == nil { // no IPv6: the workers fall back to IPv4 too
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ta.Port}
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return "", nil, os.NewSyscallError("socket", err)
	}
	fail := func(what string, err error) (string, func(), error) {
		unix.Close(fd)
		return "", nil, fmt.Errorf("supervisor: reserving %s: %w", addr, os.NewSyscallError(what, err))
	}
	// SO_REUSEPORT alone: with SO_REUSEADDR too, any SO_REUSEADDR
	// listener (net.Listen's) could bind beside a socket that does not
	// listen, and would take connections the workers never see.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("setsockopt", err)
	}
	if family == unix.AF_INET6 && (ta.IP == nil || ta.IP.IsUnspecified()) {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	port := 0
	switch g := got.(type) {
	case *unix.SockaddrInet4:
		port = g.Port
	case *unix.SockaddrInet6:
		port = g.Port
	}
	host := ""
	if ta.IP != nil {
		host = ta.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), func() { unix.Close(fd) }, nil
}
