//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package loop

import "testing"

func TestGnetEcho(t *testing.T) { testEcho(t, "gnet", Options{}) }

func TestGnetSendToSelfFromHandler(t *testing.T) { testSendToSelf(t, "gnet") }

func TestGnetMaxConns(t *testing.T) { testMaxConns(t, "gnet") }

func TestGnetStaleHandle(t *testing.T) { testStaleHandle(t, "gnet") }

// TestGnetHandshakeTimeout drives the per-loop timing wheel through gnet's
// ticker and Execute.
func TestGnetHandshakeTimeout(t *testing.T) { testHandshakeTimeout(t, "gnet") }

func TestGnetTaskPanic(t *testing.T) { testTaskPanic(t, "gnet") }
