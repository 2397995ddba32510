package loadtest

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"
)

// Echo payloads carry their own proof. The head holds the sequence number,
// the connection id and the send time; the rest is a pattern generated from
// the head, so a message is checked completely against what its sender must
// have sent, with no per-message state kept anywhere:
//
//	binary: seq, id, time as three little-endian uint64 (24 bytes), pattern bytes
//	text:   the same three numbers as 48 lowercase hex digits, pattern in '!'..'~'
const (
	echoHeadBinary = 24
	echoHeadText   = 48
)

func echoHead(text bool) int {
	if text {
		return echoHeadText
	}
	return echoHeadBinary
}

// echoMin is the smallest echo payload: the head and 8 pattern bytes, which
// make a damaged send time detectable.
func echoMin(text bool) int { return echoHead(text) + 8 }

// patternSeed mixes the head into the pattern generator's state, so that a
// corrupted head shows up as a pattern mismatch even when it parses.
func patternSeed(id, seq uint64, ts int64) uint64 {
	s := id*0x9e3779b97f4a7c15 ^ seq*0xbf58476d1ce4e5b9 ^ uint64(ts)*0x94d049bb133111eb
	if s == 0 {
		s = 1
	}
	return s
}

// next is xorshift64*: cheap and good enough to make every byte count.
func next(s *uint64) uint64 {
	x := *s
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*s = x
	return x * 0x2545f4914f6cdd1d
}

const hexDigits = "0123456789abcdef"

func appendHex64(dst []byte, v uint64) []byte {
	for i := 60; i >= 0; i -= 4 {
		dst = append(dst, hexDigits[(v>>uint(i))&0xf])
	}
	return dst
}

func parseHex64(p []byte) (uint64, bool) {
	var v uint64
	for _, c := range p {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// appendEcho appends the size-byte payload for message seq of connection id
// sent at ts (nanoseconds on the process clock). size is at least echoMin(text).
func appendEcho(dst []byte, text bool, size int, id, seq uint64, ts int64) []byte {
	if text {
		dst = appendHex64(dst, seq)
		dst = appendHex64(dst, id)
		dst = appendHex64(dst, uint64(ts))
	} else {
		dst = binary.LittleEndian.AppendUint64(dst, seq)
		dst = binary.LittleEndian.AppendUint64(dst, id)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(ts))
	}
	s := patternSeed(id, seq, ts)
	for n := size - echoHead(text); n > 0; {
		r := next(&s)
		for k := 0; k < 8 && n > 0; k++ {
			b := byte(r >> (8 * k))
			if text {
				b = '!' + b%94
			}
			dst = append(dst, b)
			n--
		}
	}
	return dst
}

// Reasons checkEcho gives; constant strings, so checking allocates nothing.
const (
	badLength  = "wrong length"
	badHead    = "unreadable head"
	badSeq     = "out of sequence"
	badConn    = "wrong connection id"
	badPattern = "pattern mismatch"
)

// checkEcho verifies p as the echo of message seq of connection id and
// returns its send time, or a reason when any byte differs.
func checkEcho(p []byte, text bool, size int, id, seq uint64) (ts int64, bad string) {
	if len(p) != size {
		return 0, badLength
	}
	var gotSeq, gotID, gotTS uint64
	if text {
		var ok1, ok2, ok3 bool
		gotSeq, ok1 = parseHex64(p[0:16])
		gotID, ok2 = parseHex64(p[16:32])
		gotTS, ok3 = parseHex64(p[32:48])
		if !ok1 || !ok2 || !ok3 {
			return 0, badHead
		}
	} else {
		gotSeq = binary.LittleEndian.Uint64(p[0:])
		gotID = binary.LittleEndian.Uint64(p[8:])
		gotTS = binary.LittleEndian.Uint64(p[16:])
	}
	if gotID != id {
		return 0, badConn
	}
	if gotSeq != seq {
		return 0, badSeq
	}
	s := patternSeed(id, seq, int64(gotTS))
	rest := p[echoHead(text):]
	for i := 0; i < len(rest); {
		r := next(&s)
		for k := 0; k < 8 && i < len(rest); k++ {
			b := byte(r >> (8 * k))
			if text {
				b = '!' + b%94
			}
			if rest[i] != b {
				return 0, badPattern
			}
			i++
		}
	}
	return int64(gotTS), ""
}

// Broadcast messages published by the generator carry a token made only of
// characters that survive being wrapped by a chat server (quoted in JSON,
// prefixed with a user name...):
//
//	wsload:<run id>:<sequence number>:<send time, Unix nanoseconds>[:p<publisher>]
//	wsload:<run id>:w<publisher>    (a warm-up probe)
//
// Subscribers look for "wsload:<run id>:" anywhere in what they receive.

func tokenPrefix(runID string) []byte { return []byte("wsload:" + runID + ":") }

func appendToken(dst []byte, runID string, seq uint64, unixNano int64) []byte {
	dst = append(dst, "wsload:"...)
	dst = append(dst, runID...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, unixNano, 10)
}

// appendPubToken is appendToken for publisher pub of several.
func appendPubToken(dst []byte, runID string, pub int, seq uint64, unixNano int64) []byte {
	dst = append(appendToken(dst, runID, seq, unixNano), ":p"...)
	return strconv.AppendInt(dst, int64(pub), 10)
}

// appendProbe appends publisher pub's warm-up probe.
func appendProbe(dst []byte, runID string, pub int) []byte {
	dst = append(append(append(dst, "wsload:"...), runID...), ":w"...)
	return strconv.AppendInt(dst, int64(pub), 10)
}

// parseToken finds the token of run prefix in p. found is false when p
// carries none (another client's chat message); ok is false when it carries
// a damaged one.
func parseToken(p, prefix []byte) (seq uint64, unixNano int64, found, ok bool) {
	t := parseAnyToken(p, prefix)
	return t.seq, t.unixNano, t.found, t.ok && !t.probe
}

// token is a parsed token.
type token struct {
	pub       int // publisher (0 without the :p suffix)
	seq       uint64
	unixNano  int64
	probe     bool // a warm-up probe: only pub is set
	found, ok bool
}

// parseAnyToken parses a message token or a warm-up probe.
func parseAnyToken(p, prefix []byte) (t token) {
	i := bytes.Index(p, prefix)
	if i < 0 {
		return t
	}
	t.found = true
	p = p[i+len(prefix):]
	if len(p) > 0 && p[0] == 'w' {
		pub, _, ok := parseUint(p[1:])
		t.probe, t.pub, t.ok = true, int(pub), ok && pub < 1<<20
		return t
	}
	seq, p, ok1 := parseUint(p)
	if !ok1 || len(p) == 0 || p[0] != ':' {
		return t
	}
	ns, p, ok2 := parseUint(p[1:])
	if !ok2 {
		return t
	}
	t.seq, t.unixNano, t.ok = seq, int64(ns), true
	if len(p) >= 2 && p[0] == ':' && p[1] == 'p' {
		pub, _, ok := parseUint(p[2:])
		if !ok || pub >= 1<<20 {
			t.ok = false
			return t
		}
		t.pub = int(pub)
	}
	return t
}

func parseUint(p []byte) (v uint64, rest []byte, ok bool) {
	i := 0
	for ; i < len(p) && i < 19 && p[i] >= '0' && p[i] <= '9'; i++ {
		v = v*10 + uint64(p[i]-'0')
	}
	return v, p[i:], i > 0
}

// Server-originated messages (a /ws/push feed) are timed by a JSON field,
// "t" by default: a number of seconds, milliseconds, microseconds or
// nanoseconds since the Unix epoch, or an RFC 3339 string such as
// "2026-11-21T09:30:00.000Z". An optional integer field, "seq" by default,
// that grows by one per message to every subscriber, reveals lost messages.

// StampUnit is the unit of a numeric time field of server-originated messages.
type StampUnit string

const (
	StampAuto StampUnit = "auto" // by magnitude: s, ms, µs or ns since the Unix epoch
	StampS    StampUnit = "s"
	StampMS   StampUnit = "ms"
	StampUS   StampUnit = "us"
	StampNS   StampUnit = "ns"
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// jsonValue returns the value that follows "key": in p: a number's text, or
// a string's contents (str true). It is a scan, not a parser: enough for
// the flat objects a feed sends, allocation-free.
func jsonValue(p, quotedKey []byte) (v []byte, str, ok bool) {
	i := bytes.Index(p, quotedKey)
	if i < 0 {
		return nil, false, false
	}
	p = p[i+len(quotedKey):]
	j := 0
	for j < len(p) && isSpace(p[j]) {
		j++
	}
	if j == len(p) || p[j] != ':' {
		return nil, false, false
	}
	j++
	for j < len(p) && isSpace(p[j]) {
		j++
	}
	if j < len(p) && p[j] == '"' {
		k := bytes.IndexByte(p[j+1:], '"')
		if k < 0 {
			return nil, false, false
		}
		return p[j+1 : j+1+k], true, true
	}
	k := j
	for k < len(p) && (p[k] >= '0' && p[k] <= '9' || p[k] == '.' || p[k] == '-' || p[k] == '+' || p[k] == 'e' || p[k] == 'E') {
		k++
	}
	if k == j {
		return nil, false, false
	}
	return p[j:k], false, true
}

// parseStamp reads the send time (Unix nanoseconds) from a server message.
func parseStamp(p, quotedKey []byte, unit StampUnit) (int64, bool) {
	v, str, ok := jsonValue(p, quotedKey)
	if !ok {
		return 0, false
	}
	if str {
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			return 0, false
		}
		return t.UnixNano(), true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f <= 0 {
		return 0, false
	}
	switch unit {
	case StampS:
		f *= 1e9
	case StampMS:
		f *= 1e6
	case StampUS:
		f *= 1e3
	case StampNS:
	default: // auto: 2001..2286 in any of the four units
		switch {
		case f < 1e11:
			f *= 1e9
		case f < 1e14:
			f *= 1e6
		case f < 1e17:
			f *= 1e3
		}
	}
	return int64(f), true
}

// parseSeq reads the integer sequence field from a server message.
func parseSeq(p, quotedKey []byte) (uint64, bool) {
	num, str, ok := jsonValue(p, quotedKey)
	if !ok || str {
		return 0, false
	}
	v, rest, ok := parseUint(num)
	return v, ok && len(rest) == 0
}
