//go:build noembeddednats

package main

import (
	"errors"
	"log/slog"
)

// startEmbeddedNATS: this build has no embedded server (-tags noembeddednats).
func startEmbeddedNATS(*slog.Logger) (string, func(), error) {
	return "", nil, errors.New("this wsloop was built without it (-tags noembeddednats): give -nats nats://host:4222")
}
