// Package jwtauth authenticates clients that send a JSON Web Token as
// their MQTT password, with any username. Tokens are signed with a shared
// secret (HS256/384/512, the original Coolpy7's -jsk) or a private key
// whose public half comes from a PEM file or a JWKS URL (RS*, PS*, ES*,
// EdDSA). Each key verifies only the algorithms of its own type, so "alg":
// "none" and algorithm confusion (an HS256 token "signed" with an RSA
// public key as its secret) are refused. exp is required; nbf, and iss and
// aud when configured, are checked.
//
// The token's subject (sub) is the client's identity for the ACL; its
// optional claims are
//
//	"acl":      {"pub": ["devices/%c/#"], "sub": ["cmd/%c"]}
//	"clientid": "sensor-1"
//
// acl replaces the ACL file's rules for the connection (acl.Grant);
// clientid, when present, is the only client ID the token may connect
// with.
package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
)

// Config says which tokens a Verifier accepts. At least one of Secret,
// PublicKeyFile and JWKSURL is needed.
type Config struct {
	// Secret verifies HS256, HS384 and HS512 tokens.
	Secret []byte
	// PublicKeyFile is a PEM file of PUBLIC KEY, RSA PUBLIC KEY or
	// CERTIFICATE blocks: RSA keys (2048 bits or more) verify RS* and PS*
	// tokens, ECDSA keys ES256, ES384 or ES512 by their curve, Ed25519
	// keys EdDSA.
	PublicKeyFile string
	// JWKSURL is where to fetch a JSON Web Key Set of such public keys
	// (Refresh, Run). A token whose kid is not in the set makes the slow
	// path fetch it again, at most every 30 s.
	JWKSURL string
	// JWKSRefresh is how often Run fetches the set; default 10 minutes.
	JWKSRefresh time.Duration
	// HTTPClient fetches the set; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Issuer and Audience, when set, must be the token's iss and among
	// its aud.
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed when checking exp and nbf.
	Leeway time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Claims are the claims a token may carry.
type Claims struct {
	jwt.RegisteredClaims
	ACL      *acl.Grant `json:"acl,omitempty"`
	ClientID string     `json:"clientid,omitempty"`
}

// Verifier checks tokens. It is an auth.QuickAuthenticator: HMAC tokens
// (microseconds) are answered at once, public-key ones (tens of
// microseconds each, and perhaps a JWKS fetch) on the Chain's workers.
type Verifier struct {
	static  []*key
	jwks    atomic.Pointer[[]*key]
	url     string
	every   time.Duration
	client  *http.Client
	now     func() time.Time
	parser  *jwt.Parser
	fetchMu sync.Mutex // one JWKS fetch at a time
	tried   time.Time  // last fetch attempt, under fetchMu
}

// key is a verification key and the algorithms it may verify.
type key struct {
	kid  string // "" matches any token's kid
	pub  any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []string
}

var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	edAlgs   = []string{"EdDSA"}
)

// ecAlgs is the one algorithm a curve's keys verify: RFC 7518 §3.4 ties
// ES256 to P-256 and so on.
func ecAlgs(c elliptic.Curve) []string {
	switch c {
	case elliptic.P256():
		return []string{"ES256"}
	case elliptic.P384():
		return []string{"ES384"}
	case elliptic.P521():
		return []string{"ES512"}
	}
	return nil
}

// minRSABits refuses RSA keys short enough to be factored.
const minRSABits = 2048

// minRefetch spaces the fetches a token with an unknown kid can cause,
// so a stream of made-up kids cannot turn the broker against the JWKS
// server.
const minRefetch = 30 * time.Second

var (
	errUnknownKey = errors.New("jwtauth: no key for this token (yet)")
	errSlow       = errors.New("jwtauth: public-key token, not for the quick path")
)

// New makes a Verifier. With a JWKSURL it has no JWKS keys until Refresh
// or Run fetches them; tokens needing them go to the slow path, which
// fetches.
func New(c Config) (*Verifier, error) {
	v := &Verifier{url: c.JWKSURL, every: c.JWKSRefresh, client: c.HTTPClient, now: c.Now}
	if v.every <= 0 {
		v.every = 10 * time.Minute
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if len(c.Secret) > 0 {
		v.static = append(v.static, &key{pub: slices.Clone(c.Secret), algs: hmacAlgs})
	}
	if c.PublicKeyFile != "" {
		keys, err := loadPEM(c.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.static = append(v.static, keys...)
	}
	if len(v.static) == 0 && v.url == "" {
		return nil, errors.New("jwtauth: no secret, public key file or JWKS URL")
	}
	v.jwks.Store(&[]*key{})
	var methods []string
	for _, k := range v.static {
		methods = append(methods, k.algs...)
	}
	if v.url != "" {
		methods = append(methods, rsaAlgs...)
		methods = append(methods, "ES256", "ES384", "ES512", "EdDSA")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(v.now),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func loadPEM(path string) ([]*key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []*key
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		var pub any
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("jwtauth: %s: %s block: want public keys or certificates only", path, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("jwtauth: %s: %w", path, err)
		}
		k, err := publicKey(pub, "", "")
		if err != nil {
			return nil, fmt.Errorf("jwtauth: %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwtauth: %s: no PEM public key", path)
	}
	return keys, nil
}

// publicKey wraps a public key with the algorithms its type allows,
// narrowed to alg when that is set (a JWK's "alg").
func publicKey(pub any, kid, alg string) (*key, error) {
	k := &key{kid: kid, pub: pub}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, want %d or more", p.N.BitLen(), minRSABits)
		}
		k.algs = rsaAlgs
	case *ecdsa.PublicKey:
		if k.algs = ecAlgs(p.Curve); k.algs == nil {
			return nil, errors.New("ECDSA key on an unsupported curve")
		}
	case ed25519.PublicKey:
		k.algs = edAlgs
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
	if alg != "" {
		if !slices.Contains(k.algs, alg) {
			return nil, fmt.Errorf("key %q: alg %s does not fit its type", kid, alg)
		}
		k.algs = []string{alg}
	}
	return k, nil
}

// keyFunc picks the keys that may verify t: those whose type allows t's
// algorithm and whose kid, if both have one, is t's. quick refuses
// public-key algorithms, which belong on the slow path.
func (v *Verifier) keyFunc(quick bool) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		if quick && !slices.Contains(hmacAlgs, alg) {
			return nil, errSlow
		}
		kid, _ := t.Header["kid"].(string)
		var found []jwt.VerificationKey
		for _, ks := range [][]*key{v.static, *v.jwks.Load()} {
			for _, k := range ks {
				if slices.Contains(k.algs, alg) && (k.kid == "" || kid == "" || k.kid == kid) {
					found = append(found, k.pub)
				}
			}
		}
		switch len(found) {
		case 0:
			if v.url != "" {
				return nil, errUnknownKey
			}
			return nil, fmt.Errorf("jwtauth: no key verifies %s", alg)
		case 1:
			return found[0], nil
		}
		return jwt.VerificationKeySet{Keys: found}, nil
	}
}

// Verify checks token's signature and claims with the keys at hand and
// returns its claims. It never fetches keys.
func (v *Verifier) Verify(token string) (*Claims, error) {
	return v.verify(token, false)
}

func (v *Verifier) verify(token string, quick bool) (*Claims, error) {
	c := &Claims{}
	if _, err := v.parser.ParseWithClaims(token, c, v.keyFunc(quick)); err != nil {
		return nil, err
	}
	return c, nil
}

// looksLikeJWT tells a token from a password: three base64url segments.
// A password that is not one is none of this authenticator's business.
func looksLikeJWT(p []byte) bool {
	if len(p) < 5 || strings.Count(string(p), ".") != 2 {
		return false
	}
	for _, b := range p {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// AuthenticateQuick implements auth.QuickAuthenticator: it answers for
// passwords that are not tokens and for HMAC tokens.
func (v *Verifier) AuthenticateQuick(c *auth.ConnectInfo) (auth.Result, bool) {
	if !looksLikeJWT(c.Password) {
		return auth.Result{}, true
	}
	claims, err := v.verify(string(c.Password), true)
	if errors.Is(err, errSlow) || errors.Is(err, errUnknownKey) {
		return auth.Result{}, false
	}
	return v.result(c, claims, err), true
}

// Authenticate implements auth.Authenticator. A token signed with a key
// it does not know makes it fetch the JWKS again, unless it did so less
// than 30 s ago.
func (v *Verifier) Authenticate(ctx context.Context, c *auth.ConnectInfo) auth.Result {
	if !looksLikeJWT(c.Password) {
		return auth.Result{}
	}
	claims, err := v.verify(string(c.Password), false)
	if errors.Is(err, errUnknownKey) && v.refetch(ctx) {
		claims, err = v.verify(string(c.Password), false)
	}
	return v.result(c, claims, err)
}

func (v *Verifier) result(c *auth.ConnectInfo, claims *Claims, err error) auth.Result {
	if err != nil {
		return auth.Result{Decision: auth.Deny, Reason: auth.BadCredentials, Err: err}
	}
	if claims.ClientID != "" && claims.ClientID != c.ClientID {
		return auth.Result{Decision: auth.Deny, Reason: auth.NotAuthorized,
			Err: fmt.Errorf("jwtauth: token is for client ID %q, not %q", claims.ClientID, c.ClientID)}
	}
	r := auth.Result{Decision: auth.Allow, Username: claims.Subject, Expires: claims.ExpiresAt.Time}
	if claims.ACL != nil {
		if r.Rules, err = claims.ACL.Compile(); err != nil {
			return auth.Result{Decision: auth.Deny, Reason: auth.NotAuthorized, Err: err}
		}
	}
	return r
}
