package bridge

import "sync/atomic"

// Limit caps the programs wsloop runs at once: per-connection programs
// (Exec) and CGI scripts (CGI) that share it count together. A request past
// the cap is refused with 503 (and counted); a nil *Limit caps nothing.
// Safe for concurrent use.
type Limit struct {
	max     int64
	running atomic.Int64
	refused atomic.Uint64
}

// NewLimit returns a cap of max programs; max <= 0 means no cap (the Limit
// still counts).
func NewLimit(max int) *Limit { return &Limit{max: int64(max)} }

// Running returns the number of programs running now.
func (l *Limit) Running() int {
	if l == nil {
		return 0
	}
	return int(l.running.Load())
}

// Refused returns how many requests were refused for being past the cap.
func (l *Limit) Refused() uint64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}

// full reports whether the cap is reached; a request it turns away is
// counted as refused.
func (l *Limit) full() bool {
	if l == nil || l.max <= 0 || l.running.Load() < l.max {
		return false
	}
	l.refused.Add(1)
	return true
}

// acquire takes a place, or reports false (counted as refused) when the cap
// is reached.
func (l *Limit) acquire() bool {
	if l == nil {
		return true
	}
	if n := l.running.Add(1); l.max > 0 && n > l.max {
		l.running.Add(-1)
		l.refused.Add(1)
		return false
	}
	return true
}

// release gives back a place taken with acquire.
func (l *Limit) release() {
	if l != nil {
		l.running.Add(-1)
	}
}
