package codec

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
func (v *UTF8Validator) Write(p []byte) bool {
	s := v.state
	i := 0
	for i < len(p) {
		if s == utf8Accept {
			// ASCII fast path, 8 bytes at a time.
			for i+8 <= len(p) {
				w := uint64(p[i]) | uint64(p[i+1])<<8 | uint64(p[i+2])<<16 | uint64(p[i+3])<<24 |
					uint64(p[i+4])<<32 | uint64(p[i+5])<<40 | uint64(p[i+6])<<48 | uint64(p[i+7])<<56
				if w&0x8080808080808080 != 0 {
					break
				}
				i += 8
			}
			if i == len(p) {
				break
			}
		}
		b := p[i]
		i++
		switch s {
		case utf8Accept:
			switch {
			case b < 0x80:
			case b < 0xc2:
				s = utf8Reject
			case b < 0xe0:
				s = utf8Tail1
			case b == 0xe0:
				s = utf8E0
			case b == 0xed:
				s = utf8ED
			case b < 0xf0:
				s = utf8Tail2
			case b == 0xf0:
				s = utf8F0
			case b < 0xf4:
				s = utf8Tail3
			case b == 0xf4:
				s = utf8F4
			default:
				s = utf8Reject
			}
		case utf8Tail1:
			if b&0xc0 != 0x80 {
				s = utf8Reject
			} else {
				s = utf8Accept
			}
		case utf8Tail2:
			if b&0xc0 != 0x80 {
				s = utf8Reject
			} else {
				s = utf8Tail1
			}
		case utf8Tail3:
			if b&0xc0 != 0x80 {
				s = utf8Reject
			} else {
				s = utf8Tail2
			}
		case utf8E0:
			if b < 0xa0 || b > 0xbf {
				s = utf8Reject
			} else {
				s = utf8Tail1
			}
		case utf8ED:
			if b < 0x80 || b > 0x9f {
				s = utf8Reject
			} else {
				s = utf8Tail1
			}
		case utf8F0:
			if b < 0x90 || b > 0xbf {
				s = utf8Reject
			} else {
				s = utf8Tail2
			}
		case utf8F4:
			if b < 0x80 || b > 0x8f {
				s = utf8Reject
			} else {
				s = utf8Tail2
			}
		}
		if s == utf8Reject {
			v.state = s
			return false
		}
	}
	v.state = s
	return true
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
