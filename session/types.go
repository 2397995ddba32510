package session

import (
	"errors"
	"strconv"

	"github.com/wsloop/wsloop/codec"
)

// Opcode is a message type. Handlers see Text and Binary.
type Opcode uint8

// Message types (RFC 6455 5.2).
const (
	Text   Opcode = 1
	Binary Opcode = 2
)

func (op Opcode) String() string {
	switch op {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "opcode " + strconv.Itoa(int(op))
}

// StatusCode is a close status (RFC 6455 7.4).
type StatusCode uint16

// Close statuses.
const (
	StatusNormal         StatusCode = 1000
	StatusGoingAway      StatusCode = 1001
	StatusProtocolError  StatusCode = 1002
	StatusUnsupported    StatusCode = 1003
	StatusNoStatus       StatusCode = 1005 // never on the wire: the close frame had no body
	StatusAbnormal       StatusCode = 1006 // never on the wire: the socket went away without a close frame
	StatusInvalidPayload StatusCode = 1007
	StatusPolicy         StatusCode = 1008
	StatusTooBig         StatusCode = 1009
	StatusInternalError  StatusCode = 1011
	StatusTryAgainLater  StatusCode = 1013
)

// Role is the side a Conn plays.
type Role = codec.Role

// Roles.
const (
	Server = codec.Server
	Client = codec.Client
)

// State is where a Conn is in its life.
type State uint8

const (
	StateHandshake State = iota // waiting for (server) or on (client) the opening handshake
	StateHTTP                   // server: a plain HTTP request is being answered; input is ignored
	StateStream                 // server: the plain request became an event stream (text/event-stream): events flow out only
	StateOpen                   // messages flow both ways
	StateClosing                // a close frame was sent or received; waiting for the other half or the socket
	StateClosed                 // the socket is gone; the Conn must not be used again
)

func (s State) String() string {
	switch s {
	case StateHandshake:
		return "handshake"
	case StateHTTP:
		return "http"
	case StateStream:
		return "stream"
	case StateOpen:
		return "open"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	}
	return "state " + strconv.Itoa(int(s))
}

// ProtocolError is the err OnClose receives when this end failed the
// connection because the peer broke RFC 6455; Code is the close code that
// was sent (1002, 1007, 1009).
type ProtocolError struct {
	Code   StatusCode
	Reason string
}

func (e *ProtocolError) Error() string { return "websocket: " + e.Reason }

// protocolErr converts the codec's (preallocated) violation to the public
// type; it runs once per failed connection.
func protocolErr(err error) *ProtocolError {
	var pe *codec.ProtocolError
	if errors.As(err, &pe) {
		return &ProtocolError{Code: StatusCode(pe.Code), Reason: pe.Reason}
	}
	return &ProtocolError{Code: StatusProtocolError, Reason: err.Error()}
}
