//go:build unix

package bridge

import (
	"os"
	"syscall"
)

// procAttr puts a program in a process group of its own, so that the
// signals that stop it reach the processes it started too, and on Linux
// asks the kernel to kill it if wsloop dies first.
func procAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(a)
	return a
}

// signalGroup sends sig to the process group that p leads.
func signalGroup(p *os.Process, sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok {
		_ = syscall.Kill(-p.Pid, s)
	}
}

var (
	sigTerm os.Signal = syscall.SIGTERM
	sigKill os.Signal = syscall.SIGKILL
)
