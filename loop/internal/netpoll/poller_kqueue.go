//go:build darwin || freebsd || netbsd || openbsd

package netpoll

import (
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller is one loop's readiness notifier on kqueue. kevent reports the fd
// (Ident), not a user token we can trust on every BSD (Udata is a pointer on
// some), so the poller keeps its own fd-to-token table.
type Poller struct {
	kq      int
	tokens  []int32 // by fd; only fds registered here are meaningful
	events  []unix.Kevent_t
	changes []unix.Kevent_t
	waker
}

func NewPoller() (*Poller, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, os.NewSyscallError("kqueue", err)
	}
	unix.CloseOnExec(kq)
	p := &Poller{kq: kq, events: make([]unix.Kevent_t, 256)}
	if err := p.initWake(); err != nil {
		unix.Close(kq)
		return nil, err
	}
	return p, nil
}

func (p *Poller) setToken(fd int, token int32) {
	for fd >= len(p.tokens) {
		p.tokens = append(p.tokens, 0)
	}
	p.tokens[fd] = token
}

// ctl applies read and write interest. EV_ADD on an existing filter just
// updates it; a write filter is created only once it is wanted (listening
// sockets never get one).
func (p *Poller) ctl(fd int, read, write bool, add bool) error {
	flag := func(on bool) int {
		if on {
			return unix.EV_ADD | unix.EV_ENABLE
		}
		return unix.EV_ADD | unix.EV_DISABLE
	}
	p.changes = p.changes[:0]
	var r, w unix.Kevent_t
	unix.SetKevent(&r, fd, unix.EVFILT_READ, flag(read))
	p.changes = append(p.changes, r)
	if write || !add {
		unix.SetKevent(&w, fd, unix.EVFILT_WRITE, flag(write))
		p.changes = append(p.changes, w)
	}
	for {
		_, err := unix.Kevent(p.kq, p.changes, nil, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("kevent", err)
		}
		return nil
	}
}

func (p *Poller) Add(fd int, token int32, read, write bool) error {
	p.setToken(fd, token)
	return p.ctl(fd, read, write, true)
}

func (p *Poller) Mod(fd int, token int32, read, write bool) error {
	p.setToken(fd, token)
	return p.ctl(fd, read, write, false)
}

func (p *Poller) Del(fd int) error {
	var ch [2]unix.Kevent_t
	unix.SetKevent(&ch[0], fd, unix.EVFILT_READ, unix.EV_DELETE)
	unix.SetKevent(&ch[1], fd, unix.EVFILT_WRITE, unix.EV_DELETE)
	_, err := unix.Kevent(p.kq, ch[:], nil, nil)
	if err != nil && err != unix.ENOENT {
		return os.NewSyscallError("kevent", err)
	}
	return nil
}

func (p *Poller) Wait(msec int) (int, error) {
	var ts *unix.Timespec
	var t unix.Timespec
	if msec >= 0 {
		t = unix.NsecToTimespec(int64(msec) * 1e6)
		ts = &t
	}
	n, err := unix.Kevent(p.kq, nil, p.events, ts)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("kevent", err)
	}
	return n, nil
}

func (p *Poller) Event(i int) (token int32, readable, writable bool) {
	e := &p.events[i]
	if p.isWake(e) {
		return TokenWake, true, false
	}
	fd := int(e.Ident)
	if fd >= len(p.tokens) {
		return TokenNone, false, false
	}
	hup := e.Flags&(unix.EV_EOF|unix.EV_ERROR) != 0
	switch int(e.Filter) {
	case unix.EVFILT_READ:
		return p.tokens[fd], true, hup
	case unix.EVFILT_WRITE:
		return p.tokens[fd], hup, true
	}
	return TokenNone, false, false
}

func (p *Poller) Close() error {
	p.closeWake()
	return unix.Close(p.kq)
}

// NewSocket returns a non-blocking, close-on-exec stream socket.
func NewSocket(family int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setnonblock", err)
	}
	return fd, nil
}

// ReusePortListeners: the BSDs do not balance connections over SO_REUSEPORT
// sockets, so one listener is shared by every loop's kqueue (a few spurious
// EAGAINs on accept are the price).
const ReusePortListeners = false

// AcceptAddr is Accept that also returns the peer's address.
func AcceptAddr(lfd int) (int, netip.AddrPort, error) {
	fd, err := Accept(lfd)
	if err != nil {
		return fd, netip.AddrPort{}, err
	}
	return fd, PeerAddrPort(fd), nil
}

// Accept takes one pending connection as a non-blocking, close-on-exec socket.
func Accept(lfd int) (int, error) {
	for {
		syscall.ForkLock.RLock()
		fd, _, err := unix.Accept(lfd)
		if err == nil {
			unix.CloseOnExec(fd)
		}
		syscall.ForkLock.RUnlock()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
}

// BindNoPort does nothing on the BSDs: the port is chosen at bind.
func BindNoPort(fd int) {}
