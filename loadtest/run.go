package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// runner is one process's share of a run, in this process or in a worker.
// The parent moves every runner through the phases together, so that all
// connections are up before any traffic, and all traffic is over before the
// server's RSS is sampled.
type runner interface {
	setup(ctx context.Context) error
	traffic(ctx context.Context) error
	finish(ctx context.Context) (*partResult, error)
	progress() progress
	stop() // releases what is left after an error
}

// Run runs the scenario cfg describes and returns its report. The error is
// a *VerificationError when the run went through but the server did
// something wrong (the report says what); any other error means the run
// could not be carried out as asked.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Scenario == Fuzz {
		return runFuzzScenario(ctx, cfg)
	}
	if cfg.RunID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.RunID = hex.EncodeToString(b[:])
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	tgts, err := resolveEndpoints(cfg.URL, cfg.Origin)
	if err != nil {
		return nil, err
	}
	if cfg.PublishURL != "" {
		if _, err := resolveEndpoints(cfg.PublishURL, cfg.Origin); err != nil {
			return nil, err
		}
	}
	tgt := tgts[0].target
	perProc := socketsPerProc()
	sockets := cfg.sockets()
	procs := cfg.Procs
	if procs == 0 {
		procs = max(1, (sockets+perProc-1)/perProc)
	}
	if need := (sockets + procs - 1) / procs; need > perProc {
		return nil, fmt.Errorf("%d sockets over %d processes is %d per process, above the %d the open-file limit allows: use -procs %d or more",
			sockets, procs, need, perProc, (sockets+perProc-1)/perProc)
	}
	src := cfg.Src
	if len(src) == 0 {
		srcSockets := sockets
		if cfg.Scenario == Churn {
			srcSockets = int(cfg.Rate * cfg.Duration.Seconds())
		}
		src = defaultSrc(tgt.raddr, srcSockets, procs)
	}
	shares := planShares(&cfg, procs, src)

	rep := &Report{Scenario: cfg.Scenario, URL: cfg.URL, Conns: cfg.Conns, Procs: procs, Src: len(src), Rate: cfg.Rate}
	if cfg.Scenario == Echo {
		rep.Size = cfg.Size
	}
	if cfg.ServerPID > 0 {
		if rep.ServerRSSBefore, err = serverRSS(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("-server-pid: %w", err)
		}
	}
	if cfg.Scenario == Soak {
		base, err := sampleServer(ctx, &cfg, true)
		if err != nil {
			return nil, err
		}
		if !base.HasProc && !base.HasVars {
			return nil, fmt.Errorf("soak: nothing to check the server by: give -server-pid, or serve expvar at %s (wsloop -admin-addr ADDR, then -server-vars http://ADDR/debug/vars)", cfg.Soak.VarsURL)
		}
		rep.Soak = &SoakReport{Before: base, Peak: base, Tolerance: cfg.Soak.Tolerance}
	}

	runners := make([]runner, procs)
	for i := range shares {
		if procs == 1 {
			p, err := newPart(&cfg, shares[i])
			if err != nil {
				return nil, err
			}
			runners[i] = localRunner{p}
			continue
		}
		w, err := startWorker(&cfg, shares[i])
		if err != nil {
			stopAll(runners)
			return nil, fmt.Errorf("starting worker %d: %w", i, err)
		}
		runners[i] = w
	}
	defer stopAll(runners)

	stopProgress := startProgress(&cfg, runners)
	defer stopProgress()

	cfg.Logger.Debug("setup", "scenario", cfg.Scenario, "conns", cfg.Conns, "procs", procs, "src", len(src))
	setupErr := eachRunner(runners, func(_ int, r runner) error { return r.setup(ctx) })
	if setupErr == nil && cfg.crossChecked() {
		if err := warmUp(ctx, &cfg, runners); err != nil {
			rep.Failures = append(rep.Failures, err.Error())
		}
	}
	var trafficErr error
	if setupErr == nil {
		stopSampler := func() {}
		if rep.Soak != nil {
			stopSampler = sampleDuring(ctx, &cfg, rep.Soak)
		}
		trafficErr = eachRunner(runners, func(_ int, r runner) error { return r.traffic(ctx) })
		stopSampler()
		if cfg.ServerPID > 0 {
			if rep.ServerRSSAfter, err = settledRSS(ctx, cfg.ServerPID, 10*time.Second); err != nil {
				rep.Notes = append(rep.Notes, "server RSS after the traffic: "+err.Error())
			}
		}
	}
	results := make([]*partResult, len(runners))
	finishErr := eachRunner(runners, func(i int, r runner) error {
		res, err := r.finish(ctx)
		results[i] = res
		return err
	})
	stopProgress()
	if err := errors.Join(setupErr, trafficErr, finishErr); err != nil {
		return nil, err
	}
	if rep.Soak != nil {
		stopAll(runners) // the workers and their pipes are gone before the server is judged
		rep.Soak.settle(ctx, &cfg, time.Now())
	}
	if err := rep.merge(&cfg, results); err != nil {
		return nil, err
	}
	if rep.ServerRSSAfter > 0 && rep.HeldAtEnd > 0 {
		rep.ServerBytesPerConn = float64(rep.ServerRSSAfter-rep.ServerRSSBefore) / float64(rep.HeldAtEnd)
	}
	rep.verify(&cfg)
	if rep.Soak != nil {
		rep.Failures = append(rep.Failures, rep.Soak.Failures...)
	}
	if !rep.Passed() {
		return rep, &VerificationError{Failures: rep.Failures}
	}
	return rep, nil
}

// planShares splits a run over procs processes.
func planShares(cfg *Config, procs int, src []string) []shareSpec {
	split := func(n, i int) (share, offset int) {
		share = n / procs
		if i < n%procs {
			share++
		}
		offset = i*(n/procs) + min(i, n%procs)
		return share, offset
	}
	out := make([]shareSpec, procs)
	for i := range out {
		s := &out[i]
		s.Index, s.Procs = i, procs
		s.Conns, s.Offset = split(cfg.Conns, i)
		s.Messages, _ = split(cfg.Messages, i)
		s.Rate = cfg.Rate / float64(procs)
		s.Ramp = cfg.Ramp / float64(procs)
		if cfg.Scenario == Broadcast || cfg.Scenario == SSE {
			s.Rate = cfg.Rate // each publisher's rate (soak: Rate is the echoes', shared)
		}
		if cfg.Scenario == Broadcast || cfg.Scenario == SSE || cfg.Scenario == Soak {
			if cfg.Publish == PublishSelf {
				for k := i; k < cfg.Publishers; k += procs {
					s.Publishers = append(s.Publishers, k)
				}
			}
		}
		if cfg.Scenario == Soak {
			s.Subs, _ = split(cfg.Soak.Subscribers, i)
			s.Slow, _ = split(cfg.Soak.SlowReaders, i)
			s.Churn = cfg.Soak.ChurnRate / float64(procs)
		}
		if len(src) >= procs {
			for j := i; j < len(src); j += procs {
				s.Src = append(s.Src, src[j])
			}
		} else {
			s.Src = src
		}
	}
	return out
}

// eachRunner runs fn on every runner at once and joins their errors.
func eachRunner(rs []runner, fn func(int, runner) error) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			if err := fn(i, r); err != nil {
				errs[i] = fmt.Errorf("process %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func stopAll(rs []runner) {
	for _, r := range rs {
		if r != nil {
			r.stop()
		}
	}
}

// localRunner runs a share in this process.
type localRunner struct{ p *part }

func (l localRunner) setup(ctx context.Context) error   { return l.p.setup(ctx) }
func (l localRunner) traffic(ctx context.Context) error { return l.p.traffic(ctx) }
func (l localRunner) progress() progress                { return l.p.progress() }
func (l localRunner) stop()                             { _ = l.p.d.Close() }
func (l localRunner) finish(context.Context) (*partResult, error) {
	return l.p.finish(), nil
}

// warmUp waits until every subscriber has heard a probe from every
// publisher (the rooms span the processes behind the URLs), at most WarmUp.
func warmUp(ctx context.Context, cfg *Config, runners []runner) error {
	end := time.Now().Add(cfg.WarmUp)
	var warmed, want int64
	for {
		warmed, want = 0, 0
		for _, r := range runners {
			pr := r.progress()
			warmed += pr.Warmed
			want += pr.Subs * int64(cfg.Publishers)
		}
		if want > 0 && warmed >= want {
			return nil
		}
		if !time.Now().Before(end) || ctx.Err() != nil {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	return fmt.Errorf("warm-up: after %v, subscribers had heard %d of %d (subscriber, publisher) pairs: messages do not cross between the servers behind the URLs", cfg.WarmUp, warmed, want)
}

// sampleDuring samples the server every 5 s during the soak's traffic,
// keeping the peak, until the returned function is called.
func sampleDuring(ctx context.Context, cfg *Config, r *SoakReport) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		if s, err := sampleServer(ctx, cfg, false); err == nil { // every connection is up now
			r.Peak = peakOf(r.Peak, s)
		}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if s, err := sampleServer(ctx, cfg, false); err == nil {
					r.Peak = peakOf(r.Peak, s)
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			if s, err := sampleServer(ctx, cfg, false); err == nil { // the traffic's end, connections still held
				r.Peak = peakOf(r.Peak, s)
			}
		})
	}
}
