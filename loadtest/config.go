package loadtest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/wsloop/wsloop/session"
)

// Scenarios.
const (
	Connect   = "connect"   // ramp to Conns at Rate per second; connect rate, handshake latency, failures
	Idle      = "idle"      // hold Conns for Duration; connections the server drops
	Echo      = "echo"      // Conns connections exchange verified messages, closed or open loop
	Broadcast = "broadcast" // Conns subscribers; delivery latency, every message accounted for
	Churn     = "churn"     // open and close connections at Rate per second for Duration
	SSE       = "sse"       // Conns text/event-stream subscribers; verified like broadcast
	Soak      = "soak"      // churn, echo, broadcast and slow readers for Duration; the server must return to its baseline
)

// Scenarios lists the scenario names in the order a help text shows them.
var Scenarios = []string{Connect, Idle, Echo, Broadcast, Churn, SSE, Soak}

// Publishers of the broadcast scenario.
const (
	PublishSelf   = "self"   // one extra connection of the generator publishes timestamped messages
	PublishServer = "server" // the server originates messages with a time field (a push feed)
)

// Config describes one load run. The zero value of a field means its
// default; Run fills them in (see defaults).
type Config struct {
	Scenario string `json:"scenario"`
	// URL is the server's WebSocket endpoint, ws://host:port/path?query, or
	// wss:// for TLS (the connections' TLS handshakes then run on the
	// Dialer's handshake pool, and their cost is part of the run); sse:
	// http://host:port/path. Several, comma-separated: connection i goes to
	// URL i mod n, so one run spreads over the processes or machines of
	// one service.
	URL string `json:"url"`
	// CAFile is a PEM file of the certificates that verify a wss server
	// (default: the system's roots). Insecure skips the verification
	// instead: for tests against a throwaway certificate only.
	CAFile   string `json:"ca_file,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	// Origin, when set, is sent as the Origin header.
	Origin string `json:"origin,omitempty"`

	// Conns is the number of connections (broadcast: subscribers).
	// Default 1000; echo 100. Churn ignores it: InFlight bounds it.
	Conns int `json:"conns"`
	// Rate is the scenario's rate per second: connect and churn, connections;
	// echo, messages over all connections (0: closed loop, each connection
	// sends its next message when the last has come back); broadcast,
	// messages the generator publishes (default 10).
	Rate float64 `json:"rate"`
	// Ramp is the connect rate per second while the other scenarios set up
	// their connections; 0: as fast as InFlight allows.
	Ramp float64 `json:"ramp"`
	// InFlight caps connects in progress per process; default 256.
	InFlight int `json:"inflight"`
	// Duration bounds the scenario's traffic; default 10s.
	Duration time.Duration `json:"duration"`
	// Messages bounds the messages: echo, in total (0: until Duration);
	// broadcast with PublishSelf, the messages published (default 50).
	Messages int `json:"messages"`
	// Size is the echo message size in bytes; default 64, at least 32
	// (binary) or 56 (text): the sequence number, send time and check bytes.
	Size int `json:"size"`
	// Binary sends binary echo messages instead of text.
	Binary bool `json:"binary"`
	// Drain is how long, after the traffic, to wait for echoes and
	// broadcasts still on their way; default 5s. What has not come by then
	// is lost.
	Drain time.Duration `json:"drain"`
	// Ping makes every connection ping the server after this long without
	// input; 0: never (the connections still answer the server's pings).
	Ping time.Duration `json:"ping"`
	// ConnectTimeout bounds each connect plus handshake; default 10s.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// Compress offers permessage-deflate (no context takeover) on every
	// connection; Counts.Compressed says how many the server accepted.
	Compress bool `json:"compress,omitempty"`

	// Publish is the broadcast scenario's source: PublishSelf (default) or PublishServer.
	Publish string `json:"publish,omitempty"`
	// PublishURL is where the generator's publishers connect (ws://, one
	// or several, comma-separated: publisher k uses URL k mod n); default
	// URL (sse: URL with ws://).
	PublishURL string `json:"publish_url,omitempty"`
	// Publishers is the number of publishing connections with PublishSelf,
	// each publishing Messages at Rate; default one per PublishURL. With
	// several publishers or URLs, every subscriber must receive every
	// message of every publisher exactly once, each publisher's in order;
	// the publishers first send warm-up probes until every subscriber has
	// heard each of them (the subscriptions between processes are up).
	Publishers int `json:"publishers,omitempty"`
	// WarmUp bounds that warm-up; default 30s, or five rounds of probes
	// when a round takes longer than 6s (probes are paced to ask at most
	// 50,000 deliveries a second of the servers).
	WarmUp time.Duration `json:"warm_up,omitempty"`
	// PublishTemplate is the published text with %s standing for the token
	// (wsload:<run>:<seq>:<unix ns>); default "%s". For a chat server that
	// wants JSON: {"text":"%s"}.
	PublishTemplate string `json:"publish_template,omitempty"`
	// StampField and SeqField name the JSON fields of server messages
	// (PublishServer): the send time (a number since the Unix epoch in
	// StampUnit, or an RFC 3339 string) and an optional integer sequence
	// number that grows by one per message. Defaults "t" and "seq".
	StampField string    `json:"stamp_field,omitempty"`
	SeqField   string    `json:"seq_field,omitempty"`
	StampUnit  StampUnit `json:"stamp_unit,omitempty"`

	// Src are the local addresses connections are bound to, in turn. Default
	// on a loopback target: 127.0.0.2 onwards, one per 2,500 connections;
	// elsewhere the kernel's choice.
	Src []string `json:"src,omitempty"`
	// Procs is the number of worker processes; 0 chooses from the
	// connections and the open-file limit; 1 runs in this process.
	Procs int `json:"procs"`
	// Loops is the number of event loops per process; default GOMAXPROCS.
	Loops int `json:"loops,omitempty"`
	// ServerPID, when set, is the server process whose VmRSS (summed with
	// its children's: a wsloop -procs supervisor's workers) is sampled
	// before the run and after its traffic, for bytes per connection.
	ServerPID int `json:"server_pid,omitempty"`

	// RunID marks the messages of this run; default random.
	RunID string `json:"run_id,omitempty"`

	// Soak configures the soak scenario.
	Soak SoakConfig `json:"soak,omitempty"`

	// Progress, when set, receives a progress line once a second.
	Progress io.Writer `json:"-"`
	// Logger receives diagnostics; default slog.Default().
	Logger *slog.Logger `json:"-"`
	// WorkerCommand makes the command of a worker process; default: this
	// executable with the worker environment variable set (see WorkerMain).
	WorkerCommand func() *exec.Cmd `json:"-"`
}

// perSrcConns is how many connections a default source address takes. One
// address could take up to the 28,232 ports of the default ephemeral range,
// but the kernel's search for a free port slows down as the range fills: on
// the test machine 19,000 connects from one address took 14.7 s, from eight
// 1.2 s. Loopback addresses cost nothing, so they are spread thin.
const perSrcConns = 2500

// target is what a Config resolves to.
type target struct {
	raddr *net.TCPAddr
	host  string // Host header
	path  string // request-target
	tls   bool   // wss
}

func resolveURL(s string) (target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return target{}, fmt.Errorf("-url %q: %v", s, err)
	}
	port := u.Port()
	secure := false
	switch u.Scheme {
	case "ws", "http":
		if port == "" {
			port = "80"
		}
	case "wss", "https":
		secure = true
		if port == "" {
			port = "443"
		}
	default:
		return target{}, fmt.Errorf("-url %q: want ws://host:port/path or wss://", s)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil || len(ips) == 0 {
		return target{}, fmt.Errorf("-url %q: cannot resolve host: %v", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return target{}, fmt.Errorf("-url %q: bad port", s)
	}
	ip := ips[0]
	for _, c := range ips { // prefer IPv4, as the default source addresses are
		if c.To4() != nil {
			ip = c
			break
		}
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return target{raddr: &net.TCPAddr{IP: ip, Port: p}, host: u.Host, path: path, tls: secure}, nil
}

// ParseSrc parses source addresses: a comma-separated list of addresses and
// inclusive IPv4 ranges, e.g. "127.0.0.2-127.0.0.40,127.0.1.1".
func ParseSrc(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a := net.ParseIP(lo)
		if a == nil {
			return nil, fmt.Errorf("-src: %q is not an IP address", lo)
		}
		if !isRange {
			out = append(out, a.String())
			continue
		}
		b := net.ParseIP(hi)
		if a.To4() == nil || b == nil || b.To4() == nil {
			return nil, fmt.Errorf("-src: range %q: want two IPv4 addresses", f)
		}
		x, y := ip4ToUint(a), ip4ToUint(b)
		if y < x || y-x > 1<<16 {
			return nil, fmt.Errorf("-src: range %q is empty or larger than 65536 addresses", f)
		}
		for v := x; v <= y; v++ {
			out = append(out, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-src %q: no addresses", s)
	}
	return out, nil
}

func ip4ToUint(ip net.IP) uint32 {
	v := ip.To4()
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
}

// defaults fills in every zero field and checks the rest.
func (c *Config) defaults() error {
	switch c.Scenario {
	case Connect, Idle, Echo, Broadcast, Churn, SSE, Soak:
	case "":
		return fmt.Errorf("no scenario: want one of %s", strings.Join(Scenarios, ", "))
	default:
		return fmt.Errorf("unknown scenario %q: want one of %s", c.Scenario, strings.Join(Scenarios, ", "))
	}
	if c.URL == "" {
		return fmt.Errorf("no -url: want ws://host:port/path")
	}
	if c.Conns == 0 && c.Scenario != Churn { // churn's concurrency is InFlight
		c.Conns = 1000
		switch c.Scenario {
		case Echo:
			c.Conns = 100
		case Soak:
			c.Conns = 10000
		}
	}
	if c.Conns < 0 || c.Rate < 0 || c.Ramp < 0 || c.Messages < 0 || c.Duration < 0 || c.Procs < 0 {
		return fmt.Errorf("conns, rate, ramp, messages, duration and procs must not be negative")
	}
	if c.InFlight <= 0 {
		c.InFlight = 256
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
		if c.Scenario == Soak {
			c.Duration = 30 * time.Minute
		}
	}
	if c.Drain == 0 {
		c.Drain = 5 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Size == 0 {
		c.Size = 64
		if c.Scenario == Soak {
			c.Size = 512
		}
	}
	if c.Scenario == Echo && c.Size < echoMin(!c.Binary) {
		return fmt.Errorf("-size %d: echo messages need at least %d bytes (%s) for the sequence number, send time and check bytes",
			c.Size, echoMin(!c.Binary), map[bool]string{true: "binary", false: "text"}[c.Binary])
	}
	if c.Scenario == Broadcast || c.Scenario == SSE {
		switch c.Publish {
		case "":
			c.Publish = PublishSelf
		case PublishSelf, PublishServer:
		default:
			return fmt.Errorf("-publish %q: want %s or %s", c.Publish, PublishSelf, PublishServer)
		}
		if c.Publish == PublishSelf {
			if c.Rate == 0 {
				c.Rate = 10
			}
			if c.Messages == 0 {
				c.Messages = 50
			}
		}
	}
	if c.Scenario == Churn && c.Rate == 0 {
		c.Rate = 100
	}
	if c.PublishURL == "" {
		c.PublishURL = c.URL
		if c.Scenario == SSE {
			c.PublishURL = strings.ReplaceAll(strings.ReplaceAll(c.URL, "https://", "wss://"), "http://", "ws://")
		}
		if c.Scenario == Soak {
			c.PublishURL = ""
		}
	}
	if c.Publishers < 0 {
		return fmt.Errorf("-publishers %d is negative", c.Publishers)
	}
	if c.Publishers == 0 {
		c.Publishers = max(1, len(splitURLs(c.PublishURL)))
	}
	if c.WarmUp <= 0 {
		c.WarmUp = max(30*time.Second, 5*c.probeInterval())
	}
	if c.Scenario == Soak {
		if err := c.Soak.defaults(c); err != nil {
			return err
		}
	}
	secure, err := secureURLs(c.URL, c.PublishURL)
	if err != nil {
		return err
	}
	if (c.CAFile != "" || c.Insecure) && !secure {
		return fmt.Errorf("-ca and -insecure are for wss:// URLs")
	}
	if c.CAFile != "" && c.Insecure {
		return fmt.Errorf("-ca and -insecure: give one (verify with the CA, or not at all)")
	}
	if c.PublishTemplate == "" {
		c.PublishTemplate = "%s"
	}
	if strings.Count(c.PublishTemplate, "%s") != 1 {
		return fmt.Errorf("-publish-template %q: want exactly one %%s for the token", c.PublishTemplate)
	}
	if c.StampField == "" {
		c.StampField = "t"
	}
	if c.SeqField == "" {
		c.SeqField = "seq"
	}
	switch c.StampUnit {
	case "":
		c.StampUnit = StampAuto
	case StampAuto, StampS, StampMS, StampUS, StampNS:
	default:
		return fmt.Errorf("-stamp-unit %q: want auto, s, ms, us or ns", c.StampUnit)
	}
	for _, s := range c.Src {
		if net.ParseIP(s) == nil {
			return fmt.Errorf("source address %q is not an IP address", s)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// secureURLs reports whether the URLs of the lists (comma-separated) are
// wss (or https): one Dialer speaks TLS to all of them or to none, so a mix
// is an error.
func secureURLs(lists ...string) (bool, error) {
	var secure, plain bool
	for _, list := range lists {
		for _, s := range splitURLs(list) {
			u, err := url.Parse(s)
			if err == nil && (u.Scheme == "wss" || u.Scheme == "https") {
				secure = true
			} else {
				plain = true
			}
		}
	}
	if secure && plain {
		return false, fmt.Errorf("-url and -publish-url: all wss (https) or none")
	}
	return secure, nil
}

// tlsConfig is the Dialer's TLS config for a wss run (nil for ws).
func (c *Config) tlsConfig() (*tls.Config, error) {
	if secure, _ := secureURLs(c.URL, c.PublishURL); !secure {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: c.Insecure}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate in it", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// sockets is how many sockets the run holds at once, over all processes.
func (c *Config) sockets() int {
	switch c.Scenario {
	case Broadcast, SSE:
		if c.Publish == PublishSelf {
			return c.Conns + c.Publishers
		}
	case Churn:
		return c.InFlight
	case Soak:
		return c.Conns + 1 + c.InFlight
	}
	return c.Conns
}

// crossChecked reports whether a self-published broadcast is verified per
// publisher with a warm-up: several publishers, or several endpoints.
func (c *Config) crossChecked() bool {
	return c.Publish == PublishSelf && (c.Publishers > 1 || len(splitURLs(c.URL)) > 1 || len(splitURLs(c.PublishURL)) > 1)
}

// splitURLs splits a comma-separated URL list.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// defaultSrc spreads a loopback target's connections over 127.0.0.2 onwards.
func defaultSrc(raddr *net.TCPAddr, sockets, procs int) []string {
	ip4 := raddr.IP.To4()
	if ip4 == nil || !ip4.IsLoopback() {
		return nil
	}
	n := (sockets + perSrcConns - 1) / perSrcConns
	if n < procs {
		n = procs // one address per process keeps their ports apart
	}
	if n < 1 {
		n = 1
	}
	out := make([]string, 0, n)
	for i := range n {
		v := uint32(127)<<24 | uint32(2+i)
		out = append(out, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String())
	}
	return out
}

// endpoint is a resolved URL with its request.
type endpoint struct {
	target
	req *session.ClientRequest
}

// resolveEndpoints resolves a comma-separated URL list.
func resolveEndpoints(list, origin string) ([]endpoint, error) {
	urls := splitURLs(list)
	if len(urls) == 0 {
		return nil, fmt.Errorf("-url %q: no URL", list)
	}
	out := make([]endpoint, len(urls))
	for i, u := range urls {
		t, err := resolveURL(u)
		if err != nil {
			return nil, err
		}
		out[i] = endpoint{t, &session.ClientRequest{Host: t.host, Path: t.path, Origin: origin}}
	}
	return out, nil
}
