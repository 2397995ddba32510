//go:build netbsd || openbsd

package netpoll

import (
	"os"

	"golang.org/x/sys/unix"
)

// waker wakes a kqueue through a non-blocking pipe (these BSDs lack
// EVFILT_USER in x/sys).
type waker struct{ rfd, wfd int }

func (p *Poller) initWake() error {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return os.NewSyscallError("pipe2", err)
	}
	p.rfd, p.wfd = fds[0], fds[1]
	if err := p.Add(p.rfd, TokenWake, true, false); err != nil {
		p.closeWake()
		return err
	}
	return nil
}

func (p *Poller) isWake(e *unix.Kevent_t) bool {
	return int(e.Ident) == p.rfd && int(e.Filter) == unix.EVFILT_READ
}

var wakeByte = [1]byte{1}

func (p *Poller) Wake() error {
	for {
		_, err := unix.Write(p.wfd, wakeByte[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN { // the pipe is full: a wake-up is pending anyway
			return nil
		}
		return err
	}
}

func (p *Poller) DrainWake() {
	var b [64]byte
	for {
		n, err := unix.Read(p.rfd, b[:])
		if n <= 0 || err != nil {
			return
		}
	}
}

func (p *Poller) closeWake() {
	unix.Close(p.rfd)
	unix.Close(p.wfd)
}
