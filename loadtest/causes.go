package loadtest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/wsloop/wsloop/session"
)

// cause is why a connection failed to open or went away; counted per process
// in a fixed array, so failures cost no allocation and no lock.
type cause uint8

const (
	causeRefused      cause = iota // ECONNREFUSED: nothing listens, or the accept queue is full
	causeTimeout                   // connect or handshake took longer than ConnectTimeout
	causeEMFILE                    // out of file descriptors in this process or the system
	causeAddrNotAvail              // EADDRNOTAVAIL: out of ephemeral ports for a source address
	causeAddrInUse                 // EADDRINUSE
	causeHandshake                 // the server answered the upgrade with something other than 101
	causeReset                     // ECONNRESET / EPIPE
	causeEOF                       // the server closed the socket without a close frame
	causeCloseFrame                // the server closed with a close frame (a drop, when unasked)
	causeTLS                       // the TLS handshake failed (an untrusted certificate, an alert)
	causeOther                     // anything else
	numCauses
)

var causeNames = [numCauses]string{
	"refused", "timeout", "emfile", "addrnotavail", "addrinuse",
	"bad_handshake", "reset", "eof", "closed_by_server", "tls", "other",
}

func (c cause) String() string { return causeNames[c] }

// classify maps an error from Dial or OnClose to a cause.
func classify(err error) cause {
	var he *session.HandshakeError
	var ne net.Error
	var cve *tls.CertificateVerificationError
	var ae tls.AlertError
	var rhe tls.RecordHeaderError
	switch {
	case err == nil:
		return causeCloseFrame
	case errors.As(err, &he):
		return causeHandshake
	case errors.As(err, &cve), errors.As(err, &ae), errors.As(err, &rhe):
		return causeTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return causeRefused
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return causeTimeout
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return causeEMFILE
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return causeAddrNotAvail
	case errors.Is(err, syscall.EADDRINUSE):
		return causeAddrInUse
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return causeReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return causeEOF
	}
	return causeOther
}
