package loadtest

import "golang.org/x/sys/unix"

// fdReserve are the descriptors a process keeps for itself (epoll, eventfds,
// pipes, files) below its open-file limit.
const fdReserve = 100

// socketsPerProc raises this process's open-file soft limit to its hard limit
// and returns how many sockets a process may hold.
func socketsPerProc() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024 - fdReserve
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	n := int(min(rl.Cur, 1<<24)) - fdReserve
	return max(n, 1)
}
