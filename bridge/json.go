package bridge

import (
	"encoding/base64"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The JSON the backend protocol needs, written by hand so that the event
// and command paths allocate nothing per message: appending escaped strings
// and base64, and scanning one flat object per line.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// \ufffd (request paths and headers may hold any bytes; JSON must not).
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJSONStr is appendJSONString for a string, without copying it:
// appendJSONString only reads its argument.
func appendJSONStr(dst []byte, s string) []byte {
	return appendJSONString(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// appendBase64 appends p in standard base64 with padding, quoted.
func appendBase64(dst []byte, p []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, p)
	return append(dst, '"')
}

// appendUint appends n in decimal.
func appendUint(dst []byte, n uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// parseUint parses a decimal number without sign; ok is false for anything
// else (empty, other bytes, overflow).
func parseUint(b []byte) (n uint64, ok bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

var errJSON = errors.New("not a flat JSON object")

// jsonScanner reads one JSON object whose values are strings, numbers,
// booleans or null (nested objects and arrays are skipped). Strings are
// unescaped into a scratch buffer reused from line to line.
type jsonScanner struct {
	b       []byte
	i       int
	scratch []byte
}

func (s *jsonScanner) reset(line []byte) {
	s.b, s.i, s.scratch = line, 0, s.scratch[:0]
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// expect consumes c after optional space.
func (s *jsonScanner) expect(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek returns the next byte after space, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string. The result is a view of the line when the string has
// no escapes and of the scratch buffer otherwise: valid until the next reset.
func (s *jsonScanner) str() ([]byte, error) {
	if !s.expect('"') {
		return nil, errJSON
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, nil
		case c == '\\':
			return s.strEscaped(start)
		case c < 0x20:
			return nil, errJSON
		}
		s.i++
	}
	return nil, errJSON
}

// strEscaped finishes a string that has escapes, from its start, into scratch.
func (s *jsonScanner) strEscaped(start int) ([]byte, error) {
	from := len(s.scratch)
	s.scratch = append(s.scratch, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.scratch[from:], nil
		case c < 0x20:
			return nil, errJSON
		case c != '\\':
			s.scratch = append(s.scratch, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, errJSON
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			s.scratch = append(s.scratch, e)
		case 'b':
			s.scratch = append(s.scratch, '\b')
		case 'f':
			s.scratch = append(s.scratch, '\f')
		case 'n':
			s.scratch = append(s.scratch, '\n')
		case 'r':
			s.scratch = append(s.scratch, '\r')
		case 't':
			s.scratch = append(s.scratch, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, errJSON
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, ok = s.hex4(); !ok {
						return nil, errJSON
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			s.scratch = utf8.AppendRune(s.scratch, r)
		default:
			return nil, errJSON
		}
	}
	return nil, errJSON
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// digits consumes a run of decimal digits and returns how many there were.
func (s *jsonScanner) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// number consumes a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() error {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	start := s.i
	if n := s.digits(); n == 0 || (n > 1 && s.b[start] == '0') {
		return errJSON
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return errJSON
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return errJSON
		}
	}
	return nil
}

// integer reads a JSON number that is an integer (no fraction or exponent).
func (s *jsonScanner) integer() (int64, error) {
	s.space()
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	s.digits()
	digits := s.b[start:s.i]
	n, ok := parseUint(digits)
	if !ok || n > 1<<62 || (len(digits) > 1 && digits[0] == '0') {
		return 0, errJSON
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, errJSON
	}
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
}

// skip skips any value, nested ones included.
func (s *jsonScanner) skip() error {
	switch c := s.peek(); c {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		s.i++
		if s.expect(close) {
			return nil
		}
		for {
			if c == '{' {
				if _, err := s.str(); err != nil || !s.expect(':') {
					return errJSON
				}
			}
			if err := s.skip(); err != nil {
				return err
			}
			if s.expect(close) {
				return nil
			}
			if !s.expect(',') {
				return errJSON
			}
		}
	case 0:
		return errJSON
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return errJSON
	default:
		return s.number()
	}
}

// validUTF8 returns b when it is valid UTF-8, and otherwise a copy with
// each invalid byte replaced by U+FFFD (as encoding/json does).
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
