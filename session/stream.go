package session

import (
	"encoding/base64"
	"errors"
)

// Event streams: Server-Sent Events (text/event-stream, WHATWG HTML
// "Server-sent events") on the connection that carried the plain request.
// A stream is a write-only subscriber: it joins rooms and takes Send,
// SendPrepared and broadcasts like a WebSocket connection, encoded as
// events instead of frames, under the same Config (HighWater and Overflow,
// WriteTimeout, Stats). Its client sends nothing after the request: input
// is read (so that the client's close is seen) and discarded.
//
// Liveness. A stream has no pings to answer, so its client's silence means
// nothing and IdleTimeout and PongTimeout do not apply. After
// Config.PingInterval without output it writes a comment line (":\n"),
// which keeps proxies that time out idle responses (nginx's
// proxy_read_timeout) from cutting it, and gives TCP something to deliver:
// a peer that vanished is found by the kernel when those bytes go
// unacknowledged (a reset from a rebooted host at once, else at the TCP
// retransmission timeout, net.ipv4.tcp_retries2: about 15 minutes), a peer
// that stops reading by the WriteTimeout once its queued bytes stop moving.
// The client's FIN (io.EOF) ends the stream at once: a half-closed client
// of a stream cannot be told from a gone one, and an EventSource never
// half-closes.

// streamHead starts every event stream's response. The body ends with the
// connection (no Content-Length, no chunking: every event is the same bytes
// on every connection, so a shared encoding is written as it is), which
// HTTP/1.0 and 1.1 clients both read. X-Accel-Buffering keeps nginx from
// buffering it.
const streamHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n"

// heartbeat is the comment line a stream writes after PingInterval without
// output.
var heartbeat = []byte(":\n")

// errNoStreamHandler: StartStream with no handler to give the stream.
var errNoStreamHandler = errors.New("session: StartStream with no Handler (Accept.Handler or Config.Handler)")

// StartStream answers the plain request this connection carries (state
// StateHTTP, a GET) with an event stream: it writes the response head (200,
// Content-Type: text/event-stream, Cache-Control: no-store,
// X-Accel-Buffering: no, Connection: close, then acc.Header's lines), and
// the connection becomes a stream (StateStream) whose handler is
// acc.Handler (or Config.Handler): OnOpen runs now, inside this call,
// OnClose once when the stream ends, OnMessage never. acc.Value is the
// connection's value; acc.Config, when set, replaces its Config (as for an
// upgrade); acc.Protocol is not used.
//
// From then on Send and SendPrepared write events (see Prepared.Event),
// SendEvent writes a named one, WriteHTTP writes raw event-stream text (a
// "retry:" line), Close ends the stream once what is queued is written, and
// Handle reaches it from other goroutines; rooms and Server.Broadcast reach
// it like any open connection. OnClose gets the code given to Close (and
// a nil error) when this end ended the stream, StatusAbnormal and the
// engine's error (io.EOF: the client went away) otherwise.
//
// Bytes the client pipelined behind its request are discarded. It returns
// ErrClosed in any state but StateHTTP.
func (c *Conn) StartStream(acc Accept) error {
	switch {
	case c.io == nil:
		return ErrNotOnLoop
	case c.state != StateHTTP || c.flags&fTClosed != 0:
		return ErrClosed
	}
	h := acc.Handler
	if h == nil {
		h = c.cfg.Handler
	}
	if h == nil {
		return errNoStreamHandler
	}
	if c.buf != nil {
		putBuf(c.buf)
		c.buf = nil
	}
	c.io.Out = append(c.io.Out, streamHead...)
	c.io.Out = append(c.io.Out, acc.Header...)
	c.io.Out = append(c.io.Out, "\r\n"...)
	c.h, c.value = h, acc.Value
	if acc.Config != nil {
		c.cfg = acc.Config
	}
	c.state = StateStream
	c.flags = c.flags&^fKeepAlive | fOpened
	c.stamp = msOf(c.io.Now)
	c.io.Rearm = true
	c.io.Events.Opened = true
	if c.cfg.Stats != nil {
		c.cfg.Stats.Opened.Add(1)
	}
	defer c.handlerDone()
	c.h.OnOpen(c)
	return nil
}

// SendEvent writes one event named name (the client's addEventListener
// type; "" is the default "message") with data, on an event stream. CR, LF
// and NUL are left out of name; data's lines become data lines. It applies
// Config.Overflow as Send does, and returns ErrClosed on a connection that
// is not an open event stream.
func (c *Conn) SendEvent(name string, data []byte) error {
	if err := c.sendable(); err != nil {
		return err
	}
	if c.state != StateStream {
		return ErrClosed
	}
	if err := c.admit(); err != nil {
		return err
	}
	c.io.Out = appendEvent(c.io.Out, "", name, Text, data)
	c.streamOut()
	c.io.Events.Out++
	c.io.Events.OutBytes += len(data)
	return nil
}

// streamOut notes output on a stream: its heartbeat is due PingInterval
// after the last.
func (c *Conn) streamOut() { c.stamp = msOf(c.io.Now) }

// streamTick writes the heartbeat once PingInterval has passed without
// output. It is skipped while HighWater bytes wait: those bytes are the
// sign of life, and the WriteTimeout watches them.
func (c *Conn) streamTick(nowMs uint32) {
	pi := c.cfg.pingInterval()
	if pi <= 0 || elapsed(nowMs, c.stamp) < durMs(pi) {
		return
	}
	c.stamp = nowMs
	if c.io.Queued+len(c.io.Out) < c.cfg.highWater() {
		c.io.Out = append(c.io.Out, heartbeat...)
	}
}

// A stream that this end closed keeps the code given to Close, for
// OnClose, in the bytes of mask: a stream reads no frames.
func (c *Conn) setStreamCode(code StatusCode) {
	c.mask[0], c.mask[1] = byte(code>>8), byte(code)
}

func (c *Conn) streamCode() StatusCode { return StatusCode(c.mask[0])<<8 | StatusCode(c.mask[1]) }

// closeStream ends a stream from this end.
func (c *Conn) closeStream(code StatusCode) {
	c.flags |= fCloseSent
	c.setStreamCode(code)
	c.closeTransport()
}

// appendEvent appends one event: an id line when id is set, an event line
// when name is set, the data lines and the blank line that dispatches it.
// Text is split at every line end the client's parser knows (CRLF, LF, CR:
// each becomes a data line, and the client joins them with LF, so CRs do
// not survive); an empty payload is one empty data line (an event with
// empty data). Binary payloads go as one data line of standard base64 in an
// event named "binary" (there is no binary on an event stream).
func appendEvent(dst []byte, id, name string, op Opcode, p []byte) []byte {
	if id != "" {
		dst = appendField(dst, "id: ", id)
	}
	if op == Binary {
		name = "binary"
	}
	if name != "" {
		dst = appendField(dst, "event: ", name)
	}
	if op == Binary {
		dst = append(dst, "data: "...)
		dst = base64.StdEncoding.AppendEncode(dst, p)
		return append(dst, "\n\n"...)
	}
	for {
		i := 0
		for i < len(p) && p[i] != '\n' && p[i] != '\r' {
			i++
		}
		dst = append(dst, "data: "...)
		dst = append(dst, p[:i]...)
		dst = append(dst, '\n')
		if i == len(p) {
			break
		}
		if p[i] == '\r' && i+1 < len(p) && p[i+1] == '\n' {
			i++
		}
		p = p[i+1:]
	}
	return append(dst, '\n')
}

// appendField appends a field line, leaving out the bytes that would end
// the line early (CR, LF) or make the client ignore it (NUL, in an id).
func appendField(dst []byte, field, value string) []byte {
	dst = append(dst, field...)
	for i := 0; i < len(value); i++ {
		if b := value[i]; b != '\r' && b != '\n' && b != 0 {
			dst = append(dst, b)
		}
	}
	return append(dst, '\n')
}
