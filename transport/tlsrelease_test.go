package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// captured is a Handler that echoes and hands out its one connection.
type captured struct{ conns chan *stream }

func (c captured) Open(conn Conn) any { c.conns <- conn.(*stream); return conn }
func (captured) Data(state any, b []byte) {
	_, _ = state.(Conn).Write(b)
}
func (captured) Written(any, int) {}
func (captured) Close(any, error) {}

// TestReleaseHandshake checks that once the handshake is over, over TLS
// 1.2 and 1.3, llib's connection keeps none of it, and still works.
func TestReleaseHandshake(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	st, err := LoadServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	h := captured{conns: make(chan *stream, 1)}
	l := NewTLS("127.0.0.1:0", st, h)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	for _, v := range []uint16{stdtls.VersionTLS12, stdtls.VersionTLS13} {
		c, err := stdtls.Dial("tcp", l.Addr(), &stdtls.Config{InsecureSkipVerify: true, MaxVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		s := <-h.conns
		for i := range 3 {
			msg := []byte{'p', 'i', 'n', 'g', byte('0' + i)}
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
				t.Fatalf("%s: echo %q, %v", stdtls.VersionName(v), got, err)
			}
		}
		s.mu.Lock()
		if !s.shaken {
			t.Errorf("%s: handshake not marked released", stdtls.VersionName(v))
		}
		for i, f := range append(handshakeFields, handBuf) {
			if !f.in(s.tls).IsZero() {
				t.Errorf("%s: handshake field %d (%s) kept", stdtls.VersionName(v), i, f.typ)
			}
		}
		s.mu.Unlock()
		c.Close()
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
