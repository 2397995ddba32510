//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package goroutine

func setReusePort(fd uintptr) error { return nil }
