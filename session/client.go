package session

import "github.com/wsloop/wsloop/codec"

// ClientRequest describes the opening handshake of a client-role connection.
type ClientRequest = codec.ClientRequest

// HandshakeError is the reason a client-role connection failed its handshake;
// OnClose receives it as err (with StatusAbnormal).
type HandshakeError struct {
	Status int // the server's HTTP status, 0 when the response was not HTTP
	Reason string
}

func (e *HandshakeError) Error() string { return "websocket handshake failed: " + e.Reason }
