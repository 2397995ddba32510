package loop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/wsloop/wsloop/session"
)

// The bridge from a loop to a net/http Handler (Options.HTTP). The handler
// runs on its own goroutine with a ResponseWriter that buffers up to
// streamThreshold; a response that fits is sent whole with Content-Length,
// a larger one (or one the handler flushes, such as an event stream) is
// streamed: chunked on HTTP/1.1, delimited by the close on HTTP/1.0. A
// streamed response waits while the connection holds HighWater unsent
// bytes, so memory follows what the client reads, never the response's
// size. HTTP/1.1 keep-alive is honoured.

// streamThreshold is the most of a response body the bridge buffers before
// it streams.
const streamThreshold = 64 << 10

// serveHTTP is the session.HTTPFunc of every Server.
func (s *Server) serveHTTP(c *session.Conn, r *session.Request) {
	if s.opts.LoopHTTP != nil && s.opts.LoopHTTP(c, r) {
		return
	}
	keep := r.KeepAlive()
	req, err := r.HTTPRequest()
	if err != nil {
		_ = c.WriteHTTP(textResponse(http.StatusBadRequest, "400 bad request\n", false, false))
		_ = c.EndHTTP(false)
		return
	}
	if s.opts.HTTP == nil {
		// The default answers are tiny and need no goroutine.
		head := req.Method == http.MethodHead
		if req.URL.Path == "/healthz" {
			_ = c.WriteHTTP(textResponse(http.StatusOK, "ok", head, keep))
		} else {
			_ = c.WriteHTTP(textResponse(http.StatusNotFound, "404 page not found\n", head, keep))
		}
		_ = c.EndHTTP(keep)
		return
	}
	w := &responseWriter{hd: c.Handle(), header: make(http.Header), keep: keep,
		http10: req.ProtoMinor == 0, head: req.Method == http.MethodHead, limit: s.cfg.HighWater}
	if ts, ok := w.hd.Executor().(interface {
		TLSState(uint64) (tls.ConnectionState, bool)
	}); ok {
		if st, ok := ts.TLSState(w.hd.ID()); ok {
			req.TLS = &st // https: handlers see it as net/http shows it
		}
	}
	req = req.WithContext(s.httpCtx)
	s.httpWG.Add(1)
	go func() {
		defer s.httpWG.Done()
		s.runHandler(w, req)
	}()
}

// textResponse formats a plain-text response.
func textResponse(status int, body string, head, keep bool) []byte {
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	return formatResponse(nil, status, h, []byte(body), head, keep)
}

// runHandler runs Options.HTTP and sends what it answered.
func (s *Server) runHandler(w *responseWriter, req *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.log.Error("http handler panicked", "path", req.URL.Path, "panic", fmt.Sprint(v))
			}
			if !w.streaming {
				w.finish(textResponse(http.StatusInternalServerError, "500 internal server error\n", false, false), false)
				return
			}
			w.end(false) // a stream cut short: the client sees it end without its last chunk
		}
	}()
	s.opts.HTTP.ServeHTTP(w, req)
	switch {
	case w.streaming:
		w.end(true)
	case w.status == 0 && req.Context().Err() != nil:
		// Cancelled by Shutdown before it said anything.
		w.finish(textResponse(http.StatusServiceUnavailable, "503 server shutting down\n", false, false), false)
	default:
		if w.status == 0 {
			w.status = http.StatusOK
		}
		n := len(w.body)
		if w.head {
			n = w.headLen
		}
		w.finish(formatResponseLength(nil, w.status, w.header, w.body, n, w.head, w.keep), w.keep)
	}
}

// responseWriter is the handler's http.ResponseWriter and http.Flusher. It
// is used by the handler's goroutine only.
type responseWriter struct {
	hd        session.Handle
	header    http.Header
	status    int
	body      []byte
	keep      bool // the request allows keep-alive
	http10    bool
	head      bool // a HEAD request: no body is sent
	streaming bool // the head is out: the body follows in parts
	chunked   bool
	headLen   int   // a HEAD request: the body length the handler wrote
	failed    error // the connection is gone: writes fail
	limit     int   // the connection's HighWater
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return // repeated calls and 1xx interim responses are not sent
	}
	w.status = code
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.failed != nil {
		return 0, w.failed
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status == http.StatusNoContent || w.status == http.StatusNotModified {
		return len(p), nil // no body is sent for these
	}
	if w.head && !w.streaming {
		w.headLen += len(p) // counted for Content-Length, never sent
		return len(p), nil
	}
	// At most streamThreshold is buffered (and handed on at once): a large
	// Write streams in pieces, as the client takes them.
	for n := 0; n < len(p) && w.failed == nil; {
		k := min(len(p)-n, streamThreshold-len(w.body))
		w.body = append(w.body, p[n:n+k]...)
		n += k
		if len(w.body) == streamThreshold && n < len(p) {
			w.Flush()
		}
	}
	if w.failed != nil {
		return 0, w.failed
	}
	return len(p), nil
}

// Flush sends what is buffered now, starting a streamed response: an event
// stream (text/event-stream) works through it.
func (w *responseWriter) Flush() {
	if w.failed != nil {
		return
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var out []byte
	if !w.streaming {
		w.streaming = true
		w.chunked = !w.http10
		if !w.chunked {
			w.keep = false // the body ends with the connection
		}
		out = formatStreamHead(nil, w.status, w.header, w.chunked, w.keep)
	}
	if len(w.body) > 0 {
		out = appendChunk(out, w.body, w.chunked)
		w.body = w.body[:0]
	}
	if len(out) > 0 {
		w.send(out, false, false)
	}
}

// end ends a streamed response.
func (w *responseWriter) end(ok bool) {
	w.Flush()
	var tail []byte
	if ok && w.chunked {
		tail = []byte("0\r\n\r\n")
	}
	w.send(tail, true, ok && w.keep)
}

// finish sends a whole response and ends the exchange.
func (w *responseWriter) finish(resp []byte, keep bool) { w.send(resp, true, keep) }

// send hands p to the connection's loop, ending the exchange when last,
// and waits while the connection holds its HighWater of unsent bytes (a
// client that does not read stops the handler's writes, not the server).
func (w *responseWriter) send(p []byte, last, keep bool) {
	if w.failed != nil {
		return
	}
	buf := append([]byte(nil), p...)
	res := make(chan int, 1)
	gone := func() { res <- -1 }
	err := w.hd.Executor().Execute(w.hd.ID(), func(c *session.Conn) {
		if len(buf) > 0 && c.WriteHTTP(buf) != nil {
			res <- -1
			return
		}
		if last {
			_ = c.EndHTTP(keep)
		}
		res <- c.Buffered()
	}, gone, len(buf))
	if err != nil {
		w.failed = err
		return
	}
	n := <-res
	if n < 0 {
		w.failed = session.ErrClosed
		return
	}
	for wait := time.Millisecond; !last && n >= w.limit; wait = min(2*wait, 50*time.Millisecond) {
		time.Sleep(wait)
		if err := w.hd.Do(func(c *session.Conn) { res <- c.Buffered() }); err != nil {
			w.failed = err
			return
		}
		select {
		case n = <-res:
		case <-time.After(time.Second):
			w.failed = errors.New("loop: HTTP connection gone while its response was streamed")
			return
		}
	}
}

// formatResponse appends a complete HTTP/1.1 response to dst: status line,
// the handler's headers (sorted, for stable output), Date, Content-Length
// (not for 204 and 304, which have no body), Connection: close unless keep,
// then the body unless head is set.
func formatResponse(dst []byte, status int, h http.Header, body []byte, head, keep bool) []byte {
	return formatResponseLength(dst, status, h, body, len(body), head, keep)
}

// formatResponseLength is formatResponse announcing length bytes (a HEAD
// answer announces the body it does not send).
func formatResponseLength(dst []byte, status int, h http.Header, body []byte, length int, head, keep bool) []byte {
	noBody := status == http.StatusNoContent || status == http.StatusNotModified
	if noBody {
		body = nil
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", http.DetectContentType(body))
	}
	dst = appendHead(dst, status, h)
	if !noBody {
		dst = appendHeaderLine(dst, "Content-Length", strconv.Itoa(length))
	}
	if !keep {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if !head {
		dst = append(dst, body...)
	}
	return dst
}

// formatStreamHead is the head of a streamed response.
func formatStreamHead(dst []byte, status int, h http.Header, chunked, keep bool) []byte {
	dst = appendHead(dst, status, h)
	if chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if !keep {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendChunk appends p as one chunk (or as it is, unchunked).
func appendChunk(dst, p []byte, chunked bool) []byte {
	if !chunked {
		return append(dst, p...)
	}
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, p...)
	return append(dst, "\r\n"...)
}

var headerKeys = sync.Pool{New: func() any { return new([]string) }}

// appendHead appends the status line, the handler's headers (sorted, for
// stable output; framing headers are the bridge's) and Date.
func appendHead(dst []byte, status int, h http.Header) []byte {
	text := http.StatusText(status)
	if text == "" {
		text = "status code " + strconv.Itoa(status)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\n"...)
	kp := headerKeys.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding", "Date", "Keep-Alive":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			dst = appendHeaderLine(dst, k, v)
		}
	}
	*kp = keys[:0]
	headerKeys.Put(kp)
	return appendHeaderLine(dst, "Date", time.Now().UTC().Format(http.TimeFormat))
}

// appendHeaderLine appends "k: v\r\n", dropping CR and LF from v so that a
// handler's value cannot split the response.
func appendHeaderLine(dst []byte, k, v string) []byte {
	dst = append(dst, k...)
	dst = append(dst, ": "...)
	for i := 0; i < len(v); i++ {
		if v[i] != '\r' && v[i] != '\n' {
			dst = append(dst, v[i])
		}
	}
	return append(dst, "\r\n"...)
}
