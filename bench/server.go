package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ServerSpec is one server of the matrix.
type ServerSpec struct {
	Name     string // short name used in flags and tables: "epoll", "gorilla"
	Label    string // what the page calls it: "wsloop epoll"
	Binary   string // file name in the build directory
	Args     []string
	Baseline bool // built from the nested module bench/baseline
	// Admin: the server serves /debug/vars on an admin listener of its own
	// (-admin-addr) rather than on its port.
	Admin bool
	// SSE: the server serves the push feed as an event stream at /sse/push
	// (the idle-sse scenario).
	SSE bool
	// Rev, when set, is the git revision the binary is built from (a
	// previous version of wsloop, measured beside the current one).
	Rev string
	// LoadArgs are extra wsload flags for runs against this server (the
	// compression row's -compress).
	LoadArgs []string
	// Push: the push-wire scenario reads the demo's push feed (/ws/push)
	// off the wire.
	Push bool
	// TLS servers serve wss (and are given -tls-cert and -tls-key): wsload
	// dials them with TLS, and their ratios are to TLSReference.
	TLS bool
}

// PreviousEpoll is the epoll engine of wsloop as it was at rev: built from
// that revision's cmd/wsloop, named "epoll@REV" on the page.
func PreviousEpoll(rev string) ServerSpec {
	short := rev
	if len(short) > 7 {
		short = short[:7]
	}
	return ServerSpec{Name: "epoll@" + short, Label: "wsloop epoll @" + short, Binary: "wsloop-" + short,
		Args: []string{"-engine", "epoll"}, Rev: rev}
}

// Servers are every server the benchmark knows, in the order of its tables.
// Each serves echo at /ws/echo and chat rooms at /ws/chat?room=NAME.
var Servers = []ServerSpec{
	{Name: "epoll", Label: "wsloop epoll", Binary: "wsloop", Args: []string{"-engine", "epoll"}, Admin: true, SSE: true, Push: true},
	{Name: "gnet", Label: "wsloop gnet", Binary: "wsloop", Args: []string{"-engine", "gnet"}, Admin: true, SSE: true},
	{Name: "goroutine", Label: "wsloop goroutine", Binary: "wsloop", Args: []string{"-engine", "goroutine"}, Admin: true, SSE: true},
	// The epoll engine with permessage-deflate negotiated on every
	// connection (wsload offers it; idle: what compression costs an idle
	// connection; echo: the CPU of compressing and inflating each message).
	{Name: "epoll-deflate", Label: "wsloop epoll+deflate", Binary: "wsloop",
		Args: []string{"-engine", "epoll", "-compress"}, Admin: true, LoadArgs: []string{"-compress"}, Push: true},
	{Name: "gorilla", Label: "gorilla/websocket", Binary: "gorilla", Baseline: true},
	{Name: "gobwas", Label: "gobwas/ws blocking", Binary: "gobwas", Baseline: true},
	// wss: the same servers with TLS (wsloop's core layer on crypto/tls;
	// gorilla behind net/http's ListenAndServeTLS).
	{Name: "epoll-tls", Label: "wsloop epoll (wss)", Binary: "wsloop", Args: []string{"-engine", "epoll"}, Admin: true, TLS: true},
	{Name: "goroutine-tls", Label: "wsloop goroutine (wss)", Binary: "wsloop", Args: []string{"-engine", "goroutine"}, Admin: true, TLS: true},
	{Name: "gorilla-tls", Label: "gorilla/websocket (wss)", Binary: "gorilla", Baseline: true, TLS: true},
}

// Reference is the server every plain figure is also given as a ratio to;
// TLSReference is the one of TLS servers.
const (
	Reference    = "gorilla"
	TLSReference = "gorilla-tls"
)

// refOf is the reference server of server's ratios.
func refOf(server string) string {
	for _, s := range Servers {
		if s.Name == server && s.TLS {
			return TLSReference
		}
	}
	return Reference
}

// LookupServers returns the specs named in a comma-separated list, in the
// order of Servers.
func LookupServers(list string) ([]ServerSpec, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []ServerSpec
	for _, s := range Servers {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("-servers: unknown server %q; known: %s", n, serverNames())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-servers %q: no server; known: %s", list, serverNames())
	}
	return out, nil
}

func serverNames() string {
	var n []string
	for _, s := range Servers {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

// serverProc is a running server.
type serverProc struct {
	spec    ServerSpec
	addr    string // 127.0.0.1:port
	vars    string // where /debug/vars is: addr or the admin listener's
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts spec's binary on a fresh port and returns once the
// port accepts connections. A TLS server is given cert's files; gogc, when
// set, is the server's GOGC.
func startServer(ctx context.Context, spec ServerSpec, binDir, logDir string, cert certFiles, gogc string, log *slog.Logger) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"-addr", addr}, spec.Args...)
	vars := addr
	if spec.TLS {
		args = append(args, "-tls-cert", cert.cert, "-tls-key", cert.key)
		vars = "https://" + addr // unless an admin listener serves them (below)
	}
	if spec.Admin {
		aport, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		vars = fmt.Sprintf("127.0.0.1:%d", aport)
		args = append(args, "-admin-addr", vars)
	}
	lf, err := os.CreateTemp(logDir, spec.Name+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, spec.Binary), args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if gogc != "" {
		cmd.Env = append(os.Environ(), "GOGC="+gogc)
	}
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p := &serverProc{spec: spec, addr: addr, vars: vars, cmd: cmd, logPath: lf.Name(), exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	log.Debug("server started", "server", spec.Name, "pid", p.pid(), "addr", addr, "args", args)

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("server %s exited before accepting connections (%v); its log:\n%s", spec.Name, p.waitErr, p.logTail())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("server %s did not accept connections on %s within 15s; its log:\n%s", spec.Name, addr, p.logTail())
		}
	}
}

// alive reports an error when the server has exited.
func (p *serverProc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("server %s (pid %d) died (%v); its log:\n%s", p.spec.Name, p.pid(), p.waitErr, p.logTail())
	default:
		return nil
	}
}

// stop asks the server to shut down (SIGTERM), then kills it after 10s.
func (p *serverProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// logTail is the end of the server's log, for error messages.
func (p *serverProc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// runtimeVars is what a server's /debug/vars (expvar) tells about its Go runtime.
type runtimeVars struct {
	HeapInuse  float64 // bytes
	Goroutines float64
}

// errNoVars means the server does not expose /debug/vars.
var errNoVars = errors.New("no /debug/vars")

// fetchVars reads expvar's memstats and the "goroutines" variable.
func fetchVars(ctx context.Context, addr string) (runtimeVars, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	base := addr
	if !strings.HasPrefix(base, "https://") {
		base = "http://" + addr
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/debug/vars", nil)
	// A TLS server's throwaway certificate is not verified here (wsload
	// verifies it).
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return runtimeVars{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return runtimeVars{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return runtimeVars{}, errNoVars
	}
	return parseVars(body)
}

// parseVars reads memstats.HeapInuse and goroutines from an expvar document.
func parseVars(body []byte) (runtimeVars, error) {
	var doc struct {
		Memstats *struct {
			HeapInuse float64 `json:"HeapInuse"`
		} `json:"memstats"`
		Goroutines *float64 `json:"goroutines"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&doc); err != nil || doc.Memstats == nil {
		return runtimeVars{}, errNoVars
	}
	v := runtimeVars{HeapInuse: doc.Memstats.HeapInuse, Goroutines: -1}
	if doc.Goroutines != nil {
		v.Goroutines = *doc.Goroutines
	}
	return v, nil
}
