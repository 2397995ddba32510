package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
)

// link is one running backend instance: a started program's pipes, or a
// connection to the backend's socket.
type link struct {
	w     io.Writer // events go here
	r     io.Reader // commands come from here
	close func()    // closes both ends
	proc  *process  // nil for a socket
	wg    sync.WaitGroup

	dead chan struct{}
	once sync.Once
	err  error
}

func (l *link) fail(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.dead)
	})
}

var errStopping = errors.New("the backend is being stopped")

// supervise keeps a backend running until Close: it starts (connects), serves
// the link until it breaks, closes the connections of the instance that went,
// and starts again after the restart wait.
func (b *Backend) supervise(first chan struct{}) {
	defer close(b.done)
	defer func() {
		if first != nil {
			close(first)
		}
	}()
	wait := b.opts.RestartMin
	for started := 0; ; {
		select {
		case <-b.stop:
			return
		default:
		}
		l, err := b.connect()
		if err != nil {
			b.log.Error("backend not started", "backend", b.name(), "err", err, "retry_in", wait)
			if first != nil {
				close(first)
				first = nil
			}
		} else {
			if started > 0 {
				b.restarts.Add(1)
			}
			began := time.Now()
			b.serve(l, started, first)
			first = nil
			started++
			if time.Since(began) >= restartReset {
				wait = b.opts.RestartMin
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, b.opts.RestartMax)
	}
}

// name is the backend as logs show it.
func (b *Backend) name() string {
	if b.opts.Socket != "" {
		return "unix://" + b.socketPath()
	}
	return strings.Join(b.opts.Command, " ")
}

func (b *Backend) socketPath() string { return strings.TrimPrefix(b.opts.Socket, "unix://") }

// connect starts the program or dials the socket.
func (b *Backend) connect() (*link, error) {
	l := &link{dead: make(chan struct{})}
	if b.opts.Socket != "" {
		nc, err := net.DialTimeout("unix", b.socketPath(), 5*time.Second)
		if err != nil {
			return nil, err
		}
		l.w, l.r, l.close = nc, nc, func() { nc.Close() }
		return l, nil
	}
	in, out, errOut, err := newPipes()
	if err != nil {
		return nil, err
	}
	env := appendPassEnv(nil, b.opts.PassEnv)
	env = append(env, b.opts.Env...)
	p, err := startProcess(b.program, b.opts.Command[1:], env, b.opts.Dir, in, out, errOut,
		b.log.With("backend", b.name()), b.opts.TermDelay, b.opts.KillDelay)
	if err != nil {
		return nil, err
	}
	l.proc = p
	b.pid.Store(int64(p.pid()))
	l.w, l.r = in.parent, out.parent
	var closeOnce sync.Once
	l.close = func() {
		closeOnce.Do(func() {
			in.parent.Close()
			out.parent.Close()
			p.stop()
		})
	}
	l.wg.Add(2)
	go func() { defer l.wg.Done(); logLines(errOut.parent, p.log) }()
	go func() {
		defer l.wg.Done()
		err := p.wait()
		b.pid.Store(0)
		if err == nil {
			err = errors.New("exit status 0")
		}
		l.fail(fmt.Errorf("the backend exited: %w", err))
	}()
	return l, nil
}

// serve runs one link (closing first, when set, once it is up): the hello event, the writer and the reader, until the
// link breaks or Close; then the instance's connections are closed (1012,
// or 1001 on Close) and every goroutine of the link has ended.
func (b *Backend) serve(l *link, restarts int, first chan struct{}) {
	b.mu.Lock()
	b.up = true
	epoch := b.epoch.Load()
	b.q = append(b.q[:0], `{"event":"hello","version":1,"restarts":`...)
	b.q = appendUint(b.q, uint64(restarts))
	b.q = append(b.q, "}\n"...)
	b.mu.Unlock()
	if first != nil {
		close(first)
	}
	b.log.Info("backend running", "backend", b.name(), "restarts", restarts)
	l.wg.Add(2)
	go func() { defer l.wg.Done(); b.writeEvents(l, epoch) }()
	go func() { defer l.wg.Done(); b.readCommands(l) }()

	stopping := false
	select {
	case <-l.dead:
	case <-b.stop:
		stopping = true
		l.fail(errStopping)
	}
	code, reason := session.StatusCode(1012), "the backend is restarting"
	if stopping {
		code, reason = session.StatusGoingAway, "the server is shutting down"
	} else {
		b.log.Warn("backend gone: closing its connections", "backend", b.name(), "err", l.err)
	}
	b.mu.Lock()
	b.up = false
	b.epoch.Add(1)
	b.q = b.q[:0]
	groups := b.reg.groups()
	b.mu.Unlock()
	b.resetRooms()
	xs := *b.execs.Load()
	closeFn := func(c *session.Conn) { _ = c.Close(code, reason) }
	for xi, ids := range groups {
		// These closes must not be lost: a saturated loop is asked again.
		for wait := stallMin; errors.Is(xs[xi].ExecuteAll(ids, closeFn, 0), session.ErrQueueFull); wait = min(2*wait, stallMax) {
			time.Sleep(wait)
		}
	}
	l.close()
	l.wg.Wait()
}

// maxKeptQueue is the largest event buffer kept for reuse.
const maxKeptQueue = 64 << 10

// writeEvents writes queued events to the backend until the link breaks.
func (b *Backend) writeEvents(l *link, epoch uint32) {
	for {
		b.mu.Lock()
		for len(b.q) == 0 {
			b.mu.Unlock()
			select {
			case <-b.wake:
			case <-l.dead:
				return
			}
			b.mu.Lock()
		}
		if b.epoch.Load() != epoch {
			b.mu.Unlock()
			return
		}
		buf := b.q
		b.q = b.spare[:0]
		b.writing = len(buf)
		b.mu.Unlock()
		_, err := l.w.Write(buf)
		b.mu.Lock()
		b.writing = 0
		if cap(buf) <= maxKeptQueue {
			b.spare = buf[:0]
		} else {
			// A burst (a ramp of opens, a slow backend) grew it: let it
			// go rather than keep it for every idle second after.
			b.spare = nil
		}
		b.mu.Unlock()
		if err != nil {
			l.fail(fmt.Errorf("writing events: %w", err))
			return
		}
	}
}

// readCommands carries out the backend's command lines until the link
// breaks. A line longer than the longest valid command is skipped.
func (b *Backend) readCommands(l *link) {
	// The longest valid line: a message as JSON-escaped text, at most 6
	// bytes per byte (\u0000), and the fields around it.
	maxLine := 6*b.opts.MaxMessage + 4<<10
	br := bufio.NewReaderSize(l.r, 64<<10)
	var p commandParser
	var cmd command
	var long []byte
	skipping := false
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !skipping {
				if len(long)+len(line) > maxLine {
					skipping, long = true, nil
					b.bad(nil, errors.New("command line too long"))
				} else {
					long = append(long, line...)
				}
			}
			continue
		}
		if len(long) > 0 {
			line = append(long, line...)
			long = long[:0]
		}
		if skipping {
			skipping = false
		} else if trimmed := trimEOL(line); len(trimmed) > 0 {
			if perr := p.parse(trimmed, &cmd); perr != nil {
				b.bad(trimmed, perr)
			} else if xerr := b.execute(&cmd); xerr != nil {
				b.bad(trimmed, xerr)
			}
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("the backend closed its output")
			}
			l.fail(fmt.Errorf("reading commands: %w", err))
			return
		}
		if cap(long) > 1<<20 {
			long = nil
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// bad counts a bad command and logs the first ten and every 1000th after.
func (b *Backend) bad(line []byte, err error) {
	n := b.badCommands.Add(1)
	if n <= 10 || n%1000 == 0 {
		if len(line) > 200 {
			line = line[:200]
		}
		b.log.Warn("bad backend command", "backend", b.name(), "err", err, "line", string(line), "bad_so_far", n)
	}
}
