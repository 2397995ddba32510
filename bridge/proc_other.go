//go:build !unix

package bridge

import (
	"os"
	"syscall"
)

// Without process groups only the program itself is signalled, and both
// stop signals kill it.

func procAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, _ os.Signal) { _ = p.Kill() }

func waitExited(int) {}

var (
	sigTerm = os.Kill
	sigKill = os.Kill
)
