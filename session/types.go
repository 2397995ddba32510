package session

import (
	"github.com/gobwas/ws"
	"github.com/wsloop/wsloop/codec"
)

// Opcode is a frame or message type. Handlers see Text and Binary.
type Opcode = ws.OpCode

// Message types.
const (
	Text   = ws.OpText
	Binary = ws.OpBinary
)

// StatusCode is a close status (RFC 6455 7.4).
type StatusCode = ws.StatusCode

// Close statuses used by this package.
const (
	StatusNormal         = ws.StatusNormalClosure           // 1000
	StatusGoingAway      = ws.StatusGoingAway               // 1001
	StatusProtocolError  = ws.StatusProtocolError           // 1002
	StatusUnsupported    = ws.StatusUnsupportedData         // 1003
	StatusNoStatus       = ws.StatusNoStatusRcvd            // 1005, never on the wire
	StatusAbnormal       = ws.StatusAbnormalClosure         // 1006, never on the wire
	StatusInvalidPayload = ws.StatusInvalidFramePayloadData // 1007
	StatusPolicy         = ws.StatusPolicyViolation         // 1008
	StatusTooBig         = ws.StatusMessageTooBig           // 1009
	StatusInternalError  = ws.StatusInternalServerError     // 1011
	StatusTryAgainLater  = ws.StatusCode(1013)
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
	StateOpen                   // messages flow both ways
	StateClosing                // a close frame was sent or received; waiting for the other half or the socket
	StateClosed                 // the socket is gone; the Conn must not be used again
)

// ProtocolError is the err OnClose receives when this end failed the
// connection because the peer broke RFC 6455; Code is the close code that
// was sent (1002, 1007, 1009).
type ProtocolError = codec.ProtocolError
