package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/wsloop/wsloop/internal/servetest"
)

// scrape parses the admin listener's /metrics with Prometheus's parser.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// sum adds the values of a family's series whose labels include want
// (name=value pairs), counters, gauges and histogram counts alike.
func sum(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var total float64
outer:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// The metrics a live server exposes are what the test did to it: opened
// and closed connections by code, messages and bytes both ways, refused
// handshakes by status, per-client refusals by reason, handshake latency
// observations, sockets now open.
func TestMetricsEndToEnd(t *testing.T) {
	for _, engine := range []string{"epoll", "gnet", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			r := startRun(t, "-engine", engine, "-admin-addr", "127.0.0.1:0", "-max-conns-per-ip", "4")
			admin := adminAddr(t, r)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// 3 connections, 5 echoes of 10 bytes each, closed with 1000, 4000, 4001.
			var held []*websocket.Conn
			for i, code := range []websocket.StatusCode{1000, 4000, 4001} {
				c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/ws/echo", nil)
				if err != nil {
					t.Fatal(err)
				}
				for range 5 {
					if err := c.Write(ctx, websocket.MessageText, []byte("0123456789")); err != nil {
						t.Fatal(err)
					}
					if _, _, err := c.Read(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if i < 3 {
					c.Close(code, "")
				}
			}
			// 2 refused handshakes: 404 and 400.
			for _, req := range []string{
				"GET /ws/nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
				"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
			} {
				servetest.RawHTTP(t, r.addr, req)
			}
			// 4 held open, then the 5th from the same address is refused (429).
			for range 4 {
				c, _, err := websocket.Dial(ctx, "ws://"+r.addr+"/ws/echo", nil)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			nc, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			resp, _ := io.ReadAll(nc)
			nc.Close()
			if !strings.HasPrefix(string(resp), "HTTP/1.1 429 ") {
				t.Fatalf("5th connection from one address: %q, want 429", resp)
			}
			var fams map[string]*dto.MetricFamily
			deadline := time.Now().Add(10 * time.Second)
			for {
				fams = scrape(t, admin)
				if sum(fams, "wsloop_connections_closed_total") == 3 && sum(fams, "wsloop_connections_open") == 4 {
					break
				}
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			checks := []struct {
				name   string
				labels []string
				want   float64
			}{
				{"wsloop_connections_opened_total", nil, 7},
				{"wsloop_connections_open", nil, 4},
				{"wsloop_connections_closed_total", []string{"code", "1000"}, 1},
				{"wsloop_connections_closed_total", []string{"code", "4000-4999"}, 2}, // private codes share a series
				{"wsloop_messages_received_total", nil, 15},
				{"wsloop_received_bytes_total", nil, 150},
				{"wsloop_messages_sent_total", nil, 15},
				{"wsloop_sent_bytes_total", nil, 150},
				{"wsloop_handshake_failures_total", []string{"status", "404"}, 1},
				{"wsloop_handshake_failures_total", []string{"status", "400"}, 1},
				{"wsloop_connections_refused_total", []string{"reason", "per_ip"}, 1},
				{"wsloop_connections_accepted_total", nil, 7 + 2 + 1},
				{"wsloop_handshake_duration_seconds", []string{"outcome", "ok"}, 7},
				{"wsloop_handshake_duration_seconds", []string{"outcome", "failed"}, 2},
				{"wsloop_loop_sockets", nil, 4},
			}
			for _, c := range checks {
				if got := sum(fams, c.name, c.labels...); got != c.want {
					t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			if sum(fams, "wsloop_server_info", "engine", engine) != 1 {
				t.Errorf("wsloop_server_info{engine=%q} missing", engine)
			}
			for _, c := range held {
				c.CloseNow()
			}
		})
	}
}
