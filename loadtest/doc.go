// Package loadtest generates WebSocket load on the event-loop client
// (loop.Dialer) and reports what it measured: connect rates, handshake and
// message latency percentiles from HDR histograms, failures by cause, and
// every payload verified. It works against any RFC 6455 server.
//
// # Scenarios
//
//   - connect: open Conns at Rate per second; connect rate, handshake
//     latency, failures by cause (refused, timeout, emfile, addrnotavail,
//     bad_handshake, ...).
//   - idle: open Conns, hold them for Duration (answering the server's
//     pings; Ping makes them ping too); connections the server drops.
//   - echo: Conns connections send Size-byte messages, each its next when
//     the last has come back (closed loop) or at Rate per second in all
//     (open loop). Every echo is checked byte for byte: a payload carries
//     its sequence number, connection id and send time, and the rest is a
//     pattern derived from them, so nothing is stored per message.
//   - broadcast: Conns subscribers. With Publish "self" one extra connection
//     publishes Messages at Rate, each carrying the token
//     wsload:<run>:<seq>:<unix ns> (inside PublishTemplate, which a chat
//     server may wrap further); every subscriber must receive every one,
//     once and in order. With Publish "server" the server originates the
//     messages (a push feed): each carries a time field ("t", a number since
//     the Unix epoch or an RFC 3339 string) and may carry a sequence field
//     ("seq", +1 per message) whose gaps are lost messages.
//   - churn: open connections at Rate per second for Duration, each closed
//     with a close handshake as soon as it is open.
//   - sse: Conns Server-Sent Events subscribers (GET with Accept:
//     text/event-stream over plain HTTP/1.1, one goroutine each); every
//     event's data is checked as a broadcast message is, published by the
//     generator over WebSocket (PublishURL) or by the server.
//   - soak: Conns connections (default 10,000) for Duration (default 30
//     minutes): echo connections, a chat room's subscribers and slow
//     readers (never read), a publisher, and churn, all verified; before
//     and after, the server's descriptors, RSS, goroutines and heap, which
//     must come back within SoakConfig.Tolerance of the baseline.
//
// # Several servers
//
// URL may list several endpoints (comma-separated): connection i goes to
// URL i mod n. With several endpoints or Publishers, a self-published
// broadcast is verified per publisher: each publisher's warm-up probes must
// reach every subscriber before the traffic starts (the servers' rooms are
// joined up), then every subscriber must receive every publisher's messages
// exactly once, each publisher's in order; lost, duplicated and reordered
// deliveries are counted apart (a bitmap per subscriber and publisher).
//
// # Footprint and processes
//
// One process holds up to what its open-file limit allows (about 19,900
// connections) in a few MB: a connection's whole state here is a 32-byte
// value that is also its Handler; no goroutine, timer or histogram is made
// per connection. Beyond one process, Run starts worker processes of the
// same executable (see WorkerMain), gives each a share of the connections
// and source addresses, moves them through the phases together (all
// connected, then traffic, then the server's RSS is sampled, then close),
// and merges their results, histograms included.
//
// Every scenario is bounded by Config.Duration and its counts and stops by
// itself. Run returns a *VerificationError when what the server did was
// wrong: a payload that did not come back intact, a broadcast that was lost,
// a handshake that was refused, a connection that failed or was dropped.
package loadtest
