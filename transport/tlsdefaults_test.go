package transport_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/transport"
)

// TestTLSMatchesGoDefaults probes the TLS listener and a crypto/tls server
// with its defaults (the Go the broker is built with) with clients that
// each offer one protocol version, one TLS 1.2 cipher suite or one key
// exchange group, for an ECDSA and an RSA certificate. Both must accept the
// same offers, except the post-quantum hybrid groups that llib lacks; a Go
// release that changes its defaults fails this test until the listener's
// list follows.
func TestTLSMatchesGoDefaults(t *testing.T) {
	ca := newCA(t, "probe CA")
	dir := t.TempDir()
	ecCert, ecKey := ca.server(t, dir)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, rsaKeyFile := filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "rsa.key")
	writePEM(t, rsaCert, "CERTIFICATE", ca.issue(t, "rsa server", rsaKey.Public(), func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.KeyUsage |= x509.KeyUsageKeyEncipherment
	}))
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, rsaKeyFile, "PRIVATE KEY", der)

	var offers []probe
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		offers = append(offers, probe{tls.VersionName(v), &tls.Config{MinVersion: v, MaxVersion: v}})
	}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			offers = append(offers, probe{s.Name, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}}})
		}
	}
	groups := []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521,
		tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024}
	for _, g := range groups {
		offers = append(offers, probe{"TLS 1.3 " + g.String(), &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{g}}})
		offers = append(offers, probe{"TLS 1.2 " + g.String(), &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{g}}})
	}
	pqOnly := map[string]bool{}
	for _, g := range groups[4:] {
		pqOnly["TLS 1.3 "+g.String()] = true
	}

	for _, kp := range [][2]string{{ecCert, ecKey}, {rsaCert, rsaKeyFile}} {
		cert, err := tls.LoadX509KeyPair(kp[0], kp[1])
		if err != nil {
			t.Fatal(err)
		}
		std := stdServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
		st, err := transport.LoadServerTLS(transport.TLSOptions{CertFile: kp[0], KeyFile: kp[1]})
		if err != nil {
			t.Fatal(err)
		}
		l := transport.NewTLS("127.0.0.1:0", st, nopHandler{})
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		defer l.Stop()
		ours := map[string]bool{}
		goDefaults := map[string]bool{}
		for _, o := range offers {
			goDefaults[o.name] = o.accepted(std)
			ours[o.name] = o.accepted(l.Addr())
		}
		for _, o := range offers {
			want := goDefaults[o.name] && !pqOnly[o.name]
			if ours[o.name] != want {
				t.Errorf("%s key, %s: listener accepts %v, want %v (crypto/tls accepts %v)",
					filepath.Base(kp[1]), o.name, ours[o.name], want, goDefaults[o.name])
			}
		}
		t.Logf("%s: accepted %v", filepath.Base(kp[1]), slices.Sorted(keysTrue(ours)))
	}
}

// probe is a client offering one thing.
type probe struct {
	name string
	conf *tls.Config
}

// accepted reports whether a handshake offering only this succeeds.
func (p probe) accepted(addr string) bool {
	c := p.conf.Clone()
	c.InsecureSkipVerify = true
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", addr, c)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// stdServer runs a crypto/tls server that completes handshakes and then
// hangs up.
func stdServer(t *testing.T, conf *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.SetDeadline(time.Now().Add(wait))
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return l.Addr().String()
}

func keysTrue(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range maps.Keys(m) {
			if m[k] && !yield(k) {
				return
			}
		}
	}
}

// nopHandler ignores every event.
type nopHandler struct{}

func (nopHandler) Open(c transport.Conn) any { return c }
func (nopHandler) Data(any, []byte)          {}
func (nopHandler) Written(any, int)          {}
func (nopHandler) Close(any, error)          {}
