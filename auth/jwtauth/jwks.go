package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"
)

// maxJWKS bounds what a JWKS server can make the broker read.
const maxJWKS = 1 << 20

// Refresh fetches the JWKS now. On failure the keys in use stay.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	return v.fetch(ctx)
}

// fetch does the work of Refresh; the caller holds fetchMu.
func (v *Verifier) fetch(ctx context.Context) error {
	v.tried = v.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwtauth: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwtauth: fetching JWKS: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS))
	if err != nil {
		return fmt.Errorf("jwtauth: fetching JWKS: %w", err)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return err
	}
	v.jwks.Store(&keys)
	return nil
}

// refetch fetches the JWKS for a token with a key not in it, unless that
// was tried less than minRefetch ago. It reports whether it fetched.
func (v *Verifier) refetch(ctx context.Context) bool {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	if !v.tried.IsZero() && v.now().Sub(v.tried) < minRefetch {
		return false
	}
	return v.fetch(ctx) == nil
}

// Run fetches the JWKS now and then every JWKSRefresh (every minute while
// fetches fail) until ctx is done, passing errors to onErr, which may be
// nil. Without a JWKSURL it returns at once.
func (v *Verifier) Run(ctx context.Context, onErr func(error)) {
	if v.url == "" {
		return
	}
	for {
		wait := v.every
		if err := v.Refresh(ctx); err != nil {
			if onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
			wait = min(wait, time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// jwk is one JSON Web Key (RFC 7517, 7518 §6, 8037), public members only.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a key set. Keys it cannot use (encryption keys,
// symmetric keys, unknown types or curves) are skipped rather than
// failing the set: one exotic key must not lock every client out. A set
// with no usable key is an error, so it does not replace a good one.
func parseJWKS(data []byte) ([]*key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwtauth: JWKS: %w", err)
	}
	var keys []*key
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, err := j.public()
		if err != nil {
			continue
		}
		if k, err := publicKey(pub, j.Kid, j.Alg); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwtauth: JWKS has no usable signing key")
	}
	return keys, nil
}

var b64 = base64.RawURLEncoding

func (j *jwk) public() (any, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64.DecodeString(j.N)
		if err != nil {
			return nil, err
		}
		e, err := b64.DecodeString(j.E)
		if err != nil {
			return nil, err
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Sign() == 0 || exp.BitLen() > 31 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
	case "EC":
		var c elliptic.Curve
		switch j.Crv {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		x, err := b64.DecodeString(j.X)
		if err != nil {
			return nil, err
		}
		y, err := b64.DecodeString(j.Y)
		if err != nil {
			return nil, err
		}
		size := (c.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		// Parsing the uncompressed point checks that it is on the curve.
		return ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, x...), y...))
	case "OKP":
		x, err := b64.DecodeString(j.X)
		if err != nil {
			return nil, err
		}
		if j.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("unsupported OKP key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported key type")
}
