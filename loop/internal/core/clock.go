package core

import "time"

// Now is the engine clock (nanoseconds, monotonic) that loops hand to
// connections. It starts at one second so that no real time reads as zero,
// which means "none" for timers.
func Now() int64 { return int64(time.Since(clockBase)) + int64(time.Second) }

var clockBase = time.Now()

// msStamp is an engine time in wrapping milliseconds, never 0 (0 means none).
func msStamp(at int64) uint32 {
	s := uint32(at / int64(time.Millisecond))
	if s == 0 {
		s = 1
	}
	return s
}
