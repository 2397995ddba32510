package loadtest

import (
	"fmt"
	"sync"
	"time"
)

// startProgress writes a progress line to cfg.Progress once a second until
// the returned function is called (it may be called more than once).
func startProgress(cfg *Config, rs []runner) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		start := time.Now()
		var lastRecv int64
		last := start
		for {
			select {
			case <-done:
				fmt.Fprintln(cfg.Progress)
				return
			case now := <-tick.C:
				var sum progress
				for _, r := range rs {
					p := r.progress()
					sum.Active += p.Active
					sum.Opened += p.Opened
					sum.Received += p.Received
					sum.Errors += p.Errors
					sum.P99 = max(sum.P99, p.P99)
				}
				rate := float64(sum.Received-lastRecv) / now.Sub(last).Seconds()
				lastRecv, last = sum.Received, now
				fmt.Fprintf(cfg.Progress, "\r\033[K%s %3.0fs  conns %d/%d  msgs/s %.0f  p99 %s  errors %d",
					cfg.Scenario, now.Sub(start).Seconds(), sum.Active, cfg.Conns, rate, fmtUS(sum.P99), sum.Errors)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
