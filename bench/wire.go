package bench

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// pushWireReadings is how many readings of the push feed the push-wire
// scenario reads (one a second).
const pushWireReadings = 5

// pushWire reads readings messages of the demo's push feed at addr with a
// raw client that offers permessage-deflate as Chromium does, and returns
// the bytes per reading on the wire (frame headers included), the payload
// bytes per reading (inflated), and how many came compressed. Compressed
// payloads are inflated and every reading must parse, so a figure is never
// taken from garbage.
func pushWire(ctx context.Context, addr string, readings int) (wire, payload float64, compressed int, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	deadline := time.Now().Add(time.Duration(readings)*time.Second + 10*time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET /ws/push HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Origin: http://"+addr+"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"); err != nil {
		return 0, 0, 0, err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		return 0, 0, 0, fmt.Errorf("push feed handshake: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return 0, 0, 0, fmt.Errorf("push feed handshake: %q", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, 0, 0, fmt.Errorf("push feed handshake: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	var wireN, payloadN int
	for i := 0; i < readings; i++ {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return 0, 0, 0, fmt.Errorf("reading %d: %w", i, err)
		}
		if h[0]&0x0f != 1 || h[0]&0x80 == 0 || h[1]&0x80 != 0 {
			return 0, 0, 0, fmt.Errorf("reading %d: frame header % x, want a final unmasked text frame", i, h)
		}
		n, hl := int(h[1]&0x7f), 2
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(br, x[:]); err != nil {
				return 0, 0, 0, err
			}
			n, hl = int(binary.BigEndian.Uint16(x[:])), 4
		case 127:
			return 0, 0, 0, fmt.Errorf("reading %d: a 64-bit length, not a push reading", i)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return 0, 0, 0, fmt.Errorf("reading %d: %w", i, err)
		}
		wireN += hl + n
		if h[0]&0x40 != 0 { // RSV1: compressed (RFC 7692 6)
			compressed++
			r := flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
			if p, err = io.ReadAll(r); err != nil {
				return 0, 0, 0, fmt.Errorf("reading %d: inflating: %w", i, err)
			}
		}
		var r struct{ Seq uint64 }
		if err := json.Unmarshal(p, &r); err != nil || r.Seq == 0 {
			return 0, 0, 0, fmt.Errorf("reading %d: %q is not a push reading", i, p)
		}
		payloadN += len(p)
	}
	return float64(wireN) / float64(readings), float64(payloadN) / float64(readings), compressed, nil
}
