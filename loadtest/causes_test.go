package loadtest

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/wsloop/wsloop/session"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want cause
	}{
		{os.NewSyscallError("connect", syscall.ECONNREFUSED), causeRefused},
		{os.NewSyscallError("connect", syscall.ETIMEDOUT), causeTimeout},
		{os.NewSyscallError("socket", syscall.EMFILE), causeEMFILE},
		{syscall.ENFILE, causeEMFILE},
		{os.NewSyscallError("connect", syscall.EADDRNOTAVAIL), causeAddrNotAvail},
		{os.NewSyscallError("bind", syscall.EADDRINUSE), causeAddrInUse},
		{fmt.Errorf("wrapped: %w", &session.HandshakeError{Status: 403, Reason: "no"}), causeHandshake},
		{syscall.ECONNRESET, causeReset},
		{io.EOF, causeEOF},
		{nil, causeCloseFrame},
		{fmt.Errorf("something else"), causeOther},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
