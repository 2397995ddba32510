package codec

import "github.com/gobwas/ws"

// ProtocolError is a violation of RFC 6455 by the peer. Code is the close
// status the connection must be failed with (1002, 1007, 1009, ...).
type ProtocolError struct {
	Code   ws.StatusCode
	Reason string
}

func (e *ProtocolError) Error() string { return "websocket: " + e.Reason }

// The errors the frame and close parsers return. They are preallocated so that
// rejecting a frame allocates nothing.
var (
	ErrReservedBits      = &ProtocolError{ws.StatusProtocolError, "reserved bits set without a negotiated extension"}
	ErrReservedOpcode    = &ProtocolError{ws.StatusProtocolError, "reserved opcode"}
	ErrFragmentedControl = &ProtocolError{ws.StatusProtocolError, "fragmented control frame"}
	ErrControlTooLong    = &ProtocolError{ws.StatusProtocolError, "control frame payload over 125 bytes"}
	ErrUnmasked          = &ProtocolError{ws.StatusProtocolError, "unmasked frame from a client"}
	ErrMasked            = &ProtocolError{ws.StatusProtocolError, "masked frame from a server"}
	ErrLengthOverflow    = &ProtocolError{ws.StatusProtocolError, "64-bit payload length with the most significant bit set"}
	ErrNonMinimalLength  = &ProtocolError{ws.StatusProtocolError, "payload length not in its minimal encoding"}
	ErrCloseBodyTooShort = &ProtocolError{ws.StatusProtocolError, "close frame with a 1-byte body"}
	ErrCloseCode         = &ProtocolError{ws.StatusProtocolError, "invalid close code"}
	ErrCloseReasonUTF8   = &ProtocolError{ws.StatusInvalidFramePayloadData, "close reason is not valid UTF-8"}
	ErrInvalidUTF8       = &ProtocolError{ws.StatusInvalidFramePayloadData, "text is not valid UTF-8"}
)
