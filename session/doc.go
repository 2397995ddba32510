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
//
// # Life of a connection
//
// StateHandshake: a server Conn (Init) collects the request head, parsed in
// place when it arrives in one read, otherwise in a pooled buffer capped at
// Config.MaxRequestHeader (431 beyond). A plain request goes to Config.HTTP
// (StateHTTP; the hook answers with Conn.WriteHTTP) or gets 426; an upgrade
// request is checked (RFC 6455 4.2.1), decided by Config.Upgrade, answered
// with 101, and the bytes behind it are read as frames. A client Conn
// (InitClient) writes its request and checks the response.
//
// StateOpen: frames are parsed across arbitrary read boundaries, unmasked in
// place, reassembled, text is validated as it arrives (an invalid byte fails
// the connection with 1007 at once), pings are answered; violations fail the
// connection with the RFC's code (a close frame, then the socket is closed).
//
// StateClosing: a close frame was sent (Close, or the reply to the peer's).
// No data frame is sent any more and incoming data is discarded; the server
// closes the socket once the handshake completes, the client waits for the
// server to, both at most Config.CloseTimeout.
//
// StateClosed: the engine called TransportClosed; OnClose has run (exactly
// once for every opened connection and every client-role connection), and
// the Conn holds no buffer. An engine may reuse it with Init or InitClient.
//
// # Time
//
// A Conn starts no goroutine and holds no timer. It keeps millisecond stamps
// of the engine clock given to Feed and Tick and asks the engine for one
// Tick at its next deadline with Transport.SetTimer: handshake deadline,
// keepalive ping after Config.PingInterval without input, failure after
// Config.PongTimeout without input after that ping, Config.IdleTimeout,
// Config.CloseTimeout. Input only moves a stamp; an early Tick re-arms.
//
// # Memory
//
// A Conn is 96 bytes. Partial heads, partial frames and fragmented
// messages live in size-class pooled buffers returned as soon as the frame or
// message completes; a message that arrives whole in one read is handed to
// OnMessage straight from the engine's read buffer. Outgoing frames are
// encoded in pooled scratch buffers; the engine keeps what the socket does
// not take, and Config.Overflow decides past Config.HighWater. Echoing a
// message that arrives in one read allocates nothing.
package session
