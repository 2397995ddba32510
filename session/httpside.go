package session

import (
	"bytes"

	"github.com/wsloop/wsloop/codec"
)

// The server's plain HTTP side. A request head is parsed in place when it
// arrives whole, else collected in a pooled buffer (at most
// MaxRequestHeader); a plain request's body (Content-Length, at most
// MaxRequestBody) is collected behind it; both within HandshakeTimeout of
// the request's first byte (the read timeout). Then Config.HTTP answers in
// its own time (StateHTTP) with WriteHTTP and EndHTTP; with HTTP/1.1
// keep-alive the connection then reads the next request, within
// HandshakeTimeout again. Bytes a client sends while its answer is pending
// (pipelining) wait in a pooled buffer, bounded like a request.

var (
	errBodyTooLarge = &codec.HTTPError{Status: 413, Reason: "request body too large"}
	errChunkedBody  = &codec.HTTPError{Status: 411, Reason: "a request body needs Content-Length (chunked bodies are not accepted)"}
	errCoding       = &codec.HTTPError{Status: 501, Reason: "unsupported Transfer-Encoding"}
	errPipelined    = &codec.HTTPError{Status: 400, Reason: "too much pipelined input while a request is answered"}
)

var continueResponse = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// feedHandshake consumes bytes of the opening handshake, or of plain HTTP
// requests one after the other, and returns what follows once the
// connection is open (frames), nil otherwise.
func (c *Conn) feedHandshake(p []byte) []byte {
	for len(p) > 0 && c.state == StateHandshake && c.flags&fTClosed == 0 {
		p = c.feedRequest(p)
	}
	if len(p) > 0 && c.state == StateHTTP && c.flags&fTClosed == 0 {
		c.keepPipelined(p)
		return nil
	}
	return p
}

// feedRequest (server) consumes request bytes: it returns the bytes after
// a complete request (head and body), nil when it kept or refused them.
func (c *Conn) feedRequest(p []byte) []byte {
	limit := c.cfg.maxRequestHeader()
	hs := getHandshake()
	defer putHandshake(hs)
	req := &hs.req
	switch {
	case c.flags&fBody != 0:
		// A body being collected: the head is at the start of buf.
		take := p[:min(len(p), int(c.remaining))]
		*c.buf = append(*c.buf, take...)
		c.remaining -= uint32(len(take))
		if c.remaining > 0 {
			return nil
		}
		c.flags &^= fBody
		b := c.buf
		c.buf = nil
		n, _ := codec.ParseRequest(*b, limit, req) // parsed before: cannot fail
		c.serveRequest(hs, (*b)[n:])               // req aliases b: release after
		putBuf(b)
		return p[len(take):]
	case c.buf == nil:
		n, err := codec.ParseRequest(p, limit, req)
		if err != nil {
			c.rejectHTTP(err)
			return nil
		}
		if n > 0 {
			return c.headDone(hs, p, n, p[n:])
		}
		if len(p) >= limit {
			c.rejectHTTP(errHeadTooLarge)
			return nil
		}
		c.buf = getBuf(len(p))
		*c.buf = append(*c.buf, p...)
		return nil
	}
	old := len(*c.buf)
	take := p[:min(len(p), limit-old)]
	c.buf = growBuf(c.buf, old+len(take), 0)
	*c.buf = append(*c.buf, take...)
	// The head can only end in a Feed that brings a line feed.
	if bytes.IndexByte(take, '\n') >= 0 {
		n, err := codec.ParseRequest(*c.buf, limit, req)
		if err != nil {
			c.rejectHTTP(err)
			return nil
		}
		if n > 0 {
			*c.buf = (*c.buf)[:n] // the head; what followed it is in p
			b := c.buf
			c.buf = nil
			rest := c.headDone(hs, *b, n, p[n-old:]) // req aliases b: release after
			if c.buf == nil || c.buf != b {
				putBuf(b)
			}
			return rest
		}
	}
	if len(*c.buf) >= limit {
		c.rejectHTTP(errHeadTooLarge)
	}
	return nil
}

// headDone goes on after a complete head of n bytes at the start of buf;
// rest are the bytes after it. An upgrade is decided at once (rest are
// frames); a plain request is served once its body is complete.
func (c *Conn) headDone(hs *handshake, buf []byte, n int, rest []byte) []byte {
	req := &hs.req
	if req.Upgrade {
		c.serveRequest(hs, nil)
		return rest
	}
	var body int
	switch {
	case req.TransferEncoding != nil && codec.ValidChunked(req.TransferEncoding):
		c.rejectHTTP(errChunkedBody)
		return nil
	case req.TransferEncoding != nil:
		c.rejectHTTP(errCoding)
		return nil
	case req.ContentLength > int64(c.cfg.maxRequestBody()):
		c.rejectHTTP(errBodyTooLarge)
		return nil
	case req.ContentLength > 0:
		body = int(req.ContentLength)
	}
	if len(rest) >= body {
		c.serveRequest(hs, rest[:body])
		return rest[body:]
	}
	// Collect the body behind the head, in a buffer of the exact size.
	nb := getBuf(n + body)
	*nb = append(append(*nb, buf[:n]...), rest...)
	c.buf = nb
	c.remaining = uint32(n + body - len(*nb))
	c.flags |= fBody
	if req.Expect100 {
		c.io.Out = append(c.io.Out, continueResponse...)
	}
	return nil
}

// keepPipelined keeps input that arrives while a request is answered, for
// after the answer (bounded like one request).
func (c *Conn) keepPipelined(p []byte) {
	have := 0
	if c.buf != nil {
		have = len(*c.buf)
	}
	if have+len(p) > c.cfg.maxRequestHeader()+c.cfg.maxRequestBody() {
		c.rejectHTTP(errPipelined)
		return
	}
	c.buf = growBuf(c.buf, have+len(p), 0)
	*c.buf = append(*c.buf, p...)
}

// WriteHTTP writes bytes of the answer to the plain HTTP request this
// connection carries (state StateHTTP): a whole response, or its head and
// then parts of its body over time (a stream, such as text/event-stream).
// Like Send it applies Config.Overflow once HighWater bytes wait (by
// default the connection is closed). p is not retained. It returns
// ErrClosed in any other state. On an event stream (StartStream) it writes
// p as it is: event-stream text the stream's own encoders do not make, such
// as a "retry:" line.
func (c *Conn) WriteHTTP(p []byte) error {
	switch {
	case c.io == nil:
		return ErrNotOnLoop
	case c.state != StateHTTP && c.state != StateStream || c.flags&(fTClosed|fCloseSent) != 0:
		return ErrClosed
	}
	if err := c.admit(); err != nil {
		return err
	}
	c.io.Out = append(c.io.Out, p...)
	if c.state == StateStream {
		c.streamOut()
	}
	return nil
}

// EndHTTP ends the answer. With keepAlive, and when the request allowed it
// (HTTP/1.1 without Connection: close, or HTTP/1.0 with keep-alive), the
// connection reads the next request; otherwise it closes once everything
// is written. The response must have said so (Content-Length or chunked
// framing for keep-alive, Connection: close otherwise).
func (c *Conn) EndHTTP(keepAlive bool) error {
	switch {
	case c.io == nil:
		return ErrNotOnLoop
	case c.state != StateHTTP || c.flags&fTClosed != 0:
		return ErrClosed
	}
	if !keepAlive || c.flags&fKeepAlive == 0 {
		c.closeTransport()
		return nil
	}
	c.state = StateHandshake
	c.stamp = msOf(c.io.Now)
	c.io.Rearm = true
	if c.buf != nil {
		// What came while the answer was pending: the next request(s).
		b := c.buf
		c.buf = nil
		if rest := c.feedHandshake(*b); len(rest) > 0 {
			c.feedFrames(rest)
		}
		if c.buf != b {
			putBuf(b)
		}
	}
	return nil
}

// Buffered is how many bytes the connection has queued and not yet written
// (what Config.HighWater bounds). It is 0 outside the connection's calls.
func (c *Conn) Buffered() int {
	if c.io == nil {
		return 0
	}
	return c.io.Queued + len(c.io.Out) + len(c.io.Pong)
}
