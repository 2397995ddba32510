package session

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/wsloop/wsloop/codec"
)

// The opening handshake. A head that arrives whole in one Feed is parsed in
// place; otherwise its bytes are kept in a pooled buffer until the blank
// line arrives (at most MaxRequestHeader bytes). Bytes behind the head in the
// same Feed are frames and are fed on once the connection is open.

// handshake is the parse state of one request head. It is pooled because
// a hook receives pointers into it, which would otherwise move it to the heap
// for every connection: garbage that, at tens of thousands of handshakes,
// keeps the heap (and RSS) at twice its live size.
type handshake struct {
	req codec.Request
	r   Request
}

var handshakePool = sync.Pool{New: func() any { return new(handshake) }}

func getHandshake() *handshake { return handshakePool.Get().(*handshake) }

// putHandshake drops every reference into the request bytes before pooling.
func putHandshake(hs *handshake) {
	*hs = handshake{}
	handshakePool.Put(hs)
}

// keyLen is the length of a Sec-WebSocket-Key; a client keeps its key at the
// start of buf until the response is checked.
const keyLen = 24

// refuse answers a request an upgrade hook or an admission refused.
func (c *Conn) refuse(err error) {
	he := &codec.HTTPError{Status: 403, Reason: "forbidden"}
	if re, ok := err.(*RejectError); ok {
		he.Reason, he.Header = re.Message, re.Header
		if re.Status >= 400 && re.Status <= 599 {
			he.Status = re.Status
		}
	} else if pe, ok := err.(*upgradePanic); ok {
		he.Status, he.Reason = 500, pe.Error()
	}
	c.rejectHTTP(he)
}

var errHeadTooLarge = &codec.HTTPError{Status: 431, Reason: "request header fields too large"}

// rejectHTTP answers a refused request and closes the connection.
func (c *Conn) rejectHTTP(err error) {
	he, ok := err.(*codec.HTTPError)
	if !ok {
		he = &codec.HTTPError{Status: 400, Reason: err.Error()}
	}
	c.io.Events.Status = he.Status
	c.io.Out = codec.AppendErrorResponse(c.io.Out, he)
	c.closeTransport()
}

// serveRequest decides a complete request (head, and the body of a plain
// request).
func (c *Conn) serveRequest(hs *handshake, body []byte) {
	cfg, req := c.cfg, &hs.req
	if c.io.Admit != nil && (req.Upgrade || cfg.HTTP != nil) {
		hs.r = Request{req: req, io: c.io, body: body}
		if err := c.io.Admit(&hs.r); err != nil {
			c.refuse(err)
			return
		}
	}
	if !req.Upgrade {
		if cfg.HTTP == nil {
			c.rejectHTTP(&codec.HTTPError{Status: 426, Reason: "this endpoint speaks WebSocket only", Header: "Upgrade: websocket"})
			return
		}
		c.state = StateHTTP
		c.flags &^= fKeepAlive
		if req.Major == 1 && (req.Minor >= 1 && !req.Close || req.Minor == 0 && req.KeepAlive) {
			c.flags |= fKeepAlive
		}
		c.io.Rearm = true // no deadline: the application answers in its own time
		hs.r = Request{req: req, io: c.io, cfg: cfg, body: body}
		c.callHTTP(&hs.r)
		return
	}
	if err := req.CheckUpgrade(); err != nil {
		c.rejectHTTP(err)
		return
	}
	if !originAllowed(string(req.Origin), string(req.Host), cfg.AllowedOrigins) {
		c.rejectHTTP(&codec.HTTPError{Status: 403, Reason: "origin not allowed: " + string(req.Origin)})
		return
	}
	var acc Accept
	if cfg.Upgrade != nil {
		hs.r = Request{req: req, io: c.io, cfg: cfg}
		var err error
		acc, err = c.callUpgrade(&hs.r)
		if err != nil {
			c.refuse(err)
			return
		}
	}
	h := acc.Handler
	if h == nil {
		h = cfg.Handler
	}
	if h == nil {
		c.rejectHTTP(&codec.HTTPError{Status: 500, Reason: "no handler for this connection"})
		return
	}
	proto := acc.Protocol
	if proto != "" {
		if !offered(req, proto) {
			c.rejectHTTP(&codec.HTTPError{Status: 500, Reason: "the upgrade hook chose a subprotocol the client did not offer"})
			return
		}
	} else {
		for _, p := range cfg.Protocols {
			if offered(req, p) {
				proto = p
				break
			}
		}
	}
	c.io.Out = codec.AppendUpgradeResponse(c.io.Out, req.Key, proto, acc.Header)
	c.h, c.value, c.proto = h, acc.Value, protoRef(cfg.Protocols, proto)
	if acc.Config != nil {
		c.cfg = acc.Config
	}
	if c.cfg.Compression != nil {
		if resp, window, ok := acceptDeflate(req); ok {
			c.flags |= fDeflate
			c.setSendWindow(window)
			c.io.Out = appendExtensionLine(c.io.Out, resp)
		}
	}
	c.open()
}

// acceptDeflate chooses the first permessage-deflate offer of req the
// server can honour (RFC 7692 5): an offer with an unknown parameter, a
// parameter given twice or an invalid value is declined, and the next one
// considered. It returns the response's parameters and the window the
// server compresses within. The server keeps no context either way (the
// client may always be told not to either, 7.1.1.2) and inflates any
// window, so it accepts every valid offer.
func acceptDeflate(req *codec.Request) (resp codec.DeflateParams, window uint8, ok bool) {
	req.EachExtension(func(name, params []byte) bool {
		if string(name) != codec.DeflateExtension {
			return true
		}
		offer, err := codec.ParseDeflateOffer(params)
		if err != nil {
			return true // declined: try the next offer
		}
		resp = codec.DeflateParams{
			ServerNoContextTakeover: true,
			ClientNoContextTakeover: true,
			// 7.1.2.1: a limit the client asked for is answered with the
			// same value and honoured; the client's own window needs no
			// answer (the server inflates any), so client_max_window_bits
			// is never in the response.
			ServerMaxWindowBits: offer.ServerMaxWindowBits,
		}
		window, ok = 15, true
		if offer.ServerMaxWindowBits != 0 {
			window = offer.ServerMaxWindowBits
		}
		return false
	})
	return resp, window, ok
}

// appendExtensionLine adds a Sec-WebSocket-Extensions line for p to the
// head that ends out (before its blank line).
func appendExtensionLine(out []byte, p codec.DeflateParams) []byte {
	out = append(out[:len(out)-2], "Sec-WebSocket-Extensions: "...)
	out = codec.AppendDeflateParams(out, p)
	return append(out, "\r\n\r\n"...)
}

// clientOffer is what a client with Compression offers: no context in
// either direction, and any window the server asks for.
var clientOffer = codec.DeflateParams{
	ServerNoContextTakeover: true,
	ClientNoContextTakeover: true,
	ClientMaxWindowBits:     codec.WindowBitsUnset,
}

// checkExtensions checks the extensions a server's response accepted
// against the client's offer (RFC 6455 4.1, RFC 7692 5 and 7.1) and
// records the outcome; it returns why the connection must fail, or "".
func (c *Conn) checkExtensions(res *codec.Response) string {
	offered := c.flags&fDeflate != 0
	c.flags &^= fDeflate
	why := ""
	res.EachExtension(func(name, params []byte) bool {
		if string(name) != codec.DeflateExtension || !offered || c.flags&fDeflate != 0 {
			why = "the server accepted an extension the client did not offer: " + string(name)
			return false
		}
		p, err := codec.ParseDeflateResponse(params)
		switch {
		case err != nil:
			why = err.Error()
			return false
		case !p.ServerNoContextTakeover:
			// The client inflates every message on its own.
			why = "permessage-deflate: the server did not accept server_no_context_takeover"
			return false
		}
		c.flags |= fDeflate
		window := uint8(15)
		if p.ClientMaxWindowBits != 0 {
			window = p.ClientMaxWindowBits
		}
		c.setSendWindow(window)
		return true
	})
	if why != "" {
		c.flags &^= fDeflate
	}
	return why
}

// open enters StateOpen after a successful handshake.
func (c *Conn) open() {
	c.state = StateOpen
	c.flags |= fOpened
	c.io.Events.Opened = true
	if c.cfg.Stats != nil {
		c.cfg.Stats.Opened.Add(1)
	}
	if c.cfg.Stats != nil && c.flags&fDeflate != 0 {
		c.cfg.Stats.Compressed.Add(1)
	}
	c.io.Rearm = true
	defer c.handlerDone()
	c.h.OnOpen(c)
}

// offered reports whether the client listed protocol p.
func offered(req *codec.Request, p string) bool {
	found := false
	req.EachProtocol(func(tok []byte) bool {
		found = string(tok) == p
		return !found
	})
	return found
}

type upgradePanic struct{ v any }

func (e *upgradePanic) Error() string { return fmt.Sprintf("upgrade hook panic: %v", e.v) }

// callUpgrade runs the upgrade hook; a panic becomes an *upgradePanic.
func (c *Conn) callUpgrade(r *Request) (acc Accept, err error) {
	defer func() {
		if v := recover(); v != nil {
			if c.cfg.Stats != nil {
				c.cfg.Stats.Panics.Add(1)
			}
			acc, err = Accept{}, &upgradePanic{v}
		}
	}()
	return c.cfg.Upgrade(r)
}

// callHTTP runs the plain-HTTP hook; after a panic the request gets a 500
// unless the hook already answered.
func (c *Conn) callHTTP(r *Request) {
	defer func() {
		if v := recover(); v != nil {
			if c.cfg.Stats != nil {
				c.cfg.Stats.Panics.Add(1)
			}
			if c.state == StateHTTP && c.flags&fTClosed == 0 {
				c.io.Out = c.io.Out[:0] // a partial answer would corrupt the 500
				c.rejectHTTP(&codec.HTTPError{Status: 500, Reason: "internal server error"})
			}
		}
	}()
	c.cfg.HTTP(c, r)
}

// feedResponse (client) consumes response bytes; like feedRequest it returns
// the bytes behind a complete head once the connection is open.
func (c *Conn) feedResponse(p []byte) []byte {
	limit := c.cfg.maxRequestHeader()
	var res codec.Response
	old := len(*c.buf) - keyLen
	if old == 0 {
		n, err := codec.ParseResponse(p, limit, (*c.buf)[:keyLen], &res)
		if err != nil {
			c.handshakeFailed(err)
			return nil
		}
		if n > 0 {
			c.acceptResponse(&res)
			return p[n:]
		}
	}
	take := p[:min(len(p), limit-old)]
	c.buf = growBuf(c.buf, keyLen+old+len(take), 0)
	*c.buf = append(*c.buf, take...)
	if old > 0 && bytes.IndexByte(take, '\n') >= 0 {
		n, err := codec.ParseResponse((*c.buf)[keyLen:], limit, (*c.buf)[:keyLen], &res)
		if err != nil {
			c.handshakeFailed(err)
			return nil
		}
		if n > 0 {
			c.acceptResponse(&res)
			return p[n-old:]
		}
	}
	if len(*c.buf)-keyLen >= limit {
		c.handshakeFailed(&codec.HTTPError{Reason: "response head too large"})
	}
	return nil
}

// acceptResponse opens a client connection whose response passed the checks.
func (c *Conn) acceptResponse(res *codec.Response) {
	chosen := ""
	if len(res.Protocol) > 0 {
		offers := ""
		if c.proto != nil {
			offers = *c.proto
		}
		for offers != "" {
			var o string
			o, offers, _ = strings.Cut(offers, ",")
			if o == string(res.Protocol) {
				chosen = o
				break
			}
		}
		if chosen == "" {
			c.handshakeFailed(&codec.HTTPError{Status: res.Status, Reason: "the server chose a subprotocol the client did not offer"})
			return
		}
	}
	if why := c.checkExtensions(res); why != "" {
		c.handshakeFailed(&codec.HTTPError{Status: res.Status, Reason: why})
		return
	}
	c.proto = nil
	if chosen != "" {
		c.proto = &chosen
	}
	putBuf(c.buf)
	c.buf = nil
	c.open()
}

// handshakeFailed ends a client connection whose handshake failed.
func (c *Conn) handshakeFailed(err error) {
	he := &HandshakeError{Reason: err.Error()}
	if e, ok := err.(*codec.HTTPError); ok {
		he.Status, he.Reason = e.Status, e.Reason
	}
	c.report(StatusAbnormal, "", he)
	c.closeTransport()
}

// protoRef returns a reference to proto, into the shared list when it is
// there: a Conn keeps a pointer rather than a string, 8 bytes instead of 16.
func protoRef(list []string, proto string) *string {
	if proto == "" {
		return nil
	}
	for i := range list {
		if list[i] == proto {
			return &list[i]
		}
	}
	p := new(string) // a hook's own choice: rare, and the only allocation here
	*p = proto
	return p
}

func joinProtocols(ps []string) string {
	switch len(ps) {
	case 0:
		return ""
	case 1:
		return ps[0]
	}
	return strings.Join(ps, ",")
}

// startClient writes the opening handshake for r; the key stays at the
// start of buf until the response is checked.
func (c *Conn) startClient(r *ClientRequest) {
	key := codec.NewKey()
	c.buf = getBuf(512)
	*c.buf = append(*c.buf, key[:]...)
	offers := joinProtocols(r.Protocols)
	if offers != "" {
		c.proto = &offers
	}
	c.io.Out = codec.AppendClientRequest(c.io.Out, r, key[:])
	if c.cfg.Compression != nil {
		c.flags |= fDeflate // offered; checkExtensions keeps it if accepted
		c.io.Out = appendExtensionLine(c.io.Out, clientOffer)
	}
}
