// Package session is one WebSocket connection's protocol state machine, for
// the server and the client role, with no I/O of its own (sans-I/O).
//
// An engine (package loop) owns the socket. It feeds the bytes it reads to
// Conn.Feed, tells the time through Conn.Tick, and reports a closed socket
// through Conn.TransportClosed; the Conn answers through the engine's
// Transport: write these bytes, close, wake me at. Application code sees only
// the Handler callbacks and the Conn and Handle methods.
//
// A Conn is used by one goroutine at a time: its engine's loop. Other
// goroutines reach it through a Handle.
package session
