package bridge

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// waitExited blocks until process pid has exited, without reaping it: while
// it is a zombie its pid, and so its process group id, cannot be reused, so
// the group may still be signalled safely.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}
