// Package loop runs session connections over real sockets: the Server (and
// plain HTTP on the same port: a net/http Handler on goroutines, or
// Options.LoopHTTP on the loops, where a request may become an event stream
// that costs no goroutine), Room and Broadcast for fan-out to WebSocket
// connections and event streams alike (a Room may keep its latest messages
// for streams that resume with Last-Event-ID), and the client Dialer.
// Engines are interchangeable behind one Server:
//
//   - "epoll": the default, a hand-written event loop on golang.org/x/sys/unix
//     (epoll on Linux, kqueue on macOS and the BSDs); a few goroutines hold
//     all sockets and an idle connection costs a few hundred bytes.
//   - "goroutine": one goroutine per connection on net.Listener; the
//     baseline for benchmarks, and the engine for platforms without epoll
//     or kqueue.
//   - "gnet": the same loop design on github.com/panjf2000/gnet/v2, opt-in so
//     that programs that do not use it do not link it:
//     import _ "github.com/wsloop/wsloop/loop/gnet".
//
// Typical use:
//
//	err := loop.ListenAndServe("127.0.0.1:8080", handler, loop.Options{})
//
// # Where things are
//
// Every engine is a thin driver under one core (loop/internal/core): the
// connection table with per-slot generations, the calls into each
// connection's session.Machine and what follows them (writes, out-queues
// that release as they drain, the close once they are written, the timing
// wheel, the write timeout), the bounded task queue from other goroutines,
// fan-out, panic recovery and shutdown. A driver only polls and moves bytes:
//
//   - loop/internal/epoll: the poll loop, accept (paused at capacity and on
//     EMFILE), reads into one buffer per loop, the Dialer's connects.
//   - loop/internal/netpoll: epoll/kqueue pollers and sockets, no WebSocket.
//   - loop/internal/goroutine: reader and writer goroutines serialized per
//     core loop by a mutex.
//   - loop/gnet: gnet's callbacks.
//
// TLS (Options.TLSConfig) is a layer of the core too, on crypto/tls, below
// the sessions and above the drivers: every engine serves wss and https,
// and moves only ciphertext (see loop/internal/core/tls.go).
//
// A byte enters at a driver's read (epoll's loop.read, gnet's OnTraffic, the
// goroutine engine's reader) and goes to core.Loop.Input; every decision
// about it is made in package session; what to send leaves through
// core.Loop's settle to the driver's Write.
package loop
