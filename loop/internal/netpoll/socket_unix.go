//go:build linux || darwin || freebsd || netbsd || openbsd

package netpoll

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ListenBacklog is asked of listen(2); the kernel caps it (somaxconn).
// Connections beyond a server's capacity wait there until it has room.
const ListenBacklog = 4096

// Listen binds n listening sockets to addr, all with SO_REUSEPORT on the
// port the first one got (so that several loops, and several processes of
// the same user, share the port).
func Listen(addr string, n int) (fds []int, bound *net.TCPAddr, err error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			fds = nil
		}
	}()
	port := ta.Port
	for i := 0; i < n; i++ {
		fd, err := listenSocket(ta.IP, port)
		if err != nil {
			return fds, nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		fds = append(fds, fd)
		if i == 0 {
			sa, err := unix.Getsockname(fd)
			if err != nil {
				return fds, nil, os.NewSyscallError("getsockname", err)
			}
			bound = SockaddrToTCP(sa)
			port = bound.Port
		}
	}
	return fds, bound, nil
}

func listenSocket(ip net.IP, port int) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	dual := false
	switch {
	case ip == nil || (ip.IsUnspecified() && ip.To4() == nil):
		family, dual = unix.AF_INET6, true
		sa = &unix.SockaddrInet6{Port: port}
	case ip.To4() != nil:
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip.To4())
		sa = s
	default:
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip.To16())
		sa = s
	}
	fd, err := NewSocket(family)
	if err != nil && dual {
		// no IPv6 here: serve IPv4 only
		family, dual = unix.AF_INET, false
		sa = &unix.SockaddrInet4{Port: port}
		fd, err = NewSocket(family)
	}
	if err != nil {
		return -1, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return -1, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	// Always: besides the loops' own listeners on Linux, it lets worker
	// processes share the port (wsloop -procs).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return -1, os.NewSyscallError("setsockopt SO_REUSEPORT", err)
	}
	if family == unix.AF_INET6 {
		v6only := 1
		if dual {
			v6only = 0
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, ListenBacklog); err != nil {
		return -1, os.NewSyscallError("listen", err)
	}
	ok = true
	return fd, nil
}

// SockaddrToTCP converts a socket address (it allocates).
func SockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: a.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, a.Addr[:])
		var zone string
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: ip, Port: a.Port, Zone: zone}
	}
	return nil
}

// SockaddrOf converts an address to a socket address and its family (0,
// nil for an invalid IP).
func SockaddrOf(ip net.IP, port int) (int, unix.Sockaddr) {
	if ip4 := ip.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip4)
		return unix.AF_INET, s
	}
	if len(ip) == net.IPv6len {
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip)
		return unix.AF_INET6, s
	}
	return 0, nil
}

// PeerAddr asks the kernel for fd's peer address (nil once the peer is
// gone); it allocates, so engines keep no address per connection.
func PeerAddr(fd int) net.Addr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil
	}
	if a := SockaddrToTCP(sa); a != nil {
		return a
	}
	return nil
}

// Writev writes bufs to a non-blocking fd: how many bytes it took (fewer
// when the socket is full), retrying EINTR; EAGAIN is not an error.
func Writev(fd int, bufs [][]byte) (int, error) {
	for {
		var n int
		var err error
		if len(bufs) == 1 {
			n, err = unix.Write(fd, bufs[0])
		} else {
			n, err = writev(fd, bufs)
		}
		n = max(n, 0) // the system returns -1 with its error
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return n, nil
		}
		return n, os.NewSyscallError("write", err)
	}
}
