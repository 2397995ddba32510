package bridge

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/wsloop/wsloop/session"
)

// execConn is one connection of an Exec and its program. It costs a process
// and three goroutines (stdout and exit, stdin, stderr), each parked in the
// runtime's poller on its pipe while idle: tens of KiB beside the megabyte
// of even the smallest program, which is why the pipes are not served from
// the event loops (see the package documentation for the figures).
type execConn struct {
	e       *Exec
	env     []string
	log     *slog.Logger
	h       session.Handle
	gone    chan struct{} // closed by OnClose
	drained chan struct{} // signalled by OnDrain

	mu       sync.Mutex
	in       []byte // stdin bytes the writer has not taken yet
	spare    []byte // the writer's last buffer, reused
	writing  int    // bytes the writer is writing now
	inEOF    bool   // close stdin once in is written
	inBroken bool   // stdin failed: further input is dropped
	stopping bool   // the connection has gone: the program is being stopped
	proc     *process
	wake     chan struct{} // tells the writer that in or inEOF changed
}

// input queues a message for the program's stdin. It reports false when the
// bytes waiting would pass StdinBuffer: the caller applies the overflow
// policy (close 1008).
func (ec *execConn) input(p []byte) bool {
	binary := ec.e.opts.Binary
	add := len(p)
	if !binary {
		add++
	}
	ec.mu.Lock()
	if ec.inBroken || ec.inEOF {
		ec.mu.Unlock()
		ec.e.droppedInput.Add(1)
		return true
	}
	if n := len(ec.in) + ec.writing; n > 0 && n+add > ec.e.opts.StdinBuffer {
		ec.mu.Unlock()
		return false
	}
	ec.in = append(ec.in, p...)
	if !binary {
		ec.in = append(ec.in, '\n')
	}
	ec.mu.Unlock()
	ec.signal()
	return true
}

func (ec *execConn) signal() {
	select {
	case ec.wake <- struct{}{}:
	default:
	}
}

// stop starts stopping the program once the connection has gone (or Exec
// closes): stdin is closed after what waits is written, and the process
// stop sequence starts (SIGTERM after TermDelay, SIGKILL KillDelay later,
// unless the program has exited).
func (ec *execConn) stop() {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if ec.stopping {
		return
	}
	ec.stopping = true
	ec.inEOF = true
	ec.signal()
	if ec.proc != nil {
		ec.proc.stop()
	}
}

// run starts the program, serves its stdout until EOF, waits for it and
// closes the connection with its outcome: 1000 for exit status 0, 1011
// otherwise.
func (ec *execConn) run() {
	e := ec.e
	defer e.done(ec)
	in, out, errOut, err := newPipes()
	if err != nil {
		ec.startFailed(err)
		return
	}
	p, err := startProcess(e.path, e.opts.Args, ec.env, e.opts.Dir, in, out, errOut, ec.log, e.opts.TermDelay, e.opts.KillDelay)
	if err != nil {
		ec.startFailed(err)
		return
	}
	e.started.Add(1)
	ec.env = nil
	ec.log = p.log
	ec.log.Debug("program started")
	ec.mu.Lock()
	ec.proc = p
	if ec.stopping {
		p.stop()
	}
	ec.mu.Unlock()

	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); logLines(errOut.parent, ec.log) }()
	go func() { defer pipes.Done(); ec.writeStdin(in.parent) }()
	ec.pumpStdout(out.parent)
	out.parent.Close()

	err = p.wait()
	ec.mu.Lock()
	ec.inEOF = true
	ec.signal()
	ec.mu.Unlock()
	pipes.Wait()

	code, reason := session.StatusNormal, ""
	if err != nil {
		code, reason = session.StatusInternalError, "program "+err.Error()
		if len(reason) > 123 {
			reason = reason[:123]
		}
	}
	ec.log.Debug("program exited", "status", p.cmd.ProcessState.String())
	_ = ec.h.Close(code, reason)
}

func (ec *execConn) startFailed(err error) {
	ec.e.startErrors.Add(1)
	ec.log.Error("cannot start the program for a connection", "program", ec.e.path, "err", err)
	_ = ec.h.Close(session.StatusInternalError, "the program could not be started")
}

// writeStdin writes queued input to the program until stdin is to be closed
// or a write fails (the program closed its stdin or exited); after a
// failure input is dropped.
func (ec *execConn) writeStdin(w *os.File) {
	defer w.Close()
	for {
		ec.mu.Lock()
		for len(ec.in) == 0 && !ec.inEOF {
			ec.mu.Unlock()
			<-ec.wake
			ec.mu.Lock()
		}
		if len(ec.in) == 0 {
			ec.mu.Unlock()
			return
		}
		buf := ec.in
		ec.in = ec.spare[:0]
		ec.writing = len(buf)
		ec.mu.Unlock()
		_, err := w.Write(buf)
		ec.mu.Lock()
		ec.writing = 0
		ec.spare = buf[:0]
		if err != nil {
			ec.inBroken = true
			ec.in = ec.in[:0]
		}
		ec.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// pumpStdout turns the program's stdout into messages until EOF. While the
// client does not read, it stops reading (outbox), so the program blocks on
// the pipe; once the connection has gone it reads and discards the rest, so
// that a program finishing up does not block on a full pipe.
func (ec *execConn) pumpStdout(r *os.File) {
	op := session.Text
	if ec.e.opts.Binary {
		op = session.Binary
	}
	ob := newOutbox(ec.h, ec.gone, ec.drained, op, &ec.e.stalls, &ec.e.heldMax)
	var ok bool
	if ec.e.opts.Binary {
		ok = pumpBinary(r, ob)
	} else {
		ok = pumpLines(r, ob, ec.e.opts.MaxLine)
	}
	if !ok {
		// A task may still hold the pump's buffer: discard with a new one.
		_, _ = io.Copy(io.Discard, r)
	}
}

const readChunk = 64 << 10

// pumpBinary sends each read as one binary message; false: the connection
// has gone.
func pumpBinary(r io.Reader, ob *outbox) bool {
	buf := make([]byte, readChunk)
	msg := make([][]byte, 1)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			msg[0] = buf[:n]
			if !ob.flush(msg) {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

// pumpLines sends each line as one text message; false: the connection has
// gone. It holds one read buffer (64 KiB, grown up to maxLine for long
// lines) and the batch of lines cut from it.
func pumpLines(r io.Reader, ob *outbox, maxLine int) bool {
	buf := make([]byte, min(readChunk, maxLine))
	var msgs [][]byte
	start, end := 0, 0
	for {
		if end == len(buf) {
			switch {
			case start > 0:
				end = copy(buf, buf[start:end])
				start = 0
			case len(buf) < maxLine:
				nb := make([]byte, min(2*len(buf), maxLine))
				end = copy(nb, buf[:end])
				buf = nb
			default:
				// A line longer than maxLine: send what fits, cut at a rune
				// boundary, and go on with the rest as a new line.
				cut := runeCut(buf[:end])
				if !ob.flush(append(msgs[:0], validText(buf[:cut]))) {
					return false
				}
				end = copy(buf, buf[cut:end])
			}
		}
		n, err := r.Read(buf[end:])
		end += n
		msgs = msgs[:0]
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			line := buf[start : start+i]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			msgs = append(msgs, validText(line))
			start += i + 1
		}
		if err != nil && start < end {
			msgs = append(msgs, validText(buf[start:end])) // a last line without '\n'
			start = end
		}
		if len(msgs) > 0 && !ob.flush(msgs) {
			return false
		}
		if start == end {
			start, end = 0, 0
		}
		if err != nil {
			return true
		}
	}
}

// validText returns line as valid UTF-8 (a text message must be).
func validText(line []byte) []byte { return validUTF8(line) }

// runeCut returns the largest length <= len(b) that does not end inside a
// UTF-8 sequence (never 0 for a non-empty b).
func runeCut(b []byte) int {
	n := len(b)
	for i := n - 1; i >= 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if i > 0 && !utf8.FullRune(b[i:]) {
				return i
			}
			return n
		}
	}
	return n
}
