package loadtest

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
	"sync"
	"time"
)

// WorkerEnv is the environment variable that makes a process a worker: Run
// starts workers as this executable with WorkerEnv=1, and the program's main
// (or a test's TestMain) hands them to WorkerMain before anything else.
const WorkerEnv = "WSLOAD_WORKER"

// IsWorker reports whether this process was started as a worker.
func IsWorker() bool { return os.Getenv(WorkerEnv) == "1" }

// The parent and a worker talk in JSON lines: commands on the worker's
// stdin, events on its stdout. Its stderr is the parent's, for logs.
//
//	parent: start {config, share}      worker: ready (connections up)
//	parent: go                         worker: held (traffic over, connections held)
//	parent: finish                     worker: result {counts, histograms}
//
// and, at any time, worker: progress (once a second) or error (fatal).
type command struct {
	Cmd    string     `json:"cmd"`
	Config *Config    `json:"config,omitempty"`
	Share  *shareSpec `json:"share,omitempty"`
}

type event struct {
	Event    string      `json:"event"`
	Progress *progress   `json:"progress,omitempty"`
	Result   *partResult `json:"result,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// WorkerMain runs this process as a worker of a parent's Run, on stdin and
// stdout, and returns the exit status.
func WorkerMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := serveWorker(os.Stdin, os.Stdout, log); err != nil {
		log.Error("wsload worker", "err", err)
		return 1
	}
	return 0
}

func serveWorker(in io.Reader, out io.Writer, log *slog.Logger) error {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(e event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(e)
	}
	cmds := make(chan command)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent going away (stdin closed) ends the worker
		defer cancel()
		defer close(cmds)
		dec := json.NewDecoder(bufio.NewReader(in))
		for {
			var c command
			if err := dec.Decode(&c); err != nil {
				return
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	expect := func(name string) (command, error) {
		c, ok := <-cmds
		if !ok {
			return c, fmt.Errorf("parent went away while waiting for %q", name)
		}
		if c.Cmd != name {
			return c, fmt.Errorf("got command %q, want %q", c.Cmd, name)
		}
		return c, nil
	}
	fail := func(err error) error {
		emit(event{Event: "error", Error: err.Error()})
		return err
	}

	start, err := expect("start")
	if err != nil {
		return err
	}
	if start.Config == nil || start.Share == nil {
		return fail(errors.New("start command without config or share"))
	}
	cfg := *start.Config
	cfg.Logger, cfg.Progress, cfg.WorkerCommand = log, nil, nil
	cfg.Procs = 1
	if err := cfg.defaults(); err != nil {
		return fail(err)
	}
	socketsPerProc() // raises the open-file soft limit
	p, err := newPart(&cfg, *start.Share)
	if err != nil {
		return fail(err)
	}
	defer p.d.Close()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				pr := p.progress()
				emit(event{Event: "progress", Progress: &pr})
			}
		}
	}()
	if err := p.setup(ctx); err != nil {
		return fail(err)
	}
	emit(event{Event: "ready"})
	if _, err := expect("go"); err != nil {
		return err
	}
	if err := p.traffic(ctx); err != nil {
		return fail(err)
	}
	emit(event{Event: "held"})
	if _, err := expect("finish"); err != nil {
		return err
	}
	emit(event{Event: "result", Result: p.finish()})
	return nil
}

// worker is the parent's side of a worker process.
type worker struct {
	cfg     *Config
	share   shareSpec
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	events  chan event
	done    chan struct{} // closed when the process has exited
	waitErr error

	mu   sync.Mutex
	last progress
}

func startWorker(cfg *Config, share shareSpec) (*worker, error) {
	var cmd *exec.Cmd
	if cfg.WorkerCommand != nil {
		cmd = cfg.WorkerCommand()
	} else {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		cmd = exec.Command(exe)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, WorkerEnv+"=1")
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &worker{cfg: cfg, share: share, cmd: cmd, stdin: stdin, events: make(chan event, 4), done: make(chan struct{})}
	go w.read(stdout)
	if err := w.send(command{Cmd: "start", Config: cfg, Share: &share}); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// read turns the worker's stdout into events until it exits.
func (w *worker) read(stdout io.Reader) {
	dec := json.NewDecoder(bufio.NewReader(stdout))
	for {
		var e event
		if err := dec.Decode(&e); err != nil {
			break
		}
		if e.Event == "progress" && e.Progress != nil {
			w.mu.Lock()
			w.last = *e.Progress
			w.mu.Unlock()
			continue
		}
		w.events <- e
	}
	w.waitErr = w.cmd.Wait()
	close(w.done)
}

func (w *worker) send(c command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = w.stdin.Write(append(b, '\n'))
	return err
}

// await waits for the named event, at most d.
func (w *worker) await(ctx context.Context, name string, d time.Duration) (event, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case e := <-w.events:
		switch {
		case e.Event == "error":
			return e, errors.New(e.Error)
		case e.Event != name:
			return e, fmt.Errorf("worker sent %q, want %q", e.Event, name)
		}
		return e, nil
	case <-w.done:
		select { // an event may have raced the exit
		case e := <-w.events:
			if e.Event == "error" {
				return e, errors.New(e.Error)
			}
			if e.Event == name {
				return e, nil
			}
		default:
		}
		return event{}, fmt.Errorf("worker exited while the parent waited for %q: %v", name, w.waitErr)
	case <-t.C:
		return event{}, fmt.Errorf("worker sent no %q within %v", name, d)
	case <-ctx.Done():
		return event{}, ctx.Err()
	}
}

func (w *worker) setup(ctx context.Context) error {
	_, err := w.await(ctx, "ready", setupBudget(w.cfg, &w.share)+30*time.Second)
	return err
}

func (w *worker) traffic(ctx context.Context) error {
	if err := w.send(command{Cmd: "go"}); err != nil {
		return err
	}
	_, err := w.await(ctx, "held", trafficBudget(w.cfg)+30*time.Second)
	return err
}

func (w *worker) finish(ctx context.Context) (*partResult, error) {
	select {
	case <-w.done: // it failed earlier; nothing to collect
		return nil, fmt.Errorf("worker exited: %v", w.waitErr)
	default:
	}
	if err := w.send(command{Cmd: "finish"}); err != nil {
		return nil, err
	}
	e, err := w.await(ctx, "result", 30*time.Second)
	if err != nil {
		return nil, err
	}
	if e.Result == nil {
		return nil, errors.New("worker sent a result event without a result")
	}
	return e.Result, nil
}

func (w *worker) progress() progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// stop closes the worker's stdin, which ends it, and kills it if it has not
// exited within a few seconds.
func (w *worker) stop() {
	_ = w.stdin.Close()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}
