package bridge

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// process is a started program with its own process group, and the
// sequence that stops it: SIGTERM to the group termDelay after stop, SIGKILL
// killDelay after that, unless it has exited by then.
type process struct {
	cmd                  *exec.Cmd
	log                  *slog.Logger
	termDelay, killDelay time.Duration

	mu       sync.Mutex
	stopping bool
	exited   bool
	timer    *time.Timer
}

// pipe is the parent's end and the child's end of one standard stream.
type pipe struct{ parent, child *os.File }

// newPipes makes the three standard streams of a program: stdin (the
// parent writes), stdout and stderr (the parent reads).
func newPipes() (in, out, errOut pipe, err error) {
	var ps [3]pipe
	for i := range ps {
		r, w, perr := os.Pipe()
		if perr != nil {
			for _, p := range ps[:i] {
				p.parent.Close()
				p.child.Close()
			}
			return pipe{}, pipe{}, pipe{}, perr
		}
		if i == 0 {
			ps[i] = pipe{parent: w, child: r}
		} else {
			ps[i] = pipe{parent: r, child: w}
		}
	}
	return ps[0], ps[1], ps[2], nil
}

// startProcess starts path with the three pipes' child ends, which it then
// closes in this process. On error it closes the parent ends too.
func startProcess(path string, args, env []string, dir string, in, out, errOut pipe, log *slog.Logger, term, kill time.Duration) (*process, error) {
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{path}, args...),
		Env:         env,
		Dir:         dir,
		Stdin:       in.child,
		Stdout:      out.child,
		Stderr:      errOut.child,
		SysProcAttr: procAttr(),
	}
	err := cmd.Start()
	in.child.Close()
	out.child.Close()
	errOut.child.Close()
	if err != nil {
		in.parent.Close()
		out.parent.Close()
		errOut.parent.Close()
		return nil, err
	}
	return &process{cmd: cmd, log: log.With("pid", cmd.Process.Pid), termDelay: term, killDelay: kill}, nil
}

// pid returns the program's process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop starts the stop sequence (once); the caller has closed (or is
// closing) the program's stdin.
func (p *process) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || p.exited {
		return
	}
	p.stopping = true
	p.timer = time.AfterFunc(p.termDelay, p.term)
}

func (p *process) term() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		p.log.Debug("program still running after its stdin was closed: SIGTERM")
		signalGroup(p.cmd.Process, sigTerm)
		p.timer = time.AfterFunc(p.killDelay, p.kill)
	}
}

func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		p.log.Warn("program still running after SIGTERM: SIGKILL")
		signalGroup(p.cmd.Process, sigKill)
	}
}

// wait waits for the program to exit, kills what it left running in its
// group (the leader is not reaped yet, so the group id is still its own),
// then reaps it. It returns what exec.Cmd.Wait returns.
func (p *process) wait() error {
	waitExited(p.pid())
	p.mu.Lock()
	p.exited = true
	if p.timer != nil {
		p.timer.Stop()
	}
	signalGroup(p.cmd.Process, sigKill)
	p.mu.Unlock()
	return p.cmd.Wait()
}

// logLines logs each line of r (a program's stderr) at Warn, lines over
// 4 KiB in pieces, until EOF; then it closes r.
func logLines(r *os.File, log *slog.Logger) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 4<<10)
	for {
		line, err := br.ReadSlice('\n')
		if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
			log.Warn("program stderr", "line", string(line))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
