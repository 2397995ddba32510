// Package supervisor runs a server as several worker processes of the same
// executable that share one listening port (SO_REUSEPORT: the kernel
// spreads new connections over them), restarts a worker that dies, and
// stops them all together.
//
// The supervisor starts each worker with the environment variable WorkerEnv
// set to its index and a pipe as file descriptor 3; the worker serves, then
// calls Ready, which writes one line (its pid, address and capacity) to the
// pipe. A worker that dies after that is started again after a pause that
// doubles from Config.MinBackoff up to Config.MaxBackoff with every death
// in a row (a worker that stayed up for Config.StableAfter starts the count
// afresh). When Run's context ends, every worker gets SIGTERM (its graceful
// shutdown); those still running after Config.StopTimeout get SIGKILL.
//
// Workers run in their own process group, so a terminal's Ctrl-C reaches
// the supervisor alone, which forwards it; on Linux a worker also gets
// SIGTERM if the supervisor dies without stopping it.
package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// WorkerEnv is the environment variable that tells a process it is worker
// number N of a supervisor.
const WorkerEnv = "WSLOOP_WORKER"

// readyFD is the descriptor a worker reports readiness on.
const readyFD = 3

// Defaults of Config.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultStopTimeout  = 15 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultStableAfter  = 10 * time.Second
)

// Config describes the workers. Zero values mean the defaults.
type Config struct {
	// Procs is the number of workers, at least 1.
	Procs int
	// Path is the worker executable; default this process's executable.
	Path string
	// Args are the workers' arguments (without the program name).
	Args []string
	// Env is added to this process's environment for every worker.
	Env []string
	// Output receives the workers' stdout and stderr; default os.Stderr.
	Output io.Writer
	// StartTimeout bounds a worker's start until Ready; a worker that takes
	// longer is killed (and, once all were up, restarted).
	StartTimeout time.Duration
	// StopTimeout bounds the graceful stop after SIGTERM.
	StopTimeout time.Duration
	// MinBackoff and MaxBackoff bound the pause before a restart.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a worker must stay up for its next death to
	// count as the first in a row.
	StableAfter time.Duration
	// Logger receives the start line, deaths and restarts; default
	// slog.Default().
	Logger *slog.Logger
	// OnReady, when set, is called (on Run's goroutine) whenever a worker
	// has reported ready, restarted ones included.
	OnReady func(worker int, info Info)
	// OnAllReady, when set, is called once when every worker has first
	// reported ready, with their reports in order of index.
	OnAllReady func(infos []Info)
}

// Info is what a worker reports when it is ready.
type Info struct {
	PID      int    `json:"pid"`
	Addr     string `json:"addr"`
	Capacity int    `json:"capacity"` // connections it can hold
}

// Worker reports whether this process runs as a supervisor's worker, and
// its index.
func Worker() (index int, ok bool) {
	v := os.Getenv(WorkerEnv)
	if v == "" {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	return i, err == nil && i >= 0
}

// Ready tells the supervisor that this worker serves. Outside a supervisor
// it does nothing.
func Ready(info Info) error {
	if _, ok := Worker(); !ok {
		return nil
	}
	f := os.NewFile(readyFD, "supervisor")
	if f == nil {
		return errors.New("supervisor: no readiness pipe on descriptor 3")
	}
	defer f.Close()
	if info.PID == 0 {
		info.PID = os.Getpid()
	}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("supervisor: reporting ready: %w", err)
	}
	return nil
}

// worker is the supervisor's record of one slot.
type worker struct {
	index   int
	cmd     *exec.Cmd
	started time.Time
	ready   bool
	info    Info
	deaths  int // in a row
	exited  bool
}

// event is news of one worker process: ready, late (StartTimeout passed),
// or else exited with err.
type event struct {
	index int
	cmd   *exec.Cmd
	ready *Info
	late  bool
	err   error
}

// Run starts the workers and keeps them running until ctx is done, then
// stops them gracefully. It returns an error when the first start of any
// worker fails (the others are stopped), or when a worker did not stop
// cleanly.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Procs < 1 {
		return fmt.Errorf("supervisor: %d workers: want at least 1", cfg.Procs)
	}
	if cfg.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("supervisor: finding this executable: %w", err)
		}
		cfg.Path = exe
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = DefaultStableAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &super{cfg: cfg, log: cfg.Logger, events: make(chan event), restart: make(chan int), done: make(chan struct{})}
	defer close(s.done)
	return s.run(ctx)
}

type super struct {
	cfg     Config
	log     *slog.Logger
	workers []*worker
	events  chan event
	restart chan int      // slots whose backoff has passed
	done    chan struct{} // Run has returned: reporters give up
	live    int           // processes running (started and not yet reaped)
}

// report hands e to Run's goroutine, unless Run has returned.
func (s *super) report(e event) {
	select {
	case s.events <- e:
	case <-s.done:
	}
}

func (s *super) run(ctx context.Context) error {
	s.workers = make([]*worker, s.cfg.Procs)
	for i := range s.workers {
		s.workers[i] = &worker{index: i}
		if err := s.start(s.workers[i]); err != nil {
			s.stopAll()
			return err
		}
	}
	// First start: every worker must come up, or the configuration is
	// wrong (port taken, bad flag) and restarting would not help.
	up := 0
	startBy := time.NewTimer(s.cfg.StartTimeout)
	defer startBy.Stop()
	for up < len(s.workers) {
		select {
		case <-ctx.Done():
			return s.stopAll()
		case <-startBy.C:
			s.stopAll()
			return fmt.Errorf("supervisor: %d of %d workers were not ready within %v", len(s.workers)-up, len(s.workers), s.cfg.StartTimeout)
		case e := <-s.events:
			w := s.workers[e.index]
			if e.cmd != w.cmd || e.late {
				continue // the overall deadline above covers the first start
			}
			if e.ready == nil {
				s.live--
				w.exited = true
				s.stopAll()
				return fmt.Errorf("supervisor: worker %d exited before it was ready (%v); its log above says why", e.index, e.err)
			}
			w.ready, w.info = true, *e.ready
			up++
			if s.cfg.OnReady != nil {
				s.cfg.OnReady(e.index, w.info)
			}
		}
	}
	infos := make([]Info, len(s.workers))
	pids := make([]int, len(s.workers))
	capacity := 0
	for i, w := range s.workers {
		infos[i], pids[i] = w.info, w.info.PID
		capacity += w.info.Capacity
	}
	s.log.Info("wsloop supervisor serving", "workers", len(s.workers), "addr", infos[0].Addr, "capacity", capacity,
		"pids", fmt.Sprint(pids))
	if s.cfg.OnAllReady != nil {
		s.cfg.OnAllReady(infos)
	}

	for {
		select {
		case <-ctx.Done():
			return s.stopAll()
		case i := <-s.restart:
			w := s.workers[i]
			if err := s.start(w); err != nil {
				s.log.Error("supervisor: restarting worker failed", "worker", i, "err", err)
				s.scheduleRestart(w)
			}
		case e := <-s.events:
			w := s.workers[e.index]
			if e.cmd != w.cmd {
				continue
			}
			if e.late {
				if !w.ready && !w.exited {
					s.log.Warn("supervisor: worker not ready in time; killing it", "worker", e.index, "timeout", s.cfg.StartTimeout.String())
					_ = w.cmd.Process.Kill()
				}
				continue
			}
			if e.ready != nil {
				w.ready, w.info = true, *e.ready
				s.log.Info("supervisor: worker ready", "worker", e.index, "pid", w.info.PID)
				if s.cfg.OnReady != nil {
					s.cfg.OnReady(e.index, w.info)
				}
				continue
			}
			s.live--
			w.exited = true
			if time.Since(w.started) >= s.cfg.StableAfter {
				w.deaths = 0
			}
			w.deaths++
			s.log.Warn("supervisor: worker died; restarting", "worker", e.index, "pid", w.cmd.Process.Pid,
				"status", fmt.Sprint(e.err), "after", s.backoff(w).String())
			s.scheduleRestart(w)
		}
	}
}

// backoff is the pause before w's next start.
func (s *super) backoff(w *worker) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < w.deaths && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxBackoff)
}

func (s *super) scheduleRestart(w *worker) {
	i := w.index
	time.AfterFunc(s.backoff(w), func() {
		select {
		case s.restart <- i:
		case <-s.done:
		}
	})
}

// start starts w's process and the goroutines that report on it.
func (s *super) start(w *worker) error {
	r, wr, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("supervisor: pipe: %w", err)
	}
	cmd := exec.Command(s.cfg.Path, s.cfg.Args...)
	cmd.Env = append(append(os.Environ(), s.cfg.Env...), WorkerEnv+"="+strconv.Itoa(w.index))
	cmd.Stdout, cmd.Stderr = s.cfg.Output, s.cfg.Output
	cmd.ExtraFiles = []*os.File{wr} // descriptor 3
	cmd.SysProcAttr = workerProcAttr()
	err = cmd.Start()
	wr.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("supervisor: starting worker %d: %w", w.index, err)
	}
	s.live++
	w.cmd, w.started, w.ready, w.exited = cmd, time.Now(), false, false
	go func() {
		defer r.Close()
		line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadBytes('\n')
		if err != nil {
			return // it exited (or closed the pipe) without reporting
		}
		var info Info
		if json.Unmarshal(line, &info) != nil {
			return
		}
		s.report(event{index: w.index, cmd: cmd, ready: &info})
	}()
	go func() {
		err := cmd.Wait()
		s.report(event{index: w.index, cmd: cmd, err: err})
	}()
	// A worker that has not reported by then is killed; its exit then
	// counts as a death.
	time.AfterFunc(s.cfg.StartTimeout, func() { s.report(event{index: w.index, cmd: cmd, late: true}) })
	return nil
}

// stopAll sends SIGTERM to every running worker, waits up to StopTimeout,
// kills what is left and reaps everything. It reports workers that did not
// exit cleanly.
func (s *super) stopAll() error {
	var errs []error
	for _, w := range s.workers {
		if w != nil && w.cmd != nil && !w.exited {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	killAt := time.NewTimer(s.cfg.StopTimeout)
	defer killAt.Stop()
	killed := false
	for s.live > 0 {
		select {
		case <-killAt.C:
			for _, w := range s.workers {
				if w != nil && w.cmd != nil && !w.exited {
					_ = w.cmd.Process.Kill()
				}
			}
			killed = true
		case e := <-s.events:
			if e.ready != nil || e.late {
				continue
			}
			s.live--
			w := s.workers[e.index]
			if e.cmd == w.cmd {
				w.exited = true
			}
			if e.err != nil {
				errs = append(errs, fmt.Errorf("worker %d: %v", e.index, e.err))
			}
		case <-s.restart: // stopping: no more restarts
		}
	}
	if killed {
		errs = append(errs, fmt.Errorf("killed after %v without a graceful stop", s.cfg.StopTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("supervisor: stopping workers: %w", errors.Join(errs...))
	}
	return nil
}
