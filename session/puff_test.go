package session

import (
	"bytes"
	"compress/flate"
	"errors"
	"testing"
)

// puff is a small DEFLATE decoder (RFC 1951) written for the tests, after
// the model of zlib's puff.c: slow and simple, independent of both
// compress/flate and the library the package uses, and it reports what a
// stream needs of its decoder: the farthest distance any match reaches
// back, which must stay within the LZ77 window a peer asked for
// (server_max_window_bits, client_max_window_bits). It decodes a
// permessage-deflate payload with the tail appended (RFC 7692 7.2.2).
type puff struct {
	in      []byte
	pos     int
	bitBuf  uint32
	bitCnt  uint
	out     []byte
	maxDist int
}

var errPuff = errors.New("puff: invalid deflate stream")

type huffman struct {
	count  [16]uint16
	symbol []uint16
}

func (p *puff) bits(n uint) (uint32, error) {
	v := p.bitBuf
	for p.bitCnt < n {
		if p.pos == len(p.in) {
			return 0, errPuff
		}
		v |= uint32(p.in[p.pos]) << p.bitCnt
		p.pos++
		p.bitCnt += 8
	}
	p.bitBuf = v >> n
	p.bitCnt -= n
	return v & (1<<n - 1), nil
}

func (p *puff) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := p.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+(code-first)]), nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, errPuff
}

func construct(h *huffman, lengths []uint8) {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]uint16, len(lengths))
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
}

var (
	lenBase  = []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = []uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = []uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func (p *puff) codes(lit, dist *huffman) error {
	for {
		sym, err := p.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			p.out = append(p.out, byte(sym))
		case sym == 256:
			return nil
		default:
			sym -= 257
			if sym >= 29 {
				return errPuff
			}
			e, err := p.bits(lenExtra[sym])
			if err != nil {
				return err
			}
			n := lenBase[sym] + int(e)
			ds, err := p.decode(dist)
			if err != nil {
				return err
			}
			if ds >= 30 {
				return errPuff
			}
			e, err = p.bits(dstExtra[ds])
			if err != nil {
				return err
			}
			d := dstBase[ds] + int(e)
			if d > len(p.out) {
				return errPuff
			}
			p.maxDist = max(p.maxDist, d)
			for range n {
				p.out = append(p.out, p.out[len(p.out)-d])
			}
		}
	}
}

var codeOrder = []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func (p *puff) dynamic() error {
	v, err := p.bits(14)
	if err != nil {
		return err
	}
	nlen, ndist, ncode := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlen > 286 || ndist > 30 {
		return errPuff
	}
	var lengths [320]uint8
	for i := range ncode {
		b, err := p.bits(3)
		if err != nil {
			return err
		}
		lengths[codeOrder[i]] = uint8(b)
	}
	var lencode, distcode huffman
	construct(&lencode, lengths[:19])
	for i := range 19 {
		lengths[i] = 0
	}
	for i := 0; i < nlen+ndist; {
		sym, err := p.decode(&lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var l uint8
		var rep uint32
		switch sym {
		case 16:
			if i == 0 {
				return errPuff
			}
			l = lengths[i-1]
			rep, err = p.bits(2)
			rep += 3
		case 17:
			rep, err = p.bits(3)
			rep += 3
		default:
			rep, err = p.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > nlen+ndist {
			return errPuff
		}
		for ; rep > 0; rep-- {
			lengths[i] = l
			i++
		}
	}
	construct(&lencode, lengths[:nlen])
	construct(&distcode, lengths[nlen:nlen+ndist])
	return p.codes(&lencode, &distcode)
}

func (p *puff) fixed() error {
	var l [288 + 30]uint8
	for i := range 144 {
		l[i] = 8
	}
	for i := 144; i < 256; i++ {
		l[i] = 9
	}
	for i := 256; i < 280; i++ {
		l[i] = 7
	}
	for i := 280; i < 288; i++ {
		l[i] = 8
	}
	for i := 288; i < 318; i++ {
		l[i] = 5
	}
	var lit, dist huffman
	construct(&lit, l[:288])
	construct(&dist, l[288:])
	return p.codes(&lit, &dist)
}

func (p *puff) stored() error {
	p.bitBuf, p.bitCnt = 0, 0
	if p.pos+4 > len(p.in) {
		return errPuff
	}
	n := int(p.in[p.pos]) | int(p.in[p.pos+1])<<8
	if n != (int(p.in[p.pos+2])|int(p.in[p.pos+3])<<8)^0xffff {
		return errPuff
	}
	p.pos += 4
	if p.pos+n > len(p.in) {
		return errPuff
	}
	p.out = append(p.out, p.in[p.pos:p.pos+n]...)
	p.pos += n
	return nil
}

// puffMessage inflates a permessage-deflate payload and reports the
// farthest distance back its matches reach.
func puffMessage(payload []byte) (out []byte, maxDist int, err error) {
	p := &puff{in: append(append([]byte(nil), payload...), 0, 0, 0xff, 0xff)}
	for p.pos < len(p.in) {
		last, err := p.bits(1)
		if err != nil {
			return nil, 0, err
		}
		typ, err := p.bits(2)
		if err != nil {
			return nil, 0, err
		}
		switch typ {
		case 0:
			err = p.stored()
		case 1:
			err = p.fixed()
		case 2:
			err = p.dynamic()
		default:
			err = errPuff
		}
		if err != nil {
			return nil, 0, err
		}
		if last == 1 {
			break
		}
	}
	return p.out, p.maxDist, nil
}

// TestPuff checks the test decoder itself against compress/flate's output
// (stored, fixed and dynamic blocks).
func TestPuff(t *testing.T) {
	for _, lvl := range []int{flate.NoCompression, flate.BestSpeed, 6, flate.BestCompression, flate.HuffmanOnly} {
		for _, n := range []int{0, 1, 100, 5000, 70000} {
			p := append([]byte(utf8Text(n/2)), pattern(n-n/2)...)
			out, _, err := puffMessage(stdDeflate(p, lvl))
			if err != nil || !bytes.Equal(out, p) {
				t.Fatalf("level %d, %d bytes: %v, %d bytes out", lvl, n, err, len(out))
			}
		}
	}
	if _, _, err := puffMessage([]byte{0xff, 0xff}); err == nil {
		t.Fatal("garbage decoded")
	}
}
