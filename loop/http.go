package loop

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/wsloop/wsloop/session"
)

// maxHTTPBody caps a buffered plain-HTTP response body; a handler that
// writes more gets a 500 instead (the loops hold whole responses in memory).
// A variable so that tests can lower it.
var maxHTTPBody = 32 << 20

// serveHTTP is the session.HTTPFunc of every Server: the bridge from a
// loop to a net/http Handler. The handler runs on its own goroutine with a
// buffering ResponseWriter; the complete response goes back to the loop
// through the connection's Handle.
func (s *Server) serveHTTP(c *session.Conn, r *session.Request) {
	req, err := r.HTTPRequest()
	if err != nil {
		_ = c.WriteHTTP(textResponse(http.StatusBadRequest, "400 bad request\n", false))
		return
	}
	if s.opts.HTTP == nil {
		// The default answers are tiny and need no goroutine.
		head := req.Method == http.MethodHead
		if req.URL.Path == "/healthz" {
			_ = c.WriteHTTP(textResponse(http.StatusOK, "ok", head))
		} else {
			_ = c.WriteHTTP(textResponse(http.StatusNotFound, "404 page not found\n", head))
		}
		return
	}
	hd := c.Handle()
	if ts, ok := hd.Executor().(interface {
		TLSState(uint64) (tls.ConnectionState, bool)
	}); ok {
		if st, ok := ts.TLSState(hd.ID()); ok {
			req.TLS = &st // https: handlers see it as net/http shows it
		}
	}
	req = req.WithContext(s.httpCtx)
	s.httpWG.Add(1)
	go func() {
		defer s.httpWG.Done()
		resp := s.runHandler(req)
		_ = hd.Do(func(c *session.Conn) { _ = c.WriteHTTP(resp) })
	}()
}

// textResponse formats a plain-text response.
func textResponse(status int, body string, head bool) []byte {
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	return formatResponse(nil, status, h, []byte(body), head)
}

// runHandler runs Options.HTTP on req and returns the complete response.
func (s *Server) runHandler(req *http.Request) (resp []byte) {
	w := &bufferedResponse{header: make(http.Header)}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.log.Error("http handler panicked", "path", req.URL.Path, "panic", fmt.Sprint(v))
			}
			resp = textResponse(http.StatusInternalServerError, "500 internal server error\n", false)
		}
	}()
	s.opts.HTTP.ServeHTTP(w, req)
	if w.tooBig {
		s.log.Error("http response body over the limit", "path", req.URL.Path, "limit", maxHTTPBody)
		return textResponse(http.StatusInternalServerError, "500 response too large\n", false)
	}
	if w.status == 0 {
		if req.Context().Err() != nil {
			// Cancelled by Shutdown before it said anything.
			return textResponse(http.StatusServiceUnavailable, "503 server shutting down\n", false)
		}
		w.status = http.StatusOK
	}
	return formatResponse(nil, w.status, w.header, w.body, req.Method == http.MethodHead)
}

// bufferedResponse is an http.ResponseWriter that keeps the whole response.
type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
	tooBig bool
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return // repeated calls and 1xx interim responses are not sent
	}
	w.status = code
}

func (w *bufferedResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.tooBig || len(w.body)+len(p) > maxHTTPBody {
		w.tooBig = true
		w.body = nil
		return 0, fmt.Errorf("loop: HTTP response body over %d bytes", maxHTTPBody)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// formatResponse appends a complete HTTP/1.1 response to dst: status line,
// the handler's headers (sorted, for stable output), Date, Content-Length
// (not for 204 and 304, which have no body) and Connection: close, then the
// body unless head is set.
func formatResponse(dst []byte, status int, h http.Header, body []byte, head bool) []byte {
	text := http.StatusText(status)
	if text == "" {
		text = "status code " + strconv.Itoa(status)
	}
	noBody := status == http.StatusNoContent || status == http.StatusNotModified
	if noBody {
		body = nil
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", http.DetectContentType(body))
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\n"...)
	keys := make([]string, 0, len(h))
	for k := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding", "Date":
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
	dst = appendHeaderLine(dst, "Date", time.Now().UTC().Format(http.TimeFormat))
	if !noBody {
		dst = appendHeaderLine(dst, "Content-Length", strconv.Itoa(len(body)))
	}
	dst = append(dst, "Connection: close\r\n\r\n"...)
	if !head {
		dst = append(dst, body...)
	}
	return dst
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
