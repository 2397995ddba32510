// Package testcert makes throwaway TLS certificates for tests and
// measurements: one self-signed certificate (ECDSA P-256) for 127.0.0.1 and
// ::1, valid for a day. It does not import package testing, so that
// measurement tools (cmd/wsbench) can use it too.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatal(args ...any)
	TempDir() string
}

// Cert is a self-signed certificate and what a test needs to use it.
type Cert struct {
	TLS  tls.Certificate
	Pool *x509.CertPool // trusts the certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// Generate makes a certificate for 127.0.0.1 and ::1.
func Generate() (Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return Cert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "wsloop test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Cert{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Cert{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return Cert{
		TLS:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Pool: pool,
		der:  der,
		key:  key,
	}, nil
}

// New is Generate for a test: a failure fails it.
func New(tb TB) Cert {
	tb.Helper()
	c, err := Generate()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var (
	sharedOnce sync.Once
	shared     Cert
	sharedErr  error
)

// Shared is one certificate for the whole test binary, for the many tests
// that need a certificate but not a certificate of their own.
func Shared(tb TB) Cert {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Generate() })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// ServerConfig serves the certificate.
func (c Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}
}

// ClientConfig trusts the certificate.
func (c Cert) ClientConfig() *tls.Config { return &tls.Config{RootCAs: c.Pool} }

// Write writes the certificate and its key as PEM files cert.pem and
// key.pem in dir, for programs that take -tls-cert and -tls-key (the
// certificate file is also the CA file that trusts it).
func (c Cert) Write(dir string) (certFile, keyFile string, err error) {
	kder, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteFiles is Write into a temporary directory of the test.
func (c Cert) WriteFiles(tb TB) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile, err := c.Write(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}
