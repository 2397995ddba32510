// Package loadtest generates WebSocket load on the event-loop client
// (loop.Dialer) and reports what it measured: connect rates, handshake and
// message latency percentiles from HDR histograms, failures by cause, and
// every payload verified.
//
// One process holds up to what its open-file limit allows (about 19,900
// connections) in a few MB: connections share their scenario's handler and
// keep a few words of state each; no goroutine, timer or histogram is made
// per connection. Beyond one process, Run starts worker processes of the
// same executable (see WorkerMain), gives each a share of the connections
// and source addresses, and merges their results, histograms included.
//
// Every scenario is bounded by Config.Duration and its counts and stops by
// itself. Run returns a *VerificationError when what the server did was
// wrong: a payload that did not come back intact, a broadcast that was lost,
// a handshake that was refused, a connection that failed or was dropped.
package loadtest
