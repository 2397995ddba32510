package bridge

import (
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsloop/wsloop/session"
)

// ExecOptions configure an Exec. The zero value behaves as websocketd does:
// text mode, wsloop's working directory, PATH passed through.
type ExecOptions struct {
	// Args are the program's arguments.
	Args []string
	// Binary passes raw bytes: each message is written to stdin as it is,
	// and whatever one read of stdout returns (at most 64 KiB) is one binary
	// message. Otherwise (text mode) each message is written as one line
	// (its bytes, then '\n'; a newline inside a message is not escaped), and
	// each stdout line is one text message without its "\n" or "\r\n"
	// (invalid UTF-8 replaced by U+FFFD, lines longer than MaxLine split).
	Binary bool
	// Dir is the program's working directory; default wsloop's.
	Dir string
	// ScriptName is the path the program is mounted at, for SCRIPT_NAME and
	// PATH_INFO (see the package documentation); default: the request path.
	ScriptName string
	// PassEnv names variables of wsloop's environment that the program
	// gets (PATH always); Env adds "NAME=value" pairs.
	PassEnv []string
	Env     []string
	// TLS tells the program (HTTPS=on) that the server serves TLS.
	TLS bool
	// Limit caps the programs running at once (shared with other Execs and
	// CGI); nil: no cap.
	Limit *Limit
	// StdinBuffer bounds the bytes of messages waiting for the program to
	// read them; default 64 KiB. A message that would go past it closes the
	// connection with 1008 (a single message larger than the bound is taken
	// when nothing waits).
	StdinBuffer int
	// MaxLine is the longest stdout line sent as one text message; default
	// 1 MiB.
	MaxLine int
	// TermDelay is how long a program may run after its stdin was closed
	// (client gone) before its process group gets SIGTERM; default 1s.
	// KillDelay is how long after SIGTERM the group gets SIGKILL; default 2s.
	TermDelay, KillDelay time.Duration
	// Config is the session.Config the connections start from, usually the
	// server's; nil: the defaults. The Exec gives its connections a copy
	// with Overflow set to session.OverflowError (through
	// session.Accept.Config): a client that does not read then pauses the
	// program's stdout instead of being closed or losing lines.
	Config *session.Config
	// Logger receives the programs' stderr lines (Warn, tagged with path,
	// remote address and pid) and the bridge's own messages; default
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of ExecOptions.
const (
	DefaultStdinBuffer = 64 << 10
	DefaultMaxLine     = 1 << 20
	DefaultTermDelay   = time.Second
	DefaultKillDelay   = 2 * time.Second
)

// Exec serves each WebSocket connection by running a program for it
// (websocketd's model): see the package documentation for the contract.
// Route upgrades to it with Upgrade. Safe for concurrent use.
type Exec struct {
	path string
	opts ExecOptions
	cfg  *session.Config // the connections' (Accept.Config)
	log  *slog.Logger
	h    execHandler

	closing atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	live    map[*execConn]struct{} // running programs, for Close

	started, refused, startErrors, overflows, droppedInput, stalls atomic.Uint64
	heldMax                                                        atomic.Int64  // most stdout bytes held while a client did not read
	drains                                                         atomic.Uint64 // OnDrain calls (tests)
}

// ExecStats are an Exec's counters.
type ExecStats struct {
	Running      int    // programs running now
	Started      uint64 // programs started
	Refused      uint64 // connections refused past the Limit (503, or 1013 when the race was lost after the upgrade)
	StartErrors  uint64 // programs that could not be started (the connection got 1011)
	Overflows    uint64 // connections closed with 1008: their program did not read its stdin
	DroppedInput uint64 // messages dropped because the program had closed its stdin
	Stalls       uint64 // times stdout reading paused because a client did not read
}

// NewExec prepares to run program (looked up in PATH when it has no slash)
// for each connection routed to it.
func NewExec(program string, opts ExecOptions) (*Exec, error) {
	path, err := exec.LookPath(program)
	if err != nil {
		return nil, fmt.Errorf("bridge: program %q: %w", program, err)
	}
	if opts.StdinBuffer <= 0 {
		opts.StdinBuffer = DefaultStdinBuffer
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	if opts.TermDelay <= 0 {
		opts.TermDelay = DefaultTermDelay
	}
	if opts.KillDelay <= 0 {
		opts.KillDelay = DefaultKillDelay
	}
	cfg := new(session.Config)
	if opts.Config != nil {
		*cfg = *opts.Config
	}
	cfg.Overflow = session.OverflowError
	e := &Exec{path: path, opts: opts, cfg: cfg, log: opts.Logger, live: make(map[*execConn]struct{})}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.h = execHandler{e}
	return e, nil
}

// Upgrade is the session.UpgradeFunc of the program's route: it refuses
// with 503 past the Limit and otherwise accepts with the connection's CGI
// environment taken from r. The program starts once the connection is open.
func (e *Exec) Upgrade(r *session.Request) (session.Accept, error) {
	if e.closing.Load() {
		return session.Accept{}, &session.RejectError{Status: http.StatusServiceUnavailable,
			Message: "the server is shutting down", Header: "Retry-After: 1"}
	}
	if e.opts.Limit.full() {
		e.refused.Add(1)
		return session.Accept{}, &session.RejectError{Status: http.StatusServiceUnavailable,
			Message: "too many programs running: try again later", Header: "Retry-After: 1"}
	}
	ec := &execConn{
		e:       e,
		env:     cgiEnv(r, e.opts.ScriptName, e.opts.TLS, e.opts.PassEnv, e.opts.Env),
		gone:    make(chan struct{}),
		drained: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
	}
	ec.log = e.log.With("path", r.Path())
	if a := r.RemoteAddr(); a != nil {
		ec.log = ec.log.With("remote", a.String())
	}
	return session.Accept{Handler: e.h, Value: ec, Config: e.cfg}, nil
}

// Stats returns the counters.
func (e *Exec) Stats() ExecStats {
	e.mu.Lock()
	running := len(e.live)
	e.mu.Unlock()
	return ExecStats{
		Running: running, Started: e.started.Load(), Refused: e.refused.Load(),
		StartErrors: e.startErrors.Load(), Overflows: e.overflows.Load(),
		DroppedInput: e.droppedInput.Load(), Stalls: e.stalls.Load(),
	}
}

// Close refuses new connections, stops the programs still running (stdin
// closed, then SIGTERM and SIGKILL after the delays) and waits until every
// one has exited and its pipes are closed. Call it after the server's
// Shutdown, which closes their connections.
func (e *Exec) Close() error {
	e.closing.Store(true)
	e.mu.Lock()
	for ec := range e.live {
		ec.stop()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// execHandler is the session.Handler of every connection of an Exec; the
// connection's state is its Value, an *execConn.
type execHandler struct{ e *Exec }

func (h execHandler) OnOpen(c *session.Conn) {
	ec, ok := c.Value().(*execConn)
	if !ok {
		_ = c.Close(session.StatusInternalError, "no program for this connection")
		return
	}
	e := h.e
	if !e.opts.Limit.acquire() {
		// Another loop's upgrade took the last place since ours was checked.
		e.refused.Add(1)
		c.SetValue(nil)
		_ = c.Close(session.StatusTryAgainLater, "too many programs running")
		return
	}
	ec.h = c.Handle()
	e.mu.Lock()
	if e.closing.Load() {
		e.mu.Unlock()
		e.opts.Limit.release()
		c.SetValue(nil)
		_ = c.Close(session.StatusGoingAway, "the server is shutting down")
		return
	}
	e.live[ec] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	go ec.run()
}

func (h execHandler) OnMessage(c *session.Conn, op session.Opcode, p []byte) {
	ec, ok := c.Value().(*execConn)
	if !ok {
		return
	}
	if !ec.input(p) {
		h.e.overflows.Add(1)
		_ = c.Close(session.StatusPolicy, "the program is not reading its input")
	}
}

// OnDrain (session.Drainer) lets the connection's stdout reader go on after
// the client has taken what it had queued.
func (h execHandler) OnDrain(c *session.Conn) {
	if ec, ok := c.Value().(*execConn); ok {
		h.e.drains.Add(1)
		select {
		case ec.drained <- struct{}{}:
		default:
		}
	}
}

func (h execHandler) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {
	if ec, ok := c.Value().(*execConn); ok {
		close(ec.gone)
		ec.stop()
	}
}

// done is called by a connection's goroutine once its program has exited
// and its pipes are closed.
func (e *Exec) done(ec *execConn) {
	e.mu.Lock()
	delete(e.live, ec)
	e.mu.Unlock()
	e.opts.Limit.release()
	e.wg.Done()
}
