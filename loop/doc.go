// Package loop runs session.Conn state machines over real sockets. It offers
// three interchangeable engines behind one Server:
//
//   - "epoll": the default, a hand-written event loop on golang.org/x/sys/unix
//     (epoll on Linux, kqueue on macOS and FreeBSD); a few goroutines hold all
//     sockets and an idle connection costs a few hundred bytes.
//   - "gnet": the same loop design on github.com/panjf2000/gnet/v2.
//   - "goroutine": one goroutine per connection on net.Listener; the
//     baseline for benchmarks, and the engine for TLS (wss).
//
// Typical use:
//
//	err := loop.ListenAndServe("127.0.0.1:8080", handler, loop.Options{})
package loop
