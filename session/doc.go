// Package session is one WebSocket connection's protocol state machine, for
// the server and the client role, with no I/O of its own (sans-I/O, in the
// spirit of Python's h11 and wsproto).
//
// # The engine's side: Machine and IO
//
// An engine (package loop) owns the socket and drives a Machine. For every
// event it sets up an IO (the time, the bytes it still holds unsent for the
// connection, the connection's identity), calls the Machine (InitServer or
// InitClient, Feed with bytes it read, Tick when Deadline has come, Drained
// when it has written everything, Run for a task, Closed when the socket is
// gone), and then acts on the answer in the IO: bytes to send (Out, and a
// Pong that replaces one still waiting), a close to carry out once they are
// written, a deadline that may have moved (Rearm). A Machine never calls
// into its engine: everything it wants done is in the IO when the call
// returns, so an engine needs no re-entrancy rules and every engine shares
// one core (package loop's internal core) that acts on the answers.
//
// # The handler's side: Conn
//
// Application code sees the Handler callbacks and the Conn methods. A Conn
// is used on its own loop only, inside its handler's callbacks and the tasks
// run through its Handle; elsewhere its acting methods return ErrNotOnLoop.
// Other goroutines reach a connection through its Handle: asynchronous,
// goroutine-safe, and reporting what it knows at once (ErrClosed,
// ErrQueueFull); SendReport reports what became of a message on the loop.
//
// # Life of a connection
//
// StateHandshake: a server Conn collects the request head, parsed in place
// when it arrives in one read, otherwise in a pooled buffer capped at
// Config.MaxRequestHeader (431 beyond). A plain request goes to Config.HTTP
// (StateHTTP; the hook answers with Conn.WriteHTTP and Conn.EndHTTP, now or
// later, and with keep-alive the connection reads the next request; or it
// makes the request an event stream with Conn.StartStream: StateStream, a
// write-only subscriber whose messages are Server-Sent Events) or gets
// 426; a plain request's body (Content-Length, at most MaxRequestBody) is
// read first, within HandshakeTimeout like the head; an upgrade
// request is checked (RFC 6455 4.2.1), its Origin checked against the
// server's own and Config.AllowedOrigins (403), decided by Config.Upgrade,
// answered with 101, and the bytes behind it are read as frames. A client
// Conn writes its request and checks the response.
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
// StateClosed: the engine called Closed; OnClose has run (exactly once for
// every opened connection and every client-role connection), and the Conn
// holds no buffer. An engine may reuse the Machine.
//
// # Backpressure
//
// Every byte a connection queues counts against Config.HighWater: data
// frames, pongs and the close frame. A Send is admitted while the unsent
// bytes are under HighWater; past it Config.Overflow decides (by default the
// connection is closed as a slow consumer with 1008). Pongs are sent one
// per ping while there is room; past HighWater only the latest ping is
// answered (RFC 6455 5.5.3), so a peer that pings without reading cannot
// make pongs pile up. The engine closes a connection whose queued bytes the
// peer has not taken any of for Config.WriteTimeout. So a connection never
// holds more than HighWater plus one message, and a server's worst case is
// that times its connections: with the defaults (64 KiB) about 1.3 GiB for
// 20,000 connections that all stop reading at once, each of them closed
// within WriteTimeout (30 s).
//
// # Time
//
// A Conn starts no goroutine and holds no timer. It keeps millisecond stamps
// of the engine clock and answers Deadline with its next decision point:
// handshake deadline, keepalive ping after Config.PingInterval without
// input, failure after Config.PongTimeout without input after that ping,
// Config.IdleTimeout, Config.CloseTimeout. Input only moves a stamp; an
// early Tick does nothing but ask to be rearmed.
//
// # Memory
//
// A Conn is 88 bytes. Partial heads, partial frames and fragmented messages
// live in size-class pooled buffers returned as soon as the frame or message
// completes; a message that arrives whole in one read is handed to OnMessage
// straight from the engine's read buffer. What a connection sends is encoded
// into the engine call's IO.Out, which the engine keeps per loop; the engine
// holds only what the socket does not take. Echoing a message that arrives
// in one read allocates nothing.
//
// # Compression
//
// With Config.Compression a connection negotiates permessage-deflate (RFC
// 7692) without context takeover in either direction: every message is
// compressed and inflated on its own, so the loop's one compressor and one
// decompressor (about 0.85 MB, made on first use and reached through the
// IO, which is per loop) serve all its connections, and a connection keeps
// only bits in its flags. A compressed message that arrives in pieces stays
// compressed in the connection's pooled buffer until its last frame, then
// is inflated at once, never past MaxMessage (1009). Messages under
// Compression.Threshold, and those that do not shrink, go out as they are;
// a Prepared message is compressed once for all the connections that send
// it. Echoing a compressed message allocates nothing either.
package session
