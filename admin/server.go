package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is a running admin listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error
}

// Listen binds addr (host:port; port 0 picks a free one) and serves
// Handler(opts) on it until Shutdown. It returns once the socket is bound.
//
// The server bounds what a client can hold: 10 s to send the request
// header, at most 64 KiB of it, idle keep-alive connections closed after
// 60 s. Responses have no write deadline, because a CPU profile or trace
// streams for as long as the request asks (?seconds=30 by default).
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(opts),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Shutdown stops accepting, lets requests in flight finish until ctx is
// done, then closes what is left. It returns the error that stopped the
// server early, if one did, or ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	if s.err != nil {
		return s.err
	}
	return err
}
