package natsbus

import (
	"strings"
	"testing"
)

func TestEncodeTopic(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"room.lobby", "room.lobby"},
		{"push", "push"},
		{"a-b.C9", "a-b.C9"},
		{"a b", "a_20b"},
		{"x_y", "x_5Fy"},
		{".x", "_2Ex"},
		{"x.", "x_2E"},
		{"a..b", "a_2E_2Eb"},
		{"*", "_2A"},
		{">", "_3E"},
		{"a.*.b", "a._2A.b"},
		{"é", "_C3_A9"},
	} {
		if got := encodeTopic(c.in); got != c.want {
			t.Errorf("encodeTopic(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzEncodeTopic: every encoding is a valid subject (non-empty tokens of
// letters, digits, - and _XX escapes) and decodes back to its topic, so
// two topics never share a subject.
func FuzzEncodeTopic(f *testing.F) {
	for _, s := range []string{"room.lobby", "a..b", ".", "_2E", "a._5F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if topic == "" {
			return
		}
		enc := encodeTopic(topic)
		for _, tok := range strings.Split(enc, ".") {
			if tok == "" {
				t.Fatalf("%q -> %q has an empty token", topic, enc)
			}
			for i := 0; i < len(tok); i++ {
				c := tok[i]
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
					t.Fatalf("%q -> %q has byte %q", topic, enc, c)
				}
			}
		}
		if dec := decodeTopic(t, enc); dec != topic {
			t.Fatalf("%q -> %q -> %q", topic, enc, dec)
		}
	})
}

func decodeTopic(t *testing.T, s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			t.Fatalf("truncated escape in %q", s)
		}
		var v byte
		for _, c := range s[i+1 : i+3] {
			v <<= 4
			switch {
			case '0' <= c && c <= '9':
				v |= byte(c - '0')
			case 'A' <= c && c <= 'F':
				v |= byte(c - 'A' + 10)
			default:
				t.Fatalf("bad escape in %q", s)
			}
		}
		b = append(b, v)
		i += 2
	}
	return string(b)
}
