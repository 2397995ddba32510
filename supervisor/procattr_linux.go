package supervisor

import "syscall"

// workerProcAttr puts a worker in its own process group (a terminal's
// Ctrl-C reaches only the supervisor, which forwards it) and has the
// kernel send it SIGTERM should the supervisor die without stopping it.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
