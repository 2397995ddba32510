package demo

import "github.com/wsloop/wsloop/session"

// Echo sends every message back to its sender, with its type.
var Echo session.Handler = echo{}

type echo struct{}

func (echo) OnOpen(c *session.Conn) {}

func (echo) OnMessage(c *session.Conn, op session.Opcode, p []byte) {
	// Under backpressure the server's Overflow policy applies (drop, close
	// or error); an echo has nothing better to do with the error.
	_ = c.Send(op, p)
}

func (echo) OnClose(c *session.Conn, code session.StatusCode, reason string, err error) {}
