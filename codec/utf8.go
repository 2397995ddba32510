package codec

import "unicode/utf8"

// UTF8Validator checks UTF-8 that arrives in pieces: its state survives frame,
// fragment and read boundaries. It rejects at the first byte that can no
// longer begin or continue a valid sequence (overlong forms, surrogates and
// code points above U+10FFFF included), which lets a server fail a text
// message fast, before the rest of it arrives. The zero value is ready to use.
type UTF8Validator struct {
	state uint8
}

// DFA states. Every state but accept names what the next bytes must be.
const (
	utf8Accept = iota // at a sequence boundary
	utf8Reject        // sticky failure
	utf8Tail1         // 1 continuation byte left (80-BF)
	utf8Tail2         // 2 left, any
	utf8Tail3         // 3 left, any
	utf8E0            // after E0: A0-BF then 1 more
	utf8ED            // after ED: 80-9F then 1 more (no surrogates)
	utf8F0            // after F0: 90-BF then 2 more
	utf8F4            // after F4: 80-8F then 2 more
)

// Write feeds p and reports whether everything seen so far can still be the
// prefix of valid UTF-8. Once it has returned false it keeps returning false.
//
// The body of p goes through unicode/utf8.Valid, which is several times faster
// than a byte-at-a-time automaton on mixed text; only the few bytes around
// the edges of p, where a sequence may straddle two writes, go through the
// automaton.
func (v *UTF8Validator) Write(p []byte) bool {
	s := v.state
	i := 0
	// Finish a sequence the previous write left open.
	for ; s != utf8Accept && s != utf8Reject && i < len(p); i++ {
		s = utf8Step(s, p[i])
	}
	if s == utf8Reject {
		v.state = s
		return false
	}
	if i == len(p) {
		v.state = s
		return true
	}
	// p[i:] starts at a sequence boundary. Cut it before the last lead byte
	// when that lies in the last 3 bytes: the sequence it starts may be
	// incomplete, and the automaton carries it into the next write.
	cut := len(p)
	for j := len(p) - 1; j >= i && j >= len(p)-3; j-- {
		if b := p[j]; b < 0x80 {
			break
		} else if b >= 0xc0 {
			cut = j
			break
		}
	}
	if !utf8.Valid(p[i:cut]) {
		v.state = utf8Reject
		return false
	}
	for _, b := range p[cut:] {
		if s = utf8Step(s, b); s == utf8Reject {
			break
		}
	}
	v.state = s
	return s != utf8Reject
}

// utf8Step advances the automaton by one byte from a state other than reject.
func utf8Step(s uint8, b byte) uint8 {
	switch s {
	case utf8Accept:
		switch {
		case b < 0x80:
			return utf8Accept
		case b < 0xc2:
			return utf8Reject
		case b < 0xe0:
			return utf8Tail1
		case b == 0xe0:
			return utf8E0
		case b == 0xed:
			return utf8ED
		case b < 0xf0:
			return utf8Tail2
		case b == 0xf0:
			return utf8F0
		case b < 0xf4:
			return utf8Tail3
		case b == 0xf4:
			return utf8F4
		}
		return utf8Reject
	case utf8Tail1:
		if b&0xc0 != 0x80 {
			return utf8Reject
		}
		return utf8Accept
	case utf8Tail2:
		if b&0xc0 != 0x80 {
			return utf8Reject
		}
		return utf8Tail1
	case utf8Tail3:
		if b&0xc0 != 0x80 {
			return utf8Reject
		}
		return utf8Tail2
	case utf8E0:
		if b < 0xa0 || b > 0xbf {
			return utf8Reject
		}
	case utf8ED:
		if b < 0x80 || b > 0x9f {
			return utf8Reject
		}
	case utf8F0:
		if b < 0x90 || b > 0xbf {
			return utf8Reject
		}
		return utf8Tail2
	case utf8F4:
		if b < 0x80 || b > 0x8f {
			return utf8Reject
		}
		return utf8Tail2
	}
	return utf8Tail1 // after E0 or ED
}

// Complete reports whether the bytes seen so far are valid UTF-8 that ends at
// a sequence boundary: call it when the message ends.
func (v *UTF8Validator) Complete() bool { return v.state == utf8Accept }

// Reset makes v ready for a new message.
func (v *UTF8Validator) Reset() { v.state = utf8Accept }

// ValidUTF8 reports whether p is valid UTF-8 on its own.
func ValidUTF8(p []byte) bool {
	var v UTF8Validator
	return v.Write(p) && v.Complete()
}
