//go:build !linux

package bench

import "syscall"

// serverProcAttr: only Linux can tie a child's life to its parent's
// (Pdeathsig); elsewhere wsbench stops its servers itself.
func serverProcAttr() *syscall.SysProcAttr { return nil }
