package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// ValidCloseCode reports whether code may appear in a close frame on the wire
// (RFC 6455 7.4 and the IANA registry): 1000-1003, 1007-1014 and 3000-4999.
// 1004-1006 and 1015 are reserved for local use and never sent.
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClose validates the payload of a received close frame and returns its
// status code and reason. An empty body means no status (1005, StatusNoStatusRcvd)
// and is valid. The reason aliases p.
func ParseClose(p []byte) (code ws.StatusCode, reason []byte, err error) {
	switch len(p) {
	case 0:
		return ws.StatusNoStatusRcvd, nil, nil
	case 1:
		return 0, nil, ErrCloseBodyTooShort
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return code, nil, ErrCloseCode
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return code, nil, ErrCloseReasonUTF8
	}
	return code, reason, nil
}

// AppendClosePayload appends the body of a close frame: the code in network
// byte order and the reason, cut so that the body fits a control frame (125
// bytes) without splitting a UTF-8 sequence. StatusNoStatusRcvd yields an
// empty body.
func AppendClosePayload(dst []byte, code ws.StatusCode, reason string) []byte {
	if code == ws.StatusNoStatusRcvd {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	if len(reason) > 123 {
		n := 123
		for n > 0 && reason[n]&0xc0 == 0x80 {
			n--
		}
		reason = reason[:n]
	}
	return append(dst, reason...)
}
