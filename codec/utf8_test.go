package codec

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// checkUTF8 compares the validator with unicode/utf8 on p, whole and split at
// every position, and checks that it fails at exactly the first byte that
// cannot extend a valid prefix.
func checkUTF8(t *testing.T, p []byte) {
	t.Helper()
	want := utf8.Valid(p)
	if got := ValidUTF8(p); got != want {
		t.Fatalf("%x: ValidUTF8 = %v, want %v", p, got, want)
	}
	for i := 0; i <= len(p); i++ {
		var v UTF8Validator
		ok := v.Write(p[:i]) && v.Write(p[i:])
		if got := ok && v.Complete(); got != want {
			t.Fatalf("%x split at %d: %v, want %v", p, i, got, want)
		}
	}
	// Fail fast: feeding byte by byte, the first false comes at the first
	// byte after which no continuation can make the bytes valid.
	firstBad := -1
	for i := 0; i < len(p); i++ {
		if !canBeValidPrefix(p[:i+1]) {
			firstBad = i
			break
		}
	}
	var v UTF8Validator
	for i := 0; i < len(p); i++ {
		ok := v.Write(p[i : i+1])
		if ok != (firstBad < 0 || i < firstBad) {
			t.Fatalf("%x: Write of byte %d = %v, first bad byte is %d", p, i, ok, firstBad)
		}
		if !ok {
			if v.Write([]byte("a")) || v.Complete() {
				t.Fatal("failure is not sticky")
			}
			break
		}
	}
}

// canBeValidPrefix reports whether some bytes appended to p make it valid
// UTF-8: it is valid up to its last rune start, and the tail is a proper prefix
// of some valid encoding.
func canBeValidPrefix(p []byte) bool {
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		if r == utf8.RuneError && size <= 1 {
			break
		}
		p = p[size:]
	}
	if len(p) == 0 {
		return true
	}
	if len(p) >= 4 {
		return false
	}
	// Try every completion of the tail (at most 3 bytes, each a continuation).
	need := 0
	switch {
	case p[0] >= 0xc2 && p[0] <= 0xdf:
		need = 2
	case p[0] >= 0xe0 && p[0] <= 0xef:
		need = 3
	case p[0] >= 0xf0 && p[0] <= 0xf4:
		need = 4
	default:
		return false
	}
	if len(p) >= need {
		return false
	}
	// Only the second byte of a sequence has a lead-dependent range; later
	// ones need only be continuation bytes, so 0x80 stands for all of them.
	buf := make([]byte, need)
	copy(buf, p)
	for i := len(p); i < need; i++ {
		buf[i] = 0x80
	}
	if len(p) > 1 {
		return utf8.Valid(buf)
	}
	for b := 0x80; b <= 0xbf; b++ {
		buf[1] = byte(b)
		if utf8.Valid(buf) {
			return true
		}
	}
	return false
}

func TestUTF8Exhaustive1to3(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive")
	}
	var v UTF8Validator
	p := make([]byte, 3)
	// All 1- and 2-byte sequences with every split and fail-fast position.
	for a := 0; a < 256; a++ {
		checkUTF8(t, []byte{byte(a)})
		for b := 0; b < 256; b++ {
			checkUTF8(t, []byte{byte(a), byte(b)})
		}
	}
	// All 3-byte sequences against the oracle, whole and split.
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			for c := 0; c < 256; c++ {
				p[0], p[1], p[2] = byte(a), byte(b), byte(c)
				want := utf8.Valid(p)
				v.Reset()
				if got := v.Write(p) && v.Complete(); got != want {
					t.Fatalf("%x: %v, want %v", p, got, want)
				}
				if a < 0x80 {
					continue // the split case is the 2-byte one, done above
				}
				v.Reset()
				if got := v.Write(p[:1]) && v.Write(p[1:2]) && v.Write(p[2:]) && v.Complete(); got != want {
					t.Fatalf("%x byte by byte: %v, want %v", p, got, want)
				}
			}
		}
	}
}

func TestUTF8FailFast3(t *testing.T) {
	// Fail-fast positions for 3-byte sequences whose first byte starts a
	// multi-byte rune (the interesting ones), second byte at every value.
	for a := 0xc0; a < 0x100; a++ {
		for b := 0; b < 256; b++ {
			for _, c := range []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xf5, 0xff} {
				checkUTF8(t, []byte{byte(a), byte(b), c})
			}
		}
	}
}

func TestUTF84Byte(t *testing.T) {
	// Every lead byte F0-F4 and boundaries, plus invalid leads, with a sweep of
	// the second byte and a sample of the rest.
	r := rand.New(rand.NewPCG(5, 6))
	tails := []byte{0x41, 0x80, 0x8f, 0x90, 0xbf, 0xc0}
	for a := 0xc0; a < 0x100; a++ {
		for b := 0; b < 256; b++ {
			for _, c := range tails {
				for _, d := range tails {
					checkUTF8(t, []byte{byte(a), byte(b), c, d})
				}
			}
		}
	}
	// Every valid 4-byte code point, and random neighbours of it.
	var v UTF8Validator
	buf := make([]byte, 4)
	for cp := rune(0x10000); cp <= utf8.MaxRune; cp += 1 + rune(r.IntN(7)) {
		utf8.EncodeRune(buf, cp)
		v.Reset()
		if !v.Write(buf[:2]) || !v.Write(buf[2:]) || !v.Complete() {
			t.Fatalf("U+%X rejected", cp)
		}
		bad := append([]byte(nil), buf...)
		bad[r.IntN(4)] ^= byte(1 << r.IntN(8))
		v.Reset()
		if got := v.Write(bad) && v.Complete(); got != utf8.Valid(bad) {
			t.Fatalf("%x: %v", bad, got)
		}
	}
}

func TestUTF8KnownCases(t *testing.T) {
	cases := []string{
		"", "hello", "κόσμε", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
		"\xed\x9f\xbf", "\xed\xa0\x80", "\xee\x80\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80",
		"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x88\x80\x80\xaf", "\xc1\xbf", "\xe0\x9f\xbf",
		"\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80", "\xfe", "\xff", "\x80", "\xbf", "\xe0\xa0", "\xf0\x9d\x84\x9e",
		"ascii long enough for the word-at-a-time path \xe2\x9c\x93 and then more ascii after it ok",
		"ascii long enough for the word-at-a-time path \xe2\x9c and then broken",
	}
	for _, c := range cases {
		checkUTF8(t, []byte(c))
	}
}

func TestUTF8RandomText(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 3000; trial++ {
		var p []byte
		for len(p) < 40 {
			switch r.IntN(5) {
			case 0:
				p = utf8.AppendRune(p, rune(r.IntN(0x80)))
			case 1:
				p = utf8.AppendRune(p, rune(r.IntN(0x800)))
			case 2:
				p = utf8.AppendRune(p, rune(r.IntN(0x10000)))
			case 3:
				p = utf8.AppendRune(p, rune(0x10000+r.IntN(0x100000)))
			case 4:
				p = append(p, "plain ascii text"...)
			}
		}
		if r.IntN(2) == 0 {
			p[r.IntN(len(p))] = byte(r.Uint32())
		}
		checkUTF8(t, p)
	}
}

func TestUTF8AcrossMessages(t *testing.T) {
	var v UTF8Validator
	if !v.Write([]byte("ok \xe2\x9c")) || v.Complete() {
		t.Fatal("incomplete rune reported complete")
	}
	v.Reset()
	// After Reset the tail of the old rune is a lone continuation byte.
	if v.Write([]byte("\x93")) {
		t.Fatal("continuation accepted after Reset")
	}
	v.Reset()
	if !v.Write(nil) || !v.Complete() {
		t.Fatal("empty input")
	}
}
