package main

import (
	"flag"
	"fmt"

	"github.com/wsloop/wsloop/loop"
)

// limitFlags are the per-client limits of the public port.
type limitFlags struct {
	perIP, handshakes int
	rate              float64
	proxies, header   string
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&l.perIP, "max-conns-per-ip", 0, "most open connections per client address (IPv6 by /64); past it 429 (0: no limit)")
	fs.Float64Var(&l.rate, "handshake-rate", 0, "handshakes per second per client address, sustained (as many at once after a quiet time); past it 429 (0: no limit)")
	fs.IntVar(&l.handshakes, "max-handshakes", 0, "most connections in their opening handshake at once; past it 503 (0: no limit)")
	fs.StringVar(&l.proxies, "trusted-proxies", "", `comma-separated proxies (CIDRs or addresses, e.g. "127.0.0.1,10.0.0.0/8") whose forwarded header names the client for the limits`)
	fs.StringVar(&l.header, "forwarded-header", "X-Forwarded-For", `the header trusted proxies name the client in: "X-Forwarded-For" or "Forwarded"`)
}

func (l *limitFlags) check() error {
	switch {
	case l.perIP < 0:
		return fmt.Errorf("-max-conns-per-ip %d is negative", l.perIP)
	case l.rate < 0:
		return fmt.Errorf("-handshake-rate %v is negative", l.rate)
	case l.handshakes < 0:
		return fmt.Errorf("-max-handshakes %d is negative", l.handshakes)
	case l.header != "X-Forwarded-For" && l.header != "Forwarded":
		return fmt.Errorf(`-forwarded-header %q: use "X-Forwarded-For" or "Forwarded"`, l.header)
	}
	return nil
}

func (l *limitFlags) limits() loop.Limits {
	return loop.Limits{
		MaxConnsPerClient: l.perIP,
		HandshakeRate:     l.rate,
		MaxHandshakes:     l.handshakes,
		TrustedProxies:    splitList(l.proxies),
		ForwardedHeader:   l.header,
	}
}
