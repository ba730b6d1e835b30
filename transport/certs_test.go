package transport_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The tests make their certificates at run time: no private key is
// committed, and nothing expires in the repository.

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// issue makes a certificate for pub signed by the CA; mod adjusts the
// template (validity, usages).
func (ca *testCA) issue(t testing.TB, cn string, pub crypto.PublicKey, mod func(*x509.Certificate)) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// server writes a server certificate for 127.0.0.1 and localhost and its
// key to dir, returning the two file names.
func (ca *testCA) server(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	der := ca.issue(t, "coolpy7 test server", key.Public(), func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.DNSNames = []string{"localhost"}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	})
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

// client makes a client certificate; mod adjusts its template.
func (ca *testCA) client(t testing.TB, cn string, mod func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key := newKey(t)
	der := ca.issue(t, cn, key.Public(), func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if mod != nil {
			mod(c)
		}
	})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// hugeRSAClient is a client certificate with a 9000-bit RSA key. Making
// such a key takes minutes, so the key is a random odd number of that
// size that no one can sign with: the server must refuse the certificate
// on its size, before it would check a signature.
func hugeRSAClient(t testing.TB, ca *testCA) tls.Certificate {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 9000))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, 8999, 1).SetBit(n, 0, 1)
	pub := &rsa.PublicKey{N: n, E: 65537}
	der := ca.issue(t, "huge", pub, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: unusableRSA{pub}}
}

// unusableRSA signs with garbage; the handshake never gets that far.
type unusableRSA struct{ pub *rsa.PublicKey }

func (k unusableRSA) Public() crypto.PublicKey { return k.pub }
func (k unusableRSA) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return make([]byte, k.pub.Size()), nil
}

// pool is a cert pool holding only the CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) write(t testing.TB, dir string) string {
	t.Helper()
	f := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
