package bench

import "syscall"

// serverProcAttr makes a server die with wsbench, so that an interrupted
// run leaves no server holding thousands of sockets behind.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
