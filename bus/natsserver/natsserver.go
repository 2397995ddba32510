// Package natsserver runs a NATS server (github.com/nats-io/nats-server/v2)
// inside this process, for a group of wsloop workers on one machine that
// should share rooms without anything installed: wsloop -procs N starts one
// in the supervisor on a loopback port and hands its URL to the workers.
//
// It is a plain core-NATS server: no JetStream, no clustering, no
// authentication, which is why Start refuses addresses off loopback. For
// several machines run a real NATS cluster and give its URLs to -nats.
package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the server. The zero value listens on a free loopback
// port.
type Options struct {
	// Addr is host:port to listen on; default "127.0.0.1:0" (a free port).
	// The host must be a loopback address.
	Addr string
	// MaxPayload is the largest message in bytes; default 2 MiB (a
	// WebSocket message of 1 MiB and then some).
	MaxPayload int
	// Logger receives the start line; default slog.Default().
	Logger *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	ns  *server.Server
	url string
}

// Start starts a server and returns once it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 2 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	host, portStr, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsserver: address %q: %w", opts.Addr, err)
	}
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("natsserver: address %q is not loopback: the embedded server has no authentication; for other machines run a NATS cluster", opts.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("natsserver: address %q: bad port", opts.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		ServerName:      "wsloop-embedded",
		Host:            ip.String(),
		Port:            port,
		NoLog:           true,
		NoSigs:          true,
		NoSystemAccount: true,
		MaxPayload:      int32(opts.MaxPayload),
		WriteDeadline:   5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("natsserver: not ready within 10s (is the port free?)")
	}
	s := &Server{ns: ns, url: ns.ClientURL()}
	opts.Logger.Debug("embedded NATS server listening", "url", s.url)
	return s, nil
}

// URL is the nats:// URL clients connect to.
func (s *Server) URL() string { return s.url }

// Clients is the number of client connections.
func (s *Server) Clients() int { return s.ns.NumClients() }

// Close stops the server and waits until it is down: every client is
// disconnected (and will try to reconnect).
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
