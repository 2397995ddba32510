//go:build linux

package netpoll

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poller is one loop's readiness notifier: epoll plus an eventfd for
// wake-ups from other goroutines. Each registered fd carries a token (the
// connection's slot, or TokenWake/tokenListen) in the event's data, so an
// event needs no lookup by fd.
type Poller struct {
	epfd   int
	wakefd int
	events []unix.EpollEvent
}

func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	p := &Poller{epfd: epfd, wakefd: wfd, events: make([]unix.EpollEvent, 256)}
	if err := p.Add(wfd, TokenWake, true, false); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func epollEvents(read, write bool) uint32 {
	var ev uint32
	if read {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if write {
		ev |= unix.EPOLLOUT
	}
	return ev
}

func (p *Poller) Add(fd int, token int32, read, write bool) error {
	ev := unix.EpollEvent{Events: epollEvents(read, write), Fd: token}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl add", err)
	}
	return nil
}

func (p *Poller) Mod(fd int, token int32, read, write bool) error {
	ev := unix.EpollEvent{Events: epollEvents(read, write), Fd: token}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl mod", err)
	}
	return nil
}

func (p *Poller) Del(fd int) error {
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl del", err)
	}
	return nil
}

// Wait blocks for events up to msec milliseconds (-1: no limit) and returns
// how many are ready; read them with event.
func (p *Poller) Wait(msec int) (int, error) {
	n, err := unix.EpollWait(p.epfd, p.events, msec)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	return n, nil
}

// Event returns the i-th ready event of the last wait.
func (p *Poller) Event(i int) (token int32, readable, writable bool) {
	e := &p.events[i]
	hup := e.Events&(unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0
	return e.Fd, e.Events&unix.EPOLLIN != 0 || hup, e.Events&unix.EPOLLOUT != 0 || hup
}

var wakeValue = [8]byte{1} // any non-zero count wakes

// Wake makes a concurrent or the next wait return. Safe from any goroutine
// while the poller is open.
func (p *Poller) Wake() error {
	for {
		_, err := unix.Write(p.wakefd, wakeValue[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN { // the counter is saturated: a wake-up is pending anyway
			return nil
		}
		return err
	}
}

// DrainWake resets the wake-up after wait reported TokenWake.
func (p *Poller) DrainWake() {
	var b [8]byte
	_, _ = unix.Read(p.wakefd, b[:])
}

func (p *Poller) Close() error {
	err1 := unix.Close(p.wakefd)
	err2 := unix.Close(p.epfd)
	if err1 != nil {
		return err1
	}
	return err2
}

// NewSocket returns a non-blocking, close-on-exec stream socket.
func NewSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// ReusePortListeners: Linux balances connections over SO_REUSEPORT
// listeners, so each loop gets its own socket and there is no thundering
// herd.
const ReusePortListeners = true

// Accept takes one pending connection as a non-blocking, close-on-exec
// socket. It passes no address buffer: x/sys's Accept4 allocates a Sockaddr
// per call, garbage that a server holding idle connections pays for in RSS.
// The peer's address is asked for (getpeername) only when someone wants it.
func Accept(lfd int) (int, error) {
	fd, _, err := AcceptAddr(lfd)
	return fd, err
}

// AcceptAddr is Accept that also returns the peer's address, read into a
// buffer on the stack: nothing is allocated.
func AcceptAddr(lfd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	for {
		n := uint32(unix.SizeofSockaddrAny)
		r, _, e := syscall.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, netip.AddrPort{}, e
		}
		return int(r), rawAddrPort(&rsa), nil
	}
}

// BindNoPort lets a client socket bound to a source address choose its
// port at connect time, from the whole 4-tuple space (IP_BIND_ADDRESS_NO_PORT).
func BindNoPort(fd int) {
	_ = unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
}
