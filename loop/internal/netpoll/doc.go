// Package netpoll is the operating system under the epoll engine: a
// readiness poller per loop (epoll with an eventfd on Linux, kqueue with
// EVFILT_USER or a pipe on the BSDs and macOS), non-blocking sockets,
// listeners, accept without per-connection garbage, and the open-file
// limit. It knows nothing of WebSocket or of connections: it hands out
// tokens the caller chose.
package netpoll

// Poller tokens that are not connection slots.
const (
	TokenWake   int32 = -1
	TokenListen int32 = -2
	TokenNone   int32 = -3
)
