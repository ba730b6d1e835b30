package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
)

// Keys are made once: an RSA key takes a while.
var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	ec384Key *ecdsa.PrivateKey
	edPub    ed25519.PublicKey
	edKey    ed25519.PrivateKey
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if edPub, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// now is the fixed time tests run at.
var now = time.Unix(1_700_000_000, 0)

func clock() time.Time { return now }

// claims are valid claims for the test verifier, to be spoiled by cases.
func claims() *Claims {
	return &Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   "device-1",
		Issuer:    "https://issuer.example",
		Audience:  jwt.ClaimStrings{"coolpy7"},
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
	}}
}

func sign(t testing.TB, m jwt.SigningMethod, k any, c jwt.Claims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemFile(t testing.TB, pubs ...any) string {
	t.Helper()
	var b strings.Builder
	for _, p := range pubs {
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			t.Fatal(err)
		}
		pem.Encode(&b, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	path := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newVerifier(t testing.TB, c Config) *Verifier {
	t.Helper()
	c.Issuer, c.Audience, c.Now = "https://issuer.example", "coolpy7", clock
	v, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	keys(t)
	v := newVerifier(t, Config{Secret: secret, PublicKeyFile: pemFile(t, &rsaKey.PublicKey, &ecKey.PublicKey, &ec384Key.PublicKey, edPub)})
	rsaOnly := newVerifier(t, Config{PublicKeyFile: pemFile(t, &rsaKey.PublicKey)})
	rsaPEM, _ := os.ReadFile(pemFile(t, &rsaKey.PublicKey))
	spoil := func(f func(*Claims)) *Claims { c := claims(); f(c); return c }
	none := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	for _, tc := range []struct {
		name  string
		v     *Verifier
		token string
		want  error // nil for a valid token
	}{
		{"HS256", v, sign(t, jwt.SigningMethodHS256, secret, claims(), ""), nil},
		{"HS384", v, sign(t, jwt.SigningMethodHS384, secret, claims(), ""), nil},
		{"HS512", v, sign(t, jwt.SigningMethodHS512, secret, claims(), ""), nil},
		{"RS256", v, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), ""), nil},
		{"RS512", v, sign(t, jwt.SigningMethodRS512, rsaKey, claims(), ""), nil},
		{"PS256", v, sign(t, jwt.SigningMethodPS256, rsaKey, claims(), ""), nil},
		{"ES256", v, sign(t, jwt.SigningMethodES256, ecKey, claims(), ""), nil},
		{"ES384", v, sign(t, jwt.SigningMethodES384, ec384Key, claims(), ""), nil},
		{"EdDSA", v, sign(t, jwt.SigningMethodEdDSA, edKey, claims(), ""), nil},
		{"RS256 with a kid", v, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "any"), nil},

		{"alg none", v, none, jwt.ErrTokenSignatureInvalid},
		{"wrong secret", v, sign(t, jwt.SigningMethodHS256, []byte("guess"), claims(), ""), jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with the RSA public key, RSA only", rsaOnly, sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), ""), jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with the RSA public key, secret too", v, sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), ""), jwt.ErrTokenSignatureInvalid},
		{"ES256 where only RSA is known", rsaOnly, sign(t, jwt.SigningMethodES256, ecKey, claims(), ""), jwt.ErrTokenSignatureInvalid},
		{"ES512 with a P-256 key's signature", v, strings.Replace(sign(t, jwt.SigningMethodES256, ecKey, claims(), ""), "eyJhbGciOiJFUzI1NiIs", "eyJhbGciOiJFUzUxMiIs", 1), jwt.ErrTokenSignatureInvalid},
		{"RS256 by another key", v, sign(t, jwt.SigningMethodRS256, rsaKey2, claims(), ""), jwt.ErrTokenSignatureInvalid},
		{"expired", v, sign(t, jwt.SigningMethodHS256, secret, spoil(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }), ""), jwt.ErrTokenExpired},
		{"no exp", v, sign(t, jwt.SigningMethodHS256, secret, spoil(func(c *Claims) { c.ExpiresAt = nil }), ""), jwt.ErrTokenRequiredClaimMissing},
		{"not yet valid", v, sign(t, jwt.SigningMethodHS256, secret, spoil(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) }), ""), jwt.ErrTokenNotValidYet},
		{"wrong audience", v, sign(t, jwt.SigningMethodHS256, secret, spoil(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), ""), jwt.ErrTokenInvalidAudience},
		{"no audience", v, sign(t, jwt.SigningMethodHS256, secret, spoil(func(c *Claims) { c.Audience = nil }), ""), jwt.ErrTokenRequiredClaimMissing},
		{"wrong issuer", v, sign(t, jwt.SigningMethodHS256, secret, spoil(func(c *Claims) { c.Issuer = "https://evil.example" }), ""), jwt.ErrTokenInvalidIssuer},
		{"malformed", v, "a.b.c", jwt.ErrTokenMalformed},
	} {
		_, err := tc.v.Verify(tc.token)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestTamper: changing the payload of a signed token breaks it.
func TestTamper(t *testing.T) {
	v := newVerifier(t, Config{Secret: secret})
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(), "")
	parts := strings.Split(tok, ".")
	c := claims()
	c.Subject = "admin"
	body, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(body)
	if _, err := v.Verify(strings.Join(parts, ".")); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("tampered token: %v", err)
	}
}

func TestLeeway(t *testing.T) {
	c := claims()
	c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second))
	tok := sign(t, jwt.SigningMethodHS256, secret, c, "")
	if _, err := newVerifier(t, Config{Secret: secret, Leeway: 30 * time.Second}).Verify(tok); err != nil {
		t.Errorf("within leeway: %v", err)
	}
}

func TestNew(t *testing.T) {
	keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	priv := filepath.Join(t.TempDir(), "priv.pem")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("no pem here"), 0o600)
	for _, c := range []Config{
		{},
		{PublicKeyFile: filepath.Join(t.TempDir(), "missing")},
		{PublicKeyFile: pemFile(t, &small.PublicKey)},
		{PublicKeyFile: priv},
		{PublicKeyFile: empty},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	// A certificate's key will do.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"}, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	v := newVerifier(t, Config{PublicKeyFile: cert})
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, ecKey, claims(), "")); err != nil {
		t.Errorf("key from a certificate: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	keys(t)
	v := newVerifier(t, Config{Secret: secret, PublicKeyFile: pemFile(t, &rsaKey.PublicKey)})
	ctx := context.Background()
	withACL := claims()
	withACL.ACL = &acl.Grant{Pub: []string{"devices/%c/#"}, Sub: []string{"cmd/%c"}}
	withACL.ClientID = "c1"
	badACL := claims()
	badACL.ACL = &acl.Grant{Pub: []string{"a/#/b"}}

	hs := sign(t, jwt.SigningMethodHS256, secret, withACL, "")
	r, ok := v.AuthenticateQuick(&auth.ConnectInfo{ClientID: "c1", Username: "whatever", Password: []byte(hs)})
	if !ok || r.Decision != auth.Allow || r.Username != "device-1" || !r.Expires.Equal(now.Add(time.Hour)) || r.Rules == nil {
		t.Fatalf("HS256 token: %+v ok=%v", r, ok)
	}
	a := r.ACL(nil, "c1")
	if !a.CanPublish("devices/c1/t") || a.CanPublish("devices/c2/t") || a.Subscribe("cmd/+") == acl.SubGranted {
		t.Error("token ACL not applied")
	}
	if r, _ := v.AuthenticateQuick(&auth.ConnectInfo{ClientID: "c2", Password: []byte(hs)}); r.Decision != auth.Deny || r.Reason != auth.NotAuthorized {
		t.Errorf("token used with another client ID: %+v", r)
	}
	rs := sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "")
	if _, ok := v.AuthenticateQuick(&auth.ConnectInfo{Password: []byte(rs)}); ok {
		t.Error("RS256 token answered on the quick path")
	}
	if r := v.Authenticate(ctx, &auth.ConnectInfo{Password: []byte(rs)}); r.Decision != auth.Allow || r.Rules != nil {
		t.Errorf("RS256 token: %+v", r)
	}
	for _, pw := range []string{"", "hunter2", "a.b", "a.b.c d", "x.y.z"} {
		r, ok := v.AuthenticateQuick(&auth.ConnectInfo{Password: []byte(pw)})
		if pw == "x.y.z" {
			if !ok || r.Decision != auth.Deny || r.Reason != auth.BadCredentials {
				t.Errorf("malformed token %q: %+v", pw, r)
			}
			continue
		}
		if !ok || r.Decision != auth.NoOpinion || v.Authenticate(ctx, &auth.ConnectInfo{Password: []byte(pw)}).Decision != auth.NoOpinion {
			t.Errorf("password %q is not a token, yet: %+v", pw, r)
		}
	}
	if r := v.Authenticate(ctx, &auth.ConnectInfo{Password: []byte(sign(t, jwt.SigningMethodHS256, secret, badACL, ""))}); r.Decision != auth.Deny || r.Reason != auth.NotAuthorized {
		t.Errorf("token with an invalid ACL: %+v", r)
	}
	exp := claims()
	exp.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
	if r, _ := v.AuthenticateQuick(&auth.ConnectInfo{Password: []byte(sign(t, jwt.SigningMethodHS256, secret, exp, ""))}); r.Decision != auth.Deny || r.Reason != auth.BadCredentials || r.Err == nil {
		t.Errorf("expired token: %+v", r)
	}
}

// jwksServer serves a key set the test can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	status  int
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.WriteHeader(s.status)
		w.Write([]byte(s.body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, keys ...map[string]string) {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	s.mu.Lock()
	s.body, s.status = string(b), status
	s.mu.Unlock()
}

func b64int(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(k *rsa.PublicKey, kid string) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64int(k.N.Bytes()), "e": b64int(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(k *ecdsa.PublicKey, kid string) map[string]string {
	b, _ := k.Bytes() // 0x04 || X || Y
	n := (len(b) - 1) / 2
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64int(b[1 : 1+n]), "y": b64int(b[1+n:])}
}

func TestJWKS(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t)
	srv.serve(http.StatusOK,
		rsaJWK(&rsaKey.PublicKey, "r1"),
		ecJWK(&ecKey.PublicKey, "e1"),
		map[string]string{"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": b64int(edPub)},
		map[string]string{"kty": "oct", "kid": "s1", "k": b64int(secret)},
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
		map[string]string{"kty": "EC", "kid": "bad", "crv": "P-256", "x": b64int(make([]byte, 32)), "y": b64int(make([]byte, 32))},
	)
	cur := now
	var mu sync.Mutex
	v, err := New(Config{JWKSURL: srv.URL, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return cur }})
	if err != nil {
		t.Fatal(err)
	}
	advance := func(d time.Duration) { mu.Lock(); cur = cur.Add(d); mu.Unlock() }
	ctx := context.Background()
	info := func(tok string) *auth.ConnectInfo { return &auth.ConnectInfo{Password: []byte(tok)} }

	// Before any fetch, the slow path fetches.
	r1 := sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1")
	if _, err := v.Verify(r1); !errors.Is(err, errUnknownKey) {
		t.Fatalf("before fetching: %v", err)
	}
	if r := v.Authenticate(ctx, info(r1)); r.Decision != auth.Allow {
		t.Fatalf("RS256 from JWKS: %+v", r)
	}
	for _, tok := range []string{
		sign(t, jwt.SigningMethodES256, ecKey, claims(), "e1"),
		sign(t, jwt.SigningMethodEdDSA, edKey, claims(), "d1"),
		sign(t, jwt.SigningMethodRS256, rsaKey, claims(), ""), // no kid: any key of the type
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("JWKS key: %v", err)
		}
	}
	for name, tok := range map[string]string{
		"kid of another key type": sign(t, jwt.SigningMethodES256, ecKey, claims(), "r1"),
		"RS384 on an RS256 key":   sign(t, jwt.SigningMethodRS384, rsaKey, claims(), "r1"),
		"HS256 with the oct key":  sign(t, jwt.SigningMethodHS256, secret, claims(), "s1"),
	} {
		if _, err := v.Verify(tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}

	// Key rotation: a token with a new kid makes the slow path fetch, but
	// not more than every minRefetch.
	srv.serve(http.StatusOK, rsaJWK(&rsaKey2.PublicKey, "r2"))
	r2 := sign(t, jwt.SigningMethodRS256, rsaKey2, claims(), "r2")
	if r := v.Authenticate(ctx, info(r2)); r.Decision != auth.Deny {
		t.Fatalf("new kid within minRefetch: %+v", r)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetched again within minRefetch: %d", n)
	}
	advance(minRefetch)
	if r := v.Authenticate(ctx, info(r2)); r.Decision != auth.Allow {
		t.Fatalf("rotated key: %+v", r)
	}
	if _, err := v.Verify(r1); err == nil {
		t.Error("key dropped from the set still verifies")
	}

	// A failed or useless fetch keeps the keys in use.
	srv.serve(http.StatusInternalServerError)
	if err := v.Refresh(ctx); err == nil {
		t.Error("Refresh succeeded on a 500")
	}
	srv.serve(http.StatusOK, map[string]string{"kty": "oct", "k": "AAAA"})
	if err := v.Refresh(ctx); err == nil {
		t.Error("Refresh succeeded with no usable key")
	}
	if _, err := v.Verify(r2); err != nil {
		t.Errorf("keys lost after failed fetches: %v", err)
	}
}

func TestRun(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t)
	srv.serve(http.StatusOK, rsaJWK(&rsaKey.PublicKey, "r1"))
	v, err := New(Config{JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Run(ctx, nil); close(done) }()
	for deadline := time.Now().Add(2 * time.Second); srv.fetches.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh periodically")
		}
	}
	cancel()
	<-done
	// Without a URL, Run has nothing to do.
	(&Verifier{}).Run(context.Background(), nil)
}

func TestInChain(t *testing.T) {
	v := newVerifier(t, Config{Secret: secret})
	c := auth.NewChain(auth.Options{}, v)
	defer c.Close()
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(), "")
	if r, now := c.Check(&auth.ConnectInfo{Username: "any", Password: []byte(tok)}, nil); !now || r.Decision != auth.Allow {
		t.Errorf("HS256 token in a chain: %+v now=%v", r, now)
	}
}

func BenchmarkVerify(b *testing.B) {
	keys(b)
	v := newVerifier(b, Config{Secret: secret, PublicKeyFile: pemFile(b, &rsaKey.PublicKey, &ecKey.PublicKey, edPub)})
	for _, bc := range []struct {
		name string
		m    jwt.SigningMethod
		k    any
	}{
		{"HS256", jwt.SigningMethodHS256, secret},
		{"RS256", jwt.SigningMethodRS256, rsaKey},
		{"ES256", jwt.SigningMethodES256, ecKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey},
	} {
		tok := sign(b, bc.m, bc.k, claims(), "")
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
