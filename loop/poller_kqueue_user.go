//go:build darwin || freebsd

package loop

import (
	"os"

	"golang.org/x/sys/unix"
)

// waker wakes a kqueue through an EVFILT_USER event (no extra fd).
type waker struct{ wkq int }

const wakeIdent = 0

func (p *poller) initWake() error {
	p.wkq = p.kq
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], wakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := unix.Kevent(p.kq, ev[:], nil, nil); err != nil {
		return os.NewSyscallError("kevent", err)
	}
	return nil
}

func (p *poller) isWake(e *unix.Kevent_t) bool { return int(e.Filter) == unix.EVFILT_USER }

func (p *poller) wake() error {
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

// drainWake does nothing: EV_CLEAR resets the event when it is reported.
func (p *poller) drainWake() {}

func (p *poller) closeWake() {}
