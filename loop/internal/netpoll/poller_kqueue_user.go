//go:build darwin || freebsd

package netpoll

import (
	"os"

	"golang.org/x/sys/unix"
)

// waker wakes a kqueue through an EVFILT_USER event (no extra fd).
type waker struct{ wkq int }

const wakeIdent = 0

func (p *Poller) initWake() error {
	p.wkq = p.kq
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], wakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := unix.Kevent(p.kq, ev[:], nil, nil); err != nil {
		return os.NewSyscallError("kevent", err)
	}
	return nil
}

func (p *Poller) isWake(e *unix.Kevent_t) bool { return int(e.Filter) == unix.EVFILT_USER }

func (p *Poller) Wake() error {
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], wakeIdent, unix.EVFILT_USER, 0)
	ev[0].Fflags = unix.NOTE_TRIGGER
	for {
		_, err := unix.Kevent(p.wkq, ev[:], nil, nil)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// DrainWake does nothing: EV_CLEAR resets the event when it is reported.
func (p *Poller) DrainWake() {}

func (p *Poller) closeWake() {}
