// Command wsloop serves WebSocket connections on event loops, with the demo
// applications (echo, chat, server push) and their page on the same port.
//
//	go run ./cmd/wsloop                      # demo at http://127.0.0.1:8080/
//	go run ./cmd/wsloop -static ./public     # ./public at /, the demo page at /demo/
//
// Run with -h for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsloop/wsloop/demo"
	"github.com/wsloop/wsloop/loop"
	_ "github.com/wsloop/wsloop/loop/gnet" // -engine gnet
	"github.com/wsloop/wsloop/session"
	"github.com/wsloop/wsloop/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsloop:", err)
		os.Exit(1)
	}
}

type config struct {
	addr, engine, static, origins, tlsCert, tlsKey, logLevel, overflow string
	loops, maxConns, maxMessage, highWater, compressThreshold          int
	compress                                                           bool
	admin                                                              adminConfig
	limits                                                             limitFlags // limits.go
	idleTimeout, pingInterval, shutdownTimeout, writeTimeout           time.Duration
	handshakeTimeout                                                   time.Duration
	scale                                                              scaleConfig // procs.go
	bridge                                                             *bridgeFlags
}

// overflows are the -overflow names.
var overflows = map[string]session.Overflow{
	"close":       session.OverflowClose1008,
	"close-retry": session.OverflowClose1013,
	"drop":        session.OverflowDrop,
}

func parseFlags(args []string, out io.Writer) (*config, error) {
	var c config
	fs := flag.NewFlagSet("wsloop", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (host:port)")
	fs.StringVar(&c.engine, "engine", "epoll", "engine: epoll (kqueue on BSD/macOS), gnet or goroutine")
	fs.IntVar(&c.loops, "loops", 0, "event loops (0: one per CPU)")
	fs.StringVar(&c.static, "static", "", "serve this directory at / (the demo page moves to /demo/)")
	fs.IntVar(&c.maxConns, "max-conns", 0, "most open connections (0: as many as the open-file limit allows)")
	fs.IntVar(&c.maxMessage, "max-message", 1<<20, "largest message in bytes; larger ones are refused with close code 1009")
	fs.IntVar(&c.highWater, "high-water", session.DefaultHighWater, "unsent bytes a connection may hold before -overflow applies; worst-case queued memory is this times the connections")
	fs.StringVar(&c.overflow, "overflow", "close", `past -high-water: "close" the slow consumer (1008), "close-retry" (1013) or "drop" the message (counted)`)
	fs.DurationVar(&c.writeTimeout, "write-timeout", session.DefaultWriteTimeout, "close connections whose peer takes none of their queued bytes this long (0: never)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 0, "close connections silent this long (0: never)")
	fs.DurationVar(&c.handshakeTimeout, "handshake-timeout", session.DefaultHandshakeTimeout, "close connections that have not sent a whole request this long after connecting (or after their last answer, on a kept-alive HTTP connection)")
	fs.DurationVar(&c.pingInterval, "ping-interval", 30*time.Second, "ping connections silent this long (0: never)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 5*time.Second, "on SIGINT/SIGTERM, wait this long for close replies")
	fs.StringVar(&c.origins, "allowed-origins", "", `comma-separated browser origins allowed besides the server's own, e.g. "https://app.example.com"; "*" allows any`)
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate file (PEM, chain after the leaf) to serve wss and https on -addr, on any engine; needs -tls-key; SIGHUP reloads both files")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key file (PEM) for -tls-cert")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.compress, "compress", false, "accept permessage-deflate (no context takeover: no memory per connection, CPU per message)")
	fs.IntVar(&c.compressThreshold, "compress-threshold", session.DefaultCompressThreshold, "with -compress, send messages shorter than this uncompressed (-1: try every message)")
	c.admin.register(fs)
	c.limits.register(fs)
	c.scale.register(fs)
	c.bridge = addBridgeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: all settings are flags (see -h)", fs.Args())
	}
	if err := c.limits.check(); err != nil {
		return nil, err
	}
	if err := c.admin.check(); err != nil {
		return nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together: give both or neither")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-idle-timeout", c.idleTimeout}, {"-ping-interval", c.pingInterval}, {"-shutdown-timeout", c.shutdownTimeout}, {"-handshake-timeout", c.handshakeTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%s %v is negative", d.name, d.v)
		}
	}
	if c.maxMessage <= 0 {
		return nil, fmt.Errorf("-max-message %d: give a positive number of bytes", c.maxMessage)
	}
	if c.highWater <= 0 {
		return nil, fmt.Errorf("-high-water %d: give a positive number of bytes", c.highWater)
	}
	if _, ok := overflows[c.overflow]; !ok {
		return nil, fmt.Errorf("-overflow %q: use close, close-retry or drop", c.overflow)
	}
	if c.writeTimeout < 0 {
		return nil, fmt.Errorf("-write-timeout %v is negative", c.writeTimeout)
	}
	if err := c.scale.check(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// run serves until ctx is done, then shuts down gracefully. ready, when set,
// is told the bound address.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: use debug, info, warn or error", c.logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	gcPercent := applyGCPercent()
	if c.scale.supervising() {
		return c.scale.supervise(ctx, c, args, log)
	}
	b, closeBus, err := c.scale.connect(log)
	if err != nil {
		return err
	}
	defer closeBus()

	d := demo.New(demo.Options{Bus: b})
	defer d.Close()
	var httpHandler http.Handler = d.Page()
	if c.static != "" {
		static, err := web.Open(c.static)
		if err != nil {
			return fmt.Errorf("-static: %w", err)
		}
		defer static.Close()
		// Not an http.ServeMux: it would redirect unclean paths ("/a/../b")
		// where the web handler refuses them with 404.
		page := http.StripPrefix("/demo", d.Page())
		httpHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/demo/") {
				page.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == "/demo" {
				http.Redirect(w, r, "/demo/", http.StatusMovedPermanently)
				return
			}
			static.ServeHTTP(w, r)
		})
	}
	stats := new(session.Stats)
	opts := loop.Options{
		Engine:   c.engine,
		Loops:    c.loops,
		MaxConns: c.maxConns,
		Session: session.Config{
			Upgrade:          d.Upgrade,
			AllowedOrigins:   splitList(c.origins),
			MaxMessage:       c.maxMessage,
			HighWater:        c.highWater,
			Overflow:         overflows[c.overflow],
			WriteTimeout:     orNever(c.writeTimeout),
			IdleTimeout:      c.idleTimeout,
			HandshakeTimeout: c.handshakeTimeout,
			PingInterval:     orNever(c.pingInterval),
			Compression:      compression(c.compress, c.compressThreshold),
			Stats:            stats,
		},
		HTTP:            httpHandler,
		LoopHTTP:        d.LoopHTTP, // /sse/...: event streams on the loops
		Limits:          c.limits.limits(),
		ShutdownTimeout: c.shutdownTimeout,
		Logger:          log,
	}
	if c.tlsCert != "" {
		kp, err := loop.LoadKeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		opts.TLSConfig = kp.TLSConfig()
		logCert(log, "TLS certificate loaded", kp)
		stopReload := reloadOnHUP(log, kp)
		defer stopReload()
	}
	stopAdmin, err := startAdmin(&c.admin, &opts, stats, log)
	if err != nil {
		return err
	}
	defer stopAdmin()
	br, err := c.bridge.start(log, d.Router, &opts)
	if err != nil {
		return err
	}
	defer br.close() // after Shutdown: it waits for the bridged programs
	srv, err := loop.NewServer(demo.Echo, opts)
	if err != nil {
		return err
	}
	if err := srv.Listen(c.addr); err != nil {
		return err
	}
	scheme := "http"
	if opts.TLSConfig != nil {
		scheme = "https"
	}
	page := scheme + "://" + srv.Addr().String() + "/"
	if c.static != "" {
		page += "demo/"
	}
	log.Info("wsloop serving", "addr", srv.Addr().String(), "engine", srv.Engine(), "loops", srv.Loops(),
		"capacity", srv.Capacity(), "gc_percent", gcPercent, "demo", page, "static", c.static)
	c.scale.serving(c, srv, d, log)
	if ready != nil {
		ready(srv.Addr().String())
	}

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Wait() }()
	select {
	case err := <-stopped:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "conns", srv.Conns(), "timeout", c.shutdownTimeout)
	d.Close() // no more readings while connections close
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	br.close()
	log.Info("stopped")
	return nil
}

// reloadOnHUP reloads kp on every SIGHUP until the returned func is
// called: new handshakes present the new certificate, open connections
// stay. A failed reload keeps the certificate in use.
func reloadOnHUP(log *slog.Logger, kp *loop.KeyPair) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := kp.Reload(); err != nil {
					log.Error("TLS certificate reload failed; keeping the one in use", "err", err)
					continue
				}
				logCert(log, "TLS certificate reloaded", kp)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

func logCert(log *slog.Logger, msg string, kp *loop.KeyPair) {
	leaf := kp.Certificate().Leaf
	log.Info(msg, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// compression maps -compress and -compress-threshold to the library's
// setting (its Threshold 0 means the default, negative every message).
func compression(on bool, threshold int) *session.Compression {
	if !on {
		return nil
	}
	if threshold == 0 {
		threshold = -1 // the flag's 0: compress everything
	}
	return &session.Compression{Threshold: threshold}
}

// orNever maps a flag's 0 ("never") to the library's negative duration
// (its 0 means "the default").
func orNever(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
