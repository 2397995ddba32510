// Package baseline holds nothing but this comment: the module gathers the
// goroutine-per-connection servers that wsbench compares wsloop with, each a
// main package in its own folder (gorilla/, gobwas/), kept in a nested module
// so that their dependencies stay out of wsloop's go.mod.
//
// Every baseline serves the endpoints of cmd/wsloop that the benchmark uses,
// with the same semantics (see package demo):
//
//	/ws/echo                     every message comes back with its opcode
//	/ws/chat?room=NAME&nick=NICK every text message a member sends goes to
//	                             every member of the room (the sender too) as
//	                             "nick: text", encoded once; members without a
//	                             nick are guest-N; joins and leaves are
//	                             announced in rooms of at most 100 members;
//	                             binary messages close with 1003, messages
//	                             over 4 KiB with 1009; a bad room or nick is
//	                             refused with 400
//	/debug/vars                  expvar: memstats and goroutines, for
//	                             wsbench's heap figures
package baseline
