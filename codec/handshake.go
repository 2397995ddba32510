package codec

// CONTRACT FILE: signatures fixed by the lead; bodies are implemented in the codec work.

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

// Request is an HTTP/1.1 request head parsed in place: every byte slice
// aliases the buffer given to ParseRequest and is valid only as long as it.
// Parsing allocates nothing.
type Request struct {
	Method []byte
	Target []byte // request-target as sent
	Path   []byte // Target up to '?'
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

	Head []byte // the whole head, request line to the blank line included
}

// ParseRequest parses the request head at the start of p. It returns the
// head's length n once the blank line that ends it is in p; n == 0 with a nil
// error means the head is incomplete: call again with more bytes. A head
// larger than limit (DefaultMaxRequestHeader when limit <= 0) yields a 431
// *HTTPError; a malformed one a 400 (505 for an unsupported HTTP version).
// Bytes after the head (a client may send frames right behind its request)
// are not looked at.
func ParseRequest(p []byte, limit int, req *Request) (n int, err error) {
	panic("unimplemented")
}

// CheckUpgrade validates a request whose Upgrade is true as a WebSocket
// opening handshake (RFC 6455 4.2.1) and returns a *HTTPError to answer with:
// 405 for a method other than GET, 400 for HTTP before 1.1, a missing Host or
// a Sec-WebSocket-Key that does not decode to 16 bytes, 426 with
// "Sec-WebSocket-Version: 13" for another version.
func (r *Request) CheckUpgrade() error {
	panic("unimplemented")
}

// Header returns the value of the first header named name (case-insensitive),
// with surrounding white space trimmed, or nil.
func (r *Request) Header(name string) []byte {
	panic("unimplemented")
}

// EachHeader calls fn for every header line in order until fn returns false.
func (r *Request) EachHeader(fn func(name, value []byte) bool) {
	panic("unimplemented")
}

// EachProtocol calls fn for every token of every Sec-WebSocket-Protocol header.
func (r *Request) EachProtocol(fn func(token []byte) bool) {
	panic("unimplemented")
}

// EachExtension calls fn for every extension offer of every
// Sec-WebSocket-Extensions header: its name and its raw parameters.
func (r *Request) EachExtension(fn func(name, params []byte) bool) {
	panic("unimplemented")
}

// AppendAccept appends the Sec-WebSocket-Accept value for key (RFC 6455 4.2.2):
// base64(SHA-1(key + GUID)). It allocates nothing.
func AppendAccept(dst, key []byte) []byte {
	panic("unimplemented")
}

// AppendUpgradeResponse appends the 101 Switching Protocols response for a
// request with the given Sec-WebSocket-Key. protocol, when not empty, is the
// chosen subprotocol; extra holds complete header lines, each ending in CRLF
// (may be empty).
func AppendUpgradeResponse(dst, key []byte, protocol string, extra []byte) []byte {
	panic("unimplemented")
}

// AppendErrorResponse appends a short complete response for e (status line,
// e.Header when set, Content-Type text/plain, Content-Length, Connection: close,
// and e.Reason as the body).
func AppendErrorResponse(dst []byte, e *HTTPError) []byte {
	panic("unimplemented")
}

// NewKey returns a fresh Sec-WebSocket-Key: 16 random bytes, base64 encoded.
func NewKey() (key [24]byte) {
	panic("unimplemented")
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
	panic("unimplemented")
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
	panic("unimplemented")
}
