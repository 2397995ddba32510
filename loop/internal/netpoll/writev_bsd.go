//go:build darwin || freebsd || netbsd || openbsd

package netpoll

import "golang.org/x/sys/unix"

// writev writes the buffers one by one where x/sys offers no writev: the
// count is exact, a partial write ends it.
func writev(fd int, bufs [][]byte) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := unix.Write(fd, b)
		if n > 0 {
			total += n
		}
		if err != nil {
			if total > 0 && err == unix.EAGAIN {
				return total, nil
			}
			return total, err
		}
		if n < len(b) {
			return total, nil
		}
	}
	return total, nil
}
