//go:build !noembeddednats

package main

import (
	"log/slog"

	"github.com/wsloop/wsloop/bus/natsserver"
)

// startEmbeddedNATS runs the NATS server of -procs without -nats in this
// process, on a free loopback port. Linking it costs every wsloop process
// about 3.7 MB of RSS and the binary 14 MB: build with -tags
// noembeddednats to leave it out (-procs then needs -nats).
func startEmbeddedNATS(log *slog.Logger) (url string, stop func(), err error) {
	ns, err := natsserver.Start(natsserver.Options{Logger: log})
	if err != nil {
		return "", nil, err
	}
	return ns.URL(), ns.Close, nil
}
