package demo

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsloop/wsloop/session"
)

// TestPushWireBytes measures the bytes on the wire of the push feed, as a
// browser receives it, with and without permessage-deflate: a raw client
// offers compression like Chromium, reads readings off the socket and
// counts every byte of their frames (headers included); compressed frames
// are inflated and must hold valid readings. It also computes what a
// context-taking compressor (not built: it would cost a compressor window
// per connection) would send for the same readings, for comparison.
//
//	go test ./demo -run TestPushWireBytes -v
func TestPushWireBytes(t *testing.T) {
	const readings = 8
	for _, tc := range []struct {
		name string
		comp *session.Compression
	}{
		{"uncompressed", nil},
		{"deflate, default threshold", &session.Compression{}},
		{"deflate, every message", &session.Compression{Threshold: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, addr := serveConfig(t, "epoll", Options{PushInterval: 20 * time.Millisecond}, nil, session.Config{Compression: tc.comp})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET /ws/push HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
				"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
			br := bufio.NewReader(c)
			head := ""
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				head += line
				if line == "\r\n" {
					break
				}
			}
			if got := strings.Contains(head, "permessage-deflate"); got != (tc.comp != nil) {
				t.Fatalf("negotiated %v: %q", got, head)
			}
			wire, payload, compressed := 0, 0, 0
			var plain [][]byte
			for i := 0; i < readings; i++ {
				var h [2]byte
				if _, err := io.ReadFull(br, h[:]); err != nil {
					t.Fatal(err)
				}
				n := int(h[1] & 0x7f)
				hl := 2
				if n == 126 {
					var x [2]byte
					io.ReadFull(br, x[:])
					n, hl = int(binary.BigEndian.Uint16(x[:])), 4
				}
				p := make([]byte, n)
				if _, err := io.ReadFull(br, p); err != nil {
					t.Fatal(err)
				}
				wire += hl + n
				if h[0]&0x40 != 0 {
					compressed++
					r := flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
					if p, err = io.ReadAll(r); err != nil {
						t.Fatal(err)
					}
				}
				var r struct{ Seq uint64 }
				if err := json.Unmarshal(p, &r); err != nil || r.Seq == 0 {
					t.Fatalf("reading %q: %v", p, err)
				}
				payload += len(p)
				plain = append(plain, p)
			}
			// What a compressor that keeps its context between messages
			// would send (sync flush per message, tail removed, 2-byte header).
			var zb bytes.Buffer
			zw, _ := flate.NewWriter(&zb, flate.DefaultCompression)
			takeover := 0
			for _, p := range plain {
				zb.Reset()
				zw.Write(p)
				zw.Flush()
				takeover += 2 + zb.Len() - 4
			}
			t.Logf("%s: %d readings, %.1f payload bytes and %.1f bytes on the wire each (%d sent compressed); with context takeover it would be %.1f",
				tc.name, readings, float64(payload)/readings, float64(wire)/readings, compressed, float64(takeover)/readings)
			if tc.comp == nil && compressed != 0 {
				t.Fatal("compressed without negotiation")
			}
		})
	}
}
