package main

import (
	"os"
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the collector's target when GOGC is unset: half of
// Go's 100. wsloop's message paths allocate nothing, so the collector works
// mostly for handshakes (crypto/tls makes about 60 KB of garbage per wss
// handshake). The heap it lets grow between collections is GOGC percent of
// the live heap, and for wss that headroom, not the live state, is the
// larger part of what an idle connection costs the process: at 19,000 idle
// wss connections 6.97 KB each at 100 and 5.37 KB at 50, for about 4 % more
// CPU per handshake (loop/epoll_rss_test.go).
const defaultGCPercent = 50

// applyGCPercent sets defaultGCPercent unless GOGC chose otherwise, and
// returns the setting in force for the start line.
func applyGCPercent() string {
	if v, ok := os.LookupEnv("GOGC"); ok {
		return v + " (GOGC)"
	}
	debug.SetGCPercent(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent)
}
