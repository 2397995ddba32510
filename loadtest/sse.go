package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"
)

// The sse scenario's subscribers: plain HTTP/1.1 GETs of a
// text/event-stream, one goroutine each (the event-loop client speaks
// WebSocket only), read through small buffers. Every event's data is
// checked as a broadcast message is: a token of a self-published message,
// or a server message's time and sequence fields.

// maxEvent bounds an event's data; a longer one fails the connection.
const maxEvent = 1 << 20

// dialSSE starts subscriber i of the share.
func (p *part) dialSSE(i int) {
	x := p.newConn(i)
	if p.track != nil {
		x.flags, x.b = fSub, uint32(i)
	}
	ep := p.target(x.id)
	x.start = p.clock()
	p.firstDial.CompareAndSwap(0, x.start)
	p.attempted.Add(1)
	p.streamWG.Add(1)
	go func() {
		defer p.streamWG.Done()
		p.runSSE(x, ep)
	}()
}

func (p *part) runSSE(x *conn, ep endpoint) {
	failed := func(cs cause, format string, a ...any) {
		p.failed[cs].Add(1)
		p.resolved.Add(1)
		p.note("connect failure "+cs.String(), format, a...)
	}
	d := net.Dialer{Timeout: p.cfg.ConnectTimeout}
	if src := p.srcFor(x.id); src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.Dial("tcp", ep.raddr.String())
	if err != nil {
		failed(classify(err), "%v", err)
		return
	}
	if !p.keepStream(c) {
		p.resolved.Add(1)
		return
	}
	_ = c.SetDeadline(time.Now().Add(p.cfg.ConnectTimeout))
	req := "GET " + ep.path + " HTTP/1.1\r\nHost: " + ep.host + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if p.cfg.Origin != "" {
		req += "Origin: " + p.cfg.Origin + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		failed(classify(err), "%v", err)
		return
	}
	br := bufio.NewReaderSize(c, 2048)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		failed(classify(err), "reading the response head: %v", err)
		return
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		resp.Body.Close()
		failed(causeHandshake, "%s with Content-Type %q, want 200 text/event-stream", resp.Status, resp.Header.Get("Content-Type"))
		return
	}
	_ = c.SetDeadline(time.Time{})
	now := p.clock()
	p.hs.record(time.Duration(now - x.start))
	x.flags |= fOpen
	p.opened.Add(1)
	p.resolved.Add(1)
	p.active.Add(1)
	if x.flags&fSub != 0 {
		p.subsOpen.Add(1)
	}
	p.lastOpen.Store(now)

	err = p.readEvents(x, resp.Body)
	resp.Body.Close()
	p.active.Add(-1)
	if x.flags&fSub != 0 {
		p.subsOpen.Add(-1)
	}
	if p.phase.Load() == phaseTeardown {
		return
	}
	if err == nil {
		err = io.EOF
	}
	cs := classify(err)
	p.dropped[cs].Add(1)
	p.note("drop "+cs.String(), "sse conn %d: %v", x.id, err)
}

// readEvents parses an event stream (the WHATWG rules: lines end in LF,
// CRLF or CR; "data:" lines join with LF; an empty line dispatches; lines
// starting with ":" are comments) until it ends, and accounts for each
// event. It returns why the stream ended.
func (p *part) readEvents(x *conn, body io.Reader) error {
	br := bufio.NewReaderSize(body, 2048)
	var data, line []byte
	hasData := false
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > maxEvent {
				return fmt.Errorf("a line of more than %d bytes", maxEvent)
			}
			continue
		}
		if err != nil {
			return err
		}
		p.bytesRcv.Add(int64(len(line)))
		// A lone CR also ends a line: split what came on them.
		for _, l := range bytes.Split(bytes.TrimRight(line, "\r\n"), []byte{'\r'}) {
			switch {
			case len(l) == 0:
				if hasData {
					p.received.Add(1)
					p.onEvent(x, bytes.TrimSuffix(data, []byte{'\n'}))
				}
				data, hasData = data[:0], false
			case l[0] == ':':
				p.heartbeats.Add(1)
			default:
				name, value, _ := bytes.Cut(l, []byte{':'})
				value = bytes.TrimPrefix(value, []byte{' '})
				if string(name) == "data" {
					if len(data)+len(value) > maxEvent {
						return fmt.Errorf("an event of more than %d bytes", maxEvent)
					}
					data = append(append(data, value...), '\n')
					hasData = true
				}
				// id, event and retry need nothing here.
			}
		}
		line = line[:0]
	}
}

// onEvent checks one event's data as a broadcast message.
func (p *part) onEvent(x *conn, data []byte) { p.onBroadcast(x, data) }
