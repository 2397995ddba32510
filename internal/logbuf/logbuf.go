// Package logbuf is a log destination for tests: a buffer that servers
// running on other goroutines may write while the test reads it.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer keeps everything written to it; safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
