package codec

import "bytes"

// The byte rules of permessage-deflate negotiation (RFC 7692 5 and 7.1):
// the parameters of one offer (a client's Sec-WebSocket-Extensions element)
// or response (the server's), parsed and written. What an endpoint does
// with them is package session's decision.

// DeflateExtension is the extension's name in Sec-WebSocket-Extensions.
const DeflateExtension = "permessage-deflate"

// DeflateParams are the parameters of one permessage-deflate element.
type DeflateParams struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	// ServerMaxWindowBits is 0 when absent, else the value, 8 to 15.
	ServerMaxWindowBits uint8
	// ClientMaxWindowBits is 0 when absent, WindowBitsUnset when an offer
	// holds the parameter without a value, else the value, 8 to 15.
	ClientMaxWindowBits uint8
}

// WindowBitsUnset is DeflateParams.ClientMaxWindowBits for an offer's
// client_max_window_bits without a value: the client can use a smaller
// window if the server asks for one.
const WindowBitsUnset = 0xff

// DeflateParamError is why an offer or a response cannot be accepted
// (RFC 7692 5: a server declines such an offer, a client fails the
// connection on such a response). The values are preallocated.
type DeflateParamError struct{ Reason string }

func (e *DeflateParamError) Error() string { return "permessage-deflate: " + e.Reason }

var (
	errParamUnknown   = &DeflateParamError{"unknown parameter"}
	errParamDuplicate = &DeflateParamError{"parameter given twice"}
	errParamValue     = &DeflateParamError{"invalid parameter value"}
	errParamSyntax    = &DeflateParamError{"malformed parameter"}
)

// ParseDeflateOffer parses the parameters of an offer: params is what
// EachExtension passes for a permessage-deflate element (nil for none). A
// parameter not defined for an offer, a value where none is allowed or an
// invalid one, a parameter given twice, or a malformed list yields a
// *DeflateParamError.
func ParseDeflateOffer(params []byte) (DeflateParams, error) {
	return parseDeflate(params, false)
}

// ParseDeflateResponse parses the parameters of a server's response, whose
// rules differ from an offer's in one point: client_max_window_bits must
// have a value (RFC 7692 7.1.2.2).
func ParseDeflateResponse(params []byte) (DeflateParams, error) {
	return parseDeflate(params, true)
}

func parseDeflate(params []byte, response bool) (DeflateParams, error) {
	var p DeflateParams
	if params == nil {
		return p, nil
	}
	var (
		seen uint8
		buf  [16]byte
	)
	for rest := params; ; {
		var param []byte
		param, rest = nextParam(rest)
		name, value, hasValue, ok := splitParam(param, &buf)
		if !ok {
			return DeflateParams{}, errParamSyntax
		}
		var bit uint8
		switch string(name) {
		case "server_no_context_takeover":
			bit = 1
			if hasValue {
				return DeflateParams{}, errParamValue
			}
			p.ServerNoContextTakeover = true
		case "client_no_context_takeover":
			bit = 2
			if hasValue {
				return DeflateParams{}, errParamValue
			}
			p.ClientNoContextTakeover = true
		case "server_max_window_bits":
			bit = 4
			bits, ok := windowBits(value)
			if !hasValue || !ok {
				return DeflateParams{}, errParamValue
			}
			p.ServerMaxWindowBits = bits
		case "client_max_window_bits":
			bit = 8
			switch bits, ok := windowBits(value); {
			case !hasValue && !response:
				p.ClientMaxWindowBits = WindowBitsUnset
			case !hasValue || !ok:
				return DeflateParams{}, errParamValue
			default:
				p.ClientMaxWindowBits = bits
			}
		default:
			return DeflateParams{}, errParamUnknown
		}
		if seen&bit != 0 {
			return DeflateParams{}, errParamDuplicate
		}
		seen |= bit
		if rest == nil {
			return p, nil
		}
	}
}

// nextParam splits the first ';'-separated parameter off a list (a ';'
// inside a quoted-string does not split); rest is nil after the last one.
func nextParam(list []byte) (param, rest []byte) { return splitQuoted(list, ';') }

// splitParam splits extension-param = token [ "=" (token | quoted-string) ]
// (RFC 6455 9.1; white space around '=' is tolerated). A quoted value must
// be a token once unescaped; it is unescaped into buf when it holds escapes
// (no valid value here is longer than two characters).
func splitParam(param []byte, buf *[16]byte) (name, value []byte, hasValue, ok bool) {
	eq := bytes.IndexByte(param, '=')
	if eq < 0 {
		return param, nil, false, isToken(param)
	}
	name, value = trimOWS(param[:eq]), trimOWS(param[eq+1:])
	if !isToken(name) {
		return nil, nil, false, false
	}
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		inner := value[1 : len(value)-1]
		if bytes.IndexByte(inner, '\\') >= 0 {
			u := buf[:0]
			for i := 0; i < len(inner); i++ {
				if inner[i] == '\\' {
					if i++; i == len(inner) {
						return nil, nil, false, false
					}
				}
				if len(u) == len(buf) {
					return nil, nil, false, false
				}
				u = append(u, inner[i])
			}
			inner = u
		}
		value = inner
	}
	return name, value, true, isToken(value)
}

// windowBits reads an LZ77 window size: a decimal integer without leading
// zeros from 8 to 15 (RFC 7692 7.1.2).
func windowBits(v []byte) (uint8, bool) {
	switch {
	case len(v) == 1 && '8' <= v[0] && v[0] <= '9':
		return v[0] - '0', true
	case len(v) == 2 && v[0] == '1' && '0' <= v[1] && v[1] <= '5':
		return 10 + v[1] - '0', true
	}
	return 0, false
}

// AppendDeflateParams appends a permessage-deflate element with p's
// parameters, in the order RFC 7692 lists them (a ClientMaxWindowBits of
// WindowBitsUnset is written without a value).
func AppendDeflateParams(dst []byte, p DeflateParams) []byte {
	dst = append(dst, DeflateExtension...)
	if p.ServerNoContextTakeover {
		dst = append(dst, "; server_no_context_takeover"...)
	}
	if p.ClientNoContextTakeover {
		dst = append(dst, "; client_no_context_takeover"...)
	}
	if p.ServerMaxWindowBits != 0 {
		dst = append(dst, "; server_max_window_bits="...)
		dst = appendBits(dst, p.ServerMaxWindowBits)
	}
	switch p.ClientMaxWindowBits {
	case 0:
	case WindowBitsUnset:
		dst = append(dst, "; client_max_window_bits"...)
	default:
		dst = append(dst, "; client_max_window_bits="...)
		dst = appendBits(dst, p.ClientMaxWindowBits)
	}
	return dst
}

func appendBits(dst []byte, b uint8) []byte {
	if b >= 10 {
		return append(dst, '1', '0'+b-10)
	}
	return append(dst, '0'+b)
}
