//go:build linux || darwin || freebsd || netbsd || openbsd

package netpoll

import (
	"os"

	"golang.org/x/sys/unix"
)

// RaiseOpenFileLimit raises the soft RLIMIT_NOFILE to the hard limit (as
// far as the system lets it) and returns the resulting soft limit: how many
// descriptors this process may hold.
func RaiseOpenFileLimit() (int, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, os.NewSyscallError("getrlimit", err)
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &want) == nil {
			r = want
		} else if want.Cur > 10240 {
			// macOS refuses more than OPEN_MAX for an unlimited hard limit.
			want.Cur = 10240
			if want.Cur > r.Cur && unix.Setrlimit(unix.RLIMIT_NOFILE, &want) == nil {
				r = want
			}
		}
	}
	const ceiling = 1 << 30
	if uint64(r.Cur) > ceiling {
		return ceiling, nil
	}
	return int(r.Cur), nil
}
