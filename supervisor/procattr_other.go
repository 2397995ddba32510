//go:build !linux

package supervisor

import "syscall"

// workerProcAttr puts a worker in its own process group; only Linux can
// also tie its life to the supervisor's (Pdeathsig).
func workerProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
