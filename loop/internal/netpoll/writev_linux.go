package netpoll

import "golang.org/x/sys/unix"

func writev(fd int, bufs [][]byte) (int, error) {
	n, err := unix.Writev(fd, bufs)
	if n < 0 {
		n = 0
	}
	return n, err
}
