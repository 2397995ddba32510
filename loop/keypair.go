package loop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
)

// KeyPair is a certificate and its private key, loaded from PEM files, that
// can be reloaded while a server runs (on SIGHUP, say, after a renewal):
// handshakes after Reload present the new certificate, and connections
// already open keep the keys they agreed on. Serve it through TLSConfig (or
// put GetCertificate in a tls.Config of your own). Safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadKeyPair loads certFile and keyFile (PEM; the certificate file may
// hold the chain after the leaf).
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the files again. On an error the certificate in use stays.
func (k *KeyPair) Reload() error {
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("loading %s and %s: %w", k.certFile, k.keyFile, err)
	}
	if c.Leaf == nil {
		return errors.New("loading " + k.certFile + ": no leaf certificate")
	}
	k.cur.Store(&c)
	return nil
}

// Certificate is the certificate in use (its Leaf is parsed).
func (k *KeyPair) Certificate() *tls.Certificate { return k.cur.Load() }

// GetCertificate is tls.Config.GetCertificate: the certificate in use.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}

// TLSConfig is a server config that presents the certificate in use
// (TLS 1.2 at least), for Options.TLSConfig.
func (k *KeyPair) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: k.GetCertificate, MinVersion: tls.VersionTLS12}
}
