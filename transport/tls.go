package transport

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/lesismal/llib/std/crypto/tls"
)

// TLS listens for MQTT over TLS (port 8883 by convention), on the TCP
// listener's event loops. The handshake runs on them, driven by the bytes
// each read delivers, with llib's non-blocking fork of crypto/tls;
// docs/transport.md says why that fork and how it is hemmed in.
type TLS struct {
	*TCP
}

// NewTLS makes a TLS listener on addr that reports to h.
func NewTLS(addr string, t *ServerTLS, h Handler) *TLS {
	return &TLS{listen(addr, h, t.conf, nil)}
}

// Client certificate policies (TLSOptions.ClientAuth).
const (
	ClientAuthNone     = "none"     // no client certificate asked for
	ClientAuthOptional = "optional" // asked for; verified when sent
	ClientAuthRequire  = "require"  // a verified one is required
)

// TLSOptions are the TLS and WSS listeners' certificate settings.
type TLSOptions struct {
	// CertFile and KeyFile are PEM files: the server's certificate (with
	// its intermediates after it) and its private key.
	CertFile, KeyFile string
	// ClientCAFile is a PEM bundle of the CAs a client certificate must
	// chain to; needed unless ClientAuth is none.
	ClientCAFile string
	// ClientAuth is one of the ClientAuth constants; empty means none.
	ClientAuth string
}

// ServerTLS is a loaded server configuration, shared by the TLS and WSS
// listeners.
type ServerTLS struct {
	conf *tls.Config
}

// maxRSABits caps the RSA keys accepted in client certificates, as
// crypto/tls has done since Go 1.21 (CVE-2023-29409): verifying a
// signature by a huge key costs the server seconds of CPU.
const maxRSABits = 8192

// cipherSuites are crypto/tls's default TLS 1.2 suites as of Go 1.26, in
// its order: ECDHE key exchange only, AEADs first, no RC4, 3DES or
// CBC-SHA256. llib's own defaults are Go 1.16's, which still include RSA
// key exchange and 3DES. TestTLSMatchesGoDefaults checks this list against
// the crypto/tls the broker is built with. TLS 1.3 suites are not
// configurable; llib's are the same three as Go's.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// LoadServerTLS reads the certificate files and builds the configuration:
// TLS 1.2 at least, Go's default suites, no session tickets.
func LoadServerTLS(o TLSOptions) (*ServerTLS, error) {
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	conf := &tls.Config{
		Certificates:             []tls.Certificate{cert},
		MinVersion:               tls.VersionTLS12,
		CipherSuites:             cipherSuites,
		PreferServerCipherSuites: true,
		// Go's curves before it added post-quantum hybrids (Go 1.24),
		// which llib does not have.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521},
		// Resumption is the least exercised path of llib's rewritten
		// handshake, and its TLS 1.3 tickets lack the fix for
		// CVE-2022-30629; an MQTT client reconnects rarely enough that a
		// full handshake is no burden.
		SessionTicketsDisabled: true,
		// Dynamic record sizing helps web pages render early; MQTT
		// packets gain nothing from being cut into smaller records.
		DynamicRecordSizingDisabled: true,
	}
	switch o.ClientAuth {
	case "", ClientAuthNone:
		if o.ClientCAFile != "" {
			return nil, errors.New("tls: a client CA file needs client auth optional or require")
		}
	case ClientAuthOptional, ClientAuthRequire:
		if o.ClientCAFile == "" {
			return nil, fmt.Errorf("tls: client auth %s needs a client CA file", o.ClientAuth)
		}
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA %s: no PEM certificates", o.ClientCAFile)
		}
		// llib is told only to ask for a certificate; the chain is
		// verified here, with the toolchain's crypto/x509 and the key size
		// checked first, before any signature is.
		conf.ClientAuth = tls.RequestClientCert
		if o.ClientAuth == ClientAuthRequire {
			conf.ClientAuth = tls.RequireAnyClientCert
		}
		conf.VerifyPeerCertificate = verifyClient(roots)
	default:
		return nil, fmt.Errorf("tls: client auth %q: want none, optional or require", o.ClientAuth)
	}
	return &ServerTLS{conf: conf}, nil
}

// verifyClient checks a client's certificate chain against roots. llib
// calls it whenever the client answers the certificate request, with no
// certificates when the client has none (refused earlier when one is
// required).
func verifyClient(roots *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return nil
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, der := range raw {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("tls: client certificate: %w", err)
			}
			if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > maxRSABits {
				return fmt.Errorf("tls: client certificate has a %d-bit RSA key, more than %d", k.N.BitLen(), maxRSABits)
			}
			certs[i] = c
		}
		opts := x509.VerifyOptions{
			Roots:         roots,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := certs[0].Verify(opts); err != nil {
			return fmt.Errorf("tls: client certificate: %w", err)
		}
		return nil
	}
}
