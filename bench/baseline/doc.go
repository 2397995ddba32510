// Package baseline holds nothing but this comment: the module gathers the
// goroutine-per-connection servers that wsbench compares wsloop with, each a
// main package in its own folder (gorilla/, gobwas/), kept in a nested module
// so that their dependencies stay out of wsloop's go.mod.
//
// Every baseline serves the endpoints of cmd/wsloop that the benchmark uses,
// with the same semantics:
//
//	/ws/echo     every message comes back with its opcode
//	/ws/push     server push: every -push-interval one reading such as
//	             {"t":"2026-11-21T09:30:00.000Z","temp":21.4,"seq":42} is
//	             encoded once and sent to every subscriber; a new subscriber
//	             gets the latest reading at once; what subscribers send is ignored
//	/debug/vars  expvar: memstats and goroutines, for wsbench's heap figures
package baseline
