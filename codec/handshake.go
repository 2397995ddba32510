package codec

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

// HTTPError is a request the server must refuse at the HTTP level. Status is
// the response code; Header, when not empty, is one extra header line without
// CRLF (for example "Sec-WebSocket-Version: 13" on a 426).
type HTTPError struct {
	Status int
	Reason string
	Header string
}

func (e *HTTPError) Error() string { return "websocket handshake: " + e.Reason }

// DefaultMaxRequestHeader is the default cap on a request or response head (8 KiB).
const DefaultMaxRequestHeader = 8 << 10

// The refusals ParseRequest and CheckUpgrade return. They are preallocated so
// that a flood of bad requests costs no garbage; treat them as read-only.
var (
	errHeadTooLarge    = &HTTPError{Status: 431, Reason: "request head too large"}
	errRequestLine     = &HTTPError{Status: 400, Reason: "malformed request line"}
	errHeaderLine      = &HTTPError{Status: 400, Reason: "malformed header line"}
	errDuplicateHost   = &HTTPError{Status: 400, Reason: "duplicate Host header"}
	errContentLength   = &HTTPError{Status: 400, Reason: "malformed or conflicting Content-Length"}
	errLengthAndCoding = &HTTPError{Status: 400, Reason: "both Content-Length and Transfer-Encoding"}
	errHTTPVersion     = &HTTPError{Status: 505, Reason: "unsupported HTTP version"}
	errMethod          = &HTTPError{Status: 405, Reason: "websocket upgrade needs GET", Header: "Allow: GET"}
	errOldHTTP         = &HTTPError{Status: 400, Reason: "websocket upgrade needs HTTP/1.1"}
	errNotUpgrade      = &HTTPError{Status: 400, Reason: "not a websocket upgrade (Upgrade: websocket and Connection: Upgrade)"}
	errNoHost          = &HTTPError{Status: 400, Reason: "missing Host header"}
	errTarget          = &HTTPError{Status: 400, Reason: "request-target is not a path or an http(s)/ws(s) URI"}
	errBadKey          = &HTTPError{Status: 400, Reason: "Sec-WebSocket-Key is not 16 bytes in base64"}
	errDuplicateKey    = &HTTPError{Status: 400, Reason: "duplicate Sec-WebSocket-Key header"}
	errWSVersion       = &HTTPError{Status: 426, Reason: "unsupported Sec-WebSocket-Version", Header: "Sec-WebSocket-Version: 13"}
	errResponseTooLong = &HTTPError{Status: 0, Reason: "response head too large"}
	errNotHTTP         = &HTTPError{Status: 0, Reason: "response is not HTTP/1.1"}
)

// Request is an HTTP/1.1 request head parsed in place: every byte slice
// aliases the buffer given to ParseRequest and is valid only as long as it.
// Parsing allocates nothing.
type Request struct {
	Method []byte
	Target []byte // request-target as sent
	Path   []byte // Target up to '?'; for an absolute-form target, its path ("/" when empty)
	Query  []byte // after '?', without it
	Major  int    // HTTP version
	Minor  int

	// Values of the headers a handshake needs (the first occurrence; lists
	// that may repeat are read through EachProtocol and EachExtension).
	Host    []byte
	Origin  []byte
	Key     []byte // Sec-WebSocket-Key
	Version []byte // Sec-WebSocket-Version

	// Upgrade is true when Upgrade names websocket and Connection holds the
	// upgrade token (both case-insensitive). A request without it is plain HTTP.
	Upgrade bool

	// The framing of a plain request's body (RFC 9112 6): ContentLength is
	// -1 without a Content-Length header; TransferEncoding is the header's
	// value (a request with both is refused with 400, against smuggling).
	ContentLength    int64
	TransferEncoding []byte
	// Connection tokens and Expect: 100-continue.
	Close, KeepAlive, Expect100 bool

	Head []byte // the whole head, request line to the blank line included

	hasHost bool // a Host line was present (its value may be empty)
	dupKey  bool // Sec-WebSocket-Key appeared more than once (RFC 6455 11.3.1)
}

// ParseRequest parses the request head at the start of p. It returns the
// head's length n once the blank line that ends it is in p; n == 0 with a nil
// error means the head is incomplete: call again with more bytes. A head
// larger than limit (DefaultMaxRequestHeader when limit <= 0) yields a 431
// *HTTPError; a malformed one a 400 (505 for an unsupported HTTP version).
// Bytes after the head (a client may send frames right behind its request)
// are not looked at.
//
// Lines may end in CRLF or a bare LF (RFC 9112 2.2). Obsolete line folding,
// white space before a header's colon and control characters in values are
// refused with 400, as is a second Host header.
func ParseRequest(p []byte, limit int, req *Request) (n int, err error) {
	if err := checkRequestLineStart(p, limit); err != nil {
		return 0, err
	}
	n, err = findHead(p, limit, errHeadTooLarge)
	if n == 0 || err != nil {
		return 0, err
	}
	*req = Request{Head: p[:n], ContentLength: -1}
	s := lineScanner{p: p[:n]}
	line, _ := s.next()
	if err := req.parseRequestLine(line); err != nil {
		return 0, err
	}
	var upgrade, connection bool
	for {
		line, _ := s.next()
		if len(line) == 0 {
			break // the blank line: findHead guarantees it is there
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return 0, errHeaderLine
		}
		switch {
		case equalFold(name, "Host"):
			if req.hasHost {
				return 0, errDuplicateHost
			}
			req.hasHost = true
			req.Host = value
		case equalFold(name, "Upgrade"):
			upgrade = upgrade || hasToken(value, "websocket")
		case equalFold(name, "Connection"):
			connection = connection || hasToken(value, "upgrade")
			req.Close = req.Close || hasToken(value, "close")
			req.KeepAlive = req.KeepAlive || hasToken(value, "keep-alive")
		case equalFold(name, "Content-Length"):
			n, ok := parseLength(value)
			if !ok || req.ContentLength >= 0 && req.ContentLength != n {
				return 0, errContentLength
			}
			req.ContentLength = n
		case equalFold(name, "Transfer-Encoding"):
			req.TransferEncoding = value
		case equalFold(name, "Expect"):
			req.Expect100 = hasToken(value, "100-continue")
		case equalFold(name, "Sec-WebSocket-Key"):
			if req.Key != nil {
				req.dupKey = true
			} else {
				req.Key = value
			}
		case equalFold(name, "Sec-WebSocket-Version"):
			if req.Version == nil {
				req.Version = value
			}
		case equalFold(name, "Origin"):
			if req.Origin == nil {
				req.Origin = value
			}
		}
	}
	req.Upgrade = upgrade && connection
	if req.ContentLength >= 0 && req.TransferEncoding != nil {
		return 0, errLengthAndCoding
	}
	return n, nil
}

// parseLength parses a Content-Length value: digits only (RFC 9112 6.2),
// at most 18 of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		if !isDigit(b) {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

// checkRequestLineStart refuses, as soon as the bytes show it, a head whose
// request line cannot be valid: a method that is not a token, or a target
// with a control character, cut short or missing. A peer that sends garbage
// then gets its 400 at once instead of waiting, unanswered, for a blank
// line that random bytes almost never contain. It refuses exactly what
// parseRequestLine would refuse of the complete line, with the same error,
// so the answer never depends on how the bytes were split.
func checkRequestLineStart(p []byte, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxRequestHeader
	}
	if len(p) > limit {
		p = p[:limit]
	}
	i := 0
	for ; i < len(p) && p[i] != ' '; i++ {
		if !tchar[p[i]] {
			return errRequestLine
		}
	}
	if i == len(p) {
		return nil // the method so far is a token
	}
	if i == 0 {
		return errRequestLine // no method
	}
	start := i + 1
	for i = start; i < len(p) && p[i] != ' '; i++ {
		if p[i] < ' ' || p[i] == 0x7f {
			return errRequestLine // includes the line's end: no version
		}
	}
	if i < len(p) && i == start {
		return errRequestLine // no target
	}
	return nil
}

// parseRequestLine splits "METHOD SP target SP HTTP/1.x".
func (r *Request) parseRequestLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return errRequestLine
	}
	r.Method = line[:sp]
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errRequestLine
	}
	r.Target = rest[:sp]
	for _, b := range r.Target {
		if b <= ' ' || b == 0x7f {
			return errRequestLine
		}
	}
	major, minor, ok := parseVersion(rest[sp+1:])
	if !ok || major != 1 {
		return errHTTPVersion
	}
	r.Major, r.Minor = major, minor
	uri := r.Target
	if q := bytes.IndexByte(uri, '?'); q >= 0 {
		uri, r.Query = uri[:q], uri[q+1:]
	}
	switch {
	case len(uri) > 0 && uri[0] == '/': // origin-form, the usual one
		r.Path = uri
	case string(r.Method) == "CONNECT" || string(r.Target) == "*":
		// authority-form and asterisk-form: no path.
	case schemeLen(uri) > 0: // absolute-form (RFC 9112 3.2.2)
		r.Path = absolutePath(uri[schemeLen(uri)+1:])
	default:
		return errRequestLine
	}
	return nil
}

// schemeLen returns the length of the URI scheme that starts u when a ':'
// follows it (RFC 3986 3.1), else 0.
func schemeLen(u []byte) int {
	for i, c := range u {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return 0
		}
	}
	return 0
}

// absolutePath returns the path of an absolute URI after its "scheme:",
// without the query: what follows "//authority", or "/" when that is empty.
func absolutePath(hier []byte) []byte {
	if len(hier) >= 2 && hier[0] == '/' && hier[1] == '/' {
		hier = hier[2:]
		if i := bytes.IndexByte(hier, '/'); i >= 0 {
			return hier[i:]
		}
		return rootPath
	}
	if len(hier) == 0 {
		return rootPath
	}
	return hier
}

var rootPath = []byte("/")

// parseVersion reads "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3).
func parseVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		!isDigit(v[5]) || !isDigit(v[7]) {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// CheckUpgrade validates a request whose Upgrade is true as a WebSocket
// opening handshake (RFC 6455 4.2.1) and returns a *HTTPError to answer with:
// 405 for a method other than GET, 400 for HTTP before 1.1, a missing Host or
// a Sec-WebSocket-Key that does not decode to 16 bytes, 426 with
// "Sec-WebSocket-Version: 13" for another version.
//
// A request whose Upgrade is false, that repeats Sec-WebSocket-Key, or whose
// target is neither a path nor an absolute http(s)/ws(s) URI also gets a
// 400. A missing Sec-WebSocket-Version counts as another version.
func (r *Request) CheckUpgrade() error {
	switch {
	case !r.Upgrade:
		return errNotUpgrade
	case string(r.Method) != "GET":
		return errMethod
	case r.Major < 1 || r.Major == 1 && r.Minor < 1:
		return errOldHTTP
	case !upgradeTarget(r.Target):
		return errTarget
	case !r.hasHost || len(r.Host) == 0:
		return errNoHost
	case r.dupKey:
		return errDuplicateKey
	case !validKey(r.Key):
		return errBadKey
	case string(r.Version) != "13":
		return errWSVersion
	}
	return nil
}

// upgradeTarget reports whether target may name a WebSocket resource
// (RFC 6455 4.1, 3): a path, or an absolute http, https, ws or wss URI.
func upgradeTarget(target []byte) bool {
	if len(target) > 0 && target[0] == '/' {
		return true
	}
	n := schemeLen(target)
	if n == 0 || !bytes.HasPrefix(target[n:], []byte("://")) {
		return false
	}
	scheme := target[:n]
	return equalFold(scheme, "http") || equalFold(scheme, "https") ||
		equalFold(scheme, "ws") || equalFold(scheme, "wss")
}

// validKey reports whether key is base64 for exactly 16 bytes.
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], key)
	return err == nil && n == 16
}

// Header returns the value of the first header named name (case-insensitive),
// with surrounding white space trimmed, or nil.
func (r *Request) Header(name string) []byte {
	var found []byte
	r.EachHeader(func(n, v []byte) bool {
		if equalFold(n, name) {
			found = v
			return false
		}
		return true
	})
	return found
}

// EachHeader calls fn for every header line in order until fn returns false.
func (r *Request) EachHeader(fn func(name, value []byte) bool) {
	eachHeader(r.Head, fn)
}

// eachHeader walks the header lines of a head already validated by a parser.
func eachHeader(head []byte, fn func(name, value []byte) bool) {
	s := lineScanner{p: head}
	s.next() // request or status line
	for {
		line, ok := s.next()
		if !ok || len(line) == 0 {
			return
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return
		}
		if !fn(name, value) {
			return
		}
	}
}

// EachProtocol calls fn for every token of every Sec-WebSocket-Protocol header.
func (r *Request) EachProtocol(fn func(token []byte) bool) {
	r.EachHeader(func(name, value []byte) bool {
		if !equalFold(name, "Sec-WebSocket-Protocol") {
			return true
		}
		for len(value) > 0 {
			var tok []byte
			tok, value = nextElement(value)
			if len(tok) > 0 && !fn(tok) {
				return false
			}
		}
		return true
	})
}

// EachExtension calls fn for every extension offer of every
// Sec-WebSocket-Extensions header: its name and its raw parameters (what
// follows the first ';', trimmed; nil when there are none). Commas inside
// quoted parameter values do not split offers.
func (r *Request) EachExtension(fn func(name, params []byte) bool) {
	eachExtension(r.Head, fn)
}

// EachExtension calls fn for every extension the response's
// Sec-WebSocket-Extensions headers accept, as Request.EachExtension does.
func (r *Response) EachExtension(fn func(name, params []byte) bool) {
	eachExtension(r.Head, fn)
}

func eachExtension(head []byte, fn func(name, params []byte) bool) {
	eachHeader(head, func(name, value []byte) bool {
		if !equalFold(name, "Sec-WebSocket-Extensions") {
			return true
		}
		for len(value) > 0 {
			var ext []byte
			ext, value = nextElement(value)
			if len(ext) == 0 {
				continue
			}
			var params []byte
			if semi := bytes.IndexByte(ext, ';'); semi >= 0 {
				ext, params = trimOWS(ext[:semi]), trimOWS(ext[semi+1:])
			}
			if !fn(ext, params) {
				return false
			}
		}
		return true
	})
}

// wsGUID is the fixed GUID of RFC 6455 1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AppendAccept appends the Sec-WebSocket-Accept value for key (RFC 6455 4.2.2):
// base64(SHA-1(key + GUID)). It allocates nothing (for keys up to 92 bytes;
// a valid key has 24).
func AppendAccept(dst, key []byte) []byte {
	var buf [128]byte
	var in []byte
	if len(key)+len(wsGUID) <= len(buf) {
		in = append(buf[:0], key...)
	} else {
		in = append(make([]byte, 0, len(key)+len(wsGUID)), key...)
	}
	in = append(in, wsGUID...)
	sum := sha1.Sum(in)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendUpgradeResponse appends the 101 Switching Protocols response for a
// request with the given Sec-WebSocket-Key. protocol, when not empty, is the
// chosen subprotocol; extra holds complete header lines, each ending in CRLF
// (may be empty).
func AppendUpgradeResponse(dst, key []byte, protocol string, extra []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	dst = AppendAccept(dst, key)
	dst = append(dst, "\r\n"...)
	if protocol != "" {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, extra...)
	return append(dst, "\r\n"...)
}

// AppendErrorResponse appends a short complete response for e (status line,
// e.Header when set, Content-Type text/plain, Content-Length, Connection: close,
// and e.Reason as the body). A 426 also carries "Upgrade: websocket", which
// RFC 9110 15.5.22 requires, unless e.Header is already an Upgrade line.
func AppendErrorResponse(dst []byte, e *HTTPError) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(e.Status)...)
	dst = append(dst, "\r\n"...)
	if e.Header != "" {
		dst = append(dst, e.Header...)
		dst = append(dst, "\r\n"...)
	}
	if e.Status == 426 && !(len(e.Header) >= 8 && equalFold([]byte(e.Header[:8]), "Upgrade:")) {
		dst = append(dst, "Upgrade: websocket\r\n"...)
	}
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.Reason)), 10)
	dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	return append(dst, e.Reason...)
}

// statusText names the statuses this package and its users answer with.
func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// NewKey returns a fresh Sec-WebSocket-Key: 16 random bytes, base64 encoded.
func NewKey() (key [24]byte) {
	var raw [16]byte
	rand.Read(raw[:]) // never fails on supported platforms (Go 1.24+)
	base64.StdEncoding.Encode(key[:], raw[:])
	return key
}

// ClientRequest describes the opening handshake a client sends.
type ClientRequest struct {
	Host      string   // Host header value (host[:port])
	Path      string   // request-target, "/" when empty
	Origin    string   // optional
	Protocols []string // optional Sec-WebSocket-Protocol offers
	Extra     []byte   // optional complete header lines, each ending in CRLF
}

// AppendClientRequest appends the GET upgrade request for r with the given key.
func AppendClientRequest(dst []byte, r *ClientRequest, key []byte) []byte {
	path := r.Path
	if path == "" {
		path = "/"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, r.Host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if r.Origin != "" {
		dst = append(dst, "Origin: "...)
		dst = append(dst, r.Origin...)
		dst = append(dst, "\r\n"...)
	}
	if len(r.Protocols) > 0 {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		for i, p := range r.Protocols {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = append(dst, p...)
		}
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, r.Extra...)
	return append(dst, "\r\n"...)
}

// Response is a parsed handshake response head; slices alias the input.
type Response struct {
	Status   int
	Protocol []byte // Sec-WebSocket-Protocol chosen by the server, if any
	Head     []byte
}

// ParseResponse parses the server's response head at the start of p and
// checks it against the key the client sent: status 101, Upgrade: websocket,
// Connection: upgrade, and Sec-WebSocket-Accept matching key. It returns the
// head's length, or n == 0 and a nil error while incomplete. A response that
// is complete but refuses or breaks the handshake yields a *HTTPError whose
// Status is the response's status (or 0 when it was not HTTP at all).
func ParseResponse(p []byte, limit int, key []byte, res *Response) (n int, err error) {
	n, err = findHead(p, limit, errResponseTooLong)
	if n == 0 || err != nil {
		return 0, err
	}
	*res = Response{Head: p[:n]}
	s := lineScanner{p: p[:n]}
	line, _ := s.next()
	// status-line = HTTP-version SP 3DIGIT SP [reason-phrase]
	if len(line) < 12 || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) {
		return 0, errNotHTTP
	}
	if major, minor, ok := parseVersion(line[:8]); !ok || major != 1 || minor < 1 {
		return 0, errNotHTTP
	}
	res.Status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if res.Status != 101 {
		return 0, &HTTPError{Status: res.Status, Reason: "server refused the upgrade: " + string(line[9:])}
	}
	var upgrade, connection bool
	var accept []byte
	for {
		line, _ := s.next()
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return 0, &HTTPError{Status: 101, Reason: "malformed header line in the response"}
		}
		switch {
		case equalFold(name, "Upgrade"):
			upgrade = upgrade || hasToken(value, "websocket")
		case equalFold(name, "Connection"):
			connection = connection || hasToken(value, "upgrade")
		case equalFold(name, "Sec-WebSocket-Accept"):
			if accept == nil {
				accept = value
			}
		case equalFold(name, "Sec-WebSocket-Protocol"):
			if res.Protocol == nil {
				res.Protocol = value
			}
		}
	}
	switch {
	case !upgrade:
		return 0, &HTTPError{Status: 101, Reason: "response lacks Upgrade: websocket"}
	case !connection:
		return 0, &HTTPError{Status: 101, Reason: "response lacks Connection: Upgrade"}
	}
	var want [28]byte
	if !bytes.Equal(accept, AppendAccept(want[:0], key)) {
		return 0, &HTTPError{Status: 101, Reason: "Sec-WebSocket-Accept does not match the key"}
	}
	return n, nil
}

// findHead returns the length of the head at the start of p, up to and
// including the empty line that ends it, once that line lies within limit
// bytes; 0 while it may still come; tooLarge when it cannot.
func findHead(p []byte, limit int, tooLarge *HTTPError) (int, error) {
	if limit <= 0 {
		limit = DefaultMaxRequestHeader
	}
	w := p
	if len(w) > limit {
		w = w[:limit]
	}
	for i := 0; ; {
		j := bytes.IndexByte(w[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		if i < len(w) && w[i] == '\n' {
			return i + 1, nil
		}
		if i+1 < len(w) && w[i] == '\r' && w[i+1] == '\n' {
			return i + 2, nil
		}
	}
	if len(p) >= limit {
		return 0, tooLarge
	}
	return 0, nil
}

// lineScanner yields the lines of a head without their CRLF or LF.
type lineScanner struct{ p []byte }

func (s *lineScanner) next() (line []byte, ok bool) {
	j := bytes.IndexByte(s.p, '\n')
	if j < 0 {
		return nil, false
	}
	line, s.p = s.p[:j], s.p[j+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, true
}

// splitHeader splits "name: value" (RFC 9110 5): name is a token directly
// followed by ':', value has its surrounding white space trimmed and holds no
// control character but HTAB. A line starting with white space (obs-fold)
// fails.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	i := 0
	for i < len(line) && tchar[line[i]] {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return nil, nil, false
	}
	value = line[i+1:]
	for _, b := range value {
		if b < ' ' && b != '\t' || b == 0x7f {
			return nil, nil, false
		}
	}
	return line[:i], trimOWS(value), true
}

// hasToken reports whether the comma-separated list holds token
// (case-insensitive).
func hasToken(list []byte, token string) bool {
	for len(list) > 0 {
		var elem []byte
		elem, list = nextElement(list)
		if equalFold(elem, token) {
			return true
		}
	}
	return false
}

// nextElement splits the first element off a comma-separated list, trimmed;
// commas inside a quoted-string do not count.
func nextElement(list []byte) (elem, rest []byte) { return splitQuoted(list, ',') }

// splitQuoted splits the first sep-separated element off list, trimmed; a
// sep inside a quoted-string does not count. rest is nil after the last.
func splitQuoted(list []byte, sep byte) (elem, rest []byte) {
	quoted := false
	for i := 0; i < len(list); i++ {
		switch b := list[i]; {
		case quoted && b == '\\':
			i++
		case b == '"':
			quoted = !quoted
		case b == sep && !quoted:
			return trimOWS(list[:i]), list[i+1:]
		}
	}
	return trimOWS(list), nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

// tchar marks the bytes allowed in a token (RFC 9110 5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// ValidChunked reports whether a Transfer-Encoding value is exactly chunked.
func ValidChunked(te []byte) bool { return equalFold(trimOWS(te), "chunked") }
