package bench

import "github.com/wsloop/wsloop/internal/testcert"

// certFiles are the PEM files of the TLS servers' certificate.
type certFiles struct{ cert, key string }

// writeCert writes a throwaway self-signed certificate for 127.0.0.1 (ECDSA
// P-256, as a production server would choose for handshake speed) into dir;
// wsload verifies the servers with it (-ca).
func writeCert(dir string) (certFiles, error) {
	c, err := testcert.Generate()
	if err != nil {
		return certFiles{}, err
	}
	cert, key, err := c.Write(dir)
	return certFiles{cert: cert, key: key}, err
}
