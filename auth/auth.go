// Package auth decides who may connect. Authenticators (anonymous access,
// a password file, JWTs, a TLS client certificate, later webhooks and
// others) are asked in order by a Chain; the first that gives a definite
// answer decides. The Chain never blocks the caller: what can be decided
// at once is, the rest runs on a bounded pool of workers.
//
// Subpackages: acl (topic access), passwd (password files), jwtauth (JSON
// Web Tokens), limit (connect rates, flood rules, bans).
package auth

import (
	"context"
	"net/netip"
	"time"

	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/packets"
)

// Decision is an authenticator's answer.
type Decision uint8

const (
	// NoOpinion: not this authenticator's business (an unknown user, a
	// password that is not a token); the next one is asked.
	NoOpinion Decision = iota
	// Allow lets the client in.
	Allow
	// Deny refuses it; Result.Reason says why.
	Deny
)

// Reason is why a connection is refused, which decides the CONNACK code.
type Reason uint8

const (
	// BadCredentials: wrong password, invalid or expired token.
	BadCredentials Reason = iota + 1
	// NotAuthorized: valid credentials that do not grant access, or none
	// where some are needed.
	NotAuthorized
	// Banned: the client's address or client ID is on the ban list.
	Banned
	// ServerBusy: too many connections are waiting to be authenticated.
	ServerBusy
	// ServerUnavailable: an authentication backend did not answer, or the
	// chain is closed.
	ServerUnavailable
	// RateLimited: the address connects too often (limit.ConnectRate).
	RateLimited
)

// Code is the CONNACK code that refuses a connection of protocol level
// (packets.V31, V311 or V5) for reason r. MQTT 3 has no codes for a ban
// or a rate limit, so those become "not authorized" and "server
// unavailable".
func (r Reason) Code(level byte) byte {
	if level == packets.V5 {
		switch r {
		case BadCredentials:
			return packets.BadUsernameOrPassword
		case NotAuthorized:
			return packets.NotAuthorized
		case Banned:
			return packets.Banned
		case ServerBusy:
			return packets.ServerBusy
		case RateLimited:
			return packets.ConnectionRateExceeded
		}
		return packets.ServerUnavailable
	}
	switch r {
	case BadCredentials:
		return packets.V3BadUsernameOrPassword
	case NotAuthorized, Banned:
		return packets.V3NotAuthorized
	}
	return packets.V3ServerUnavailable
}

// ConnectInfo is what the broker knows about a client when its CONNECT
// arrives.
type ConnectInfo struct {
	ClientID string
	Username string
	// Password is the CONNECT password: a password or a JWT. It may point
	// into the broker's read buffer; Chain.Check copies it before handing
	// it to another goroutine, as it does the strings.
	Password []byte
	// Addr is the client's IP address.
	Addr netip.Addr
	// CertCN is the Subject Common Name of the client's TLS certificate,
	// only when the listener verified it against the configured CAs
	// (transport.CommonName); "" otherwise.
	CertCN string
}

// anonymous reports whether the client sent no credentials at all.
func (c *ConnectInfo) anonymous() bool { return c.Username == "" && len(c.Password) == 0 }

// Result is the outcome of authenticating one connection.
type Result struct {
	Decision Decision
	// Reason is set when Decision is Deny.
	Reason Reason
	// Username is the identity the authenticator vouches for, which %u in
	// ACL rules and per-user ACL sections refer to: the CONNECT username
	// for a password, a token's subject, a certificate's CN, "" for an
	// anonymous client. It is not necessarily the username the client
	// sent.
	Username string
	// Rules, when not nil, are the connection's ACL (from a token or an
	// external service) in place of the ACL file's rules.
	Rules *acl.Set
	// Expires, when not zero, is when the credentials stop being valid (a
	// token's exp): the broker disconnects the client then.
	Expires time.Time
	// Err says what went wrong, for the log; it is never sent to the
	// client.
	Err error
}

// Code is the CONNACK code for r at protocol level: 0 (accepted) for
// Allow.
func (r *Result) Code(level byte) byte {
	if r.Decision == Allow {
		return packets.Success
	}
	return r.Reason.Code(level)
}

// ACL gives the connection's topic ACL: the result's own Rules when it has
// some, else the ACL file's rules for its identity, else, with no ACL file
// (f nil), everything allowed.
func (r *Result) ACL(f *acl.File, clientID string) acl.ACL {
	switch {
	case r.Rules != nil:
		return r.Rules.Bind(r.Username, clientID)
	case f != nil:
		return f.For(r.Username, clientID)
	}
	return acl.AllowAll()
}

// Authenticator is one way of authenticating clients.
type Authenticator interface {
	// Authenticate answers for the client. It may block (bcrypt, network)
	// and should give up when ctx is done; the Chain calls it from its
	// workers, never from the caller of Check.
	Authenticate(ctx context.Context, c *ConnectInfo) Result
}

// QuickAuthenticator is an Authenticator that can often answer without
// blocking: from a cache, or by a check costing microseconds.
type QuickAuthenticator interface {
	Authenticator
	// AuthenticateQuick answers if it can do so at once; ok false means
	// only Authenticate can tell.
	AuthenticateQuick(c *ConnectInfo) (r Result, ok bool)
}

// Anonymous lets in clients that send neither username nor password. It
// has no opinion on any other client. A Chain without it refuses them
// (once any authenticator is configured, anonymous access is off unless
// asked for).
type Anonymous struct{}

// AuthenticateQuick implements QuickAuthenticator.
func (Anonymous) AuthenticateQuick(c *ConnectInfo) (Result, bool) {
	if c.anonymous() {
		return Result{Decision: Allow}, true
	}
	return Result{}, true
}

// Authenticate implements Authenticator.
func (a Anonymous) Authenticate(_ context.Context, c *ConnectInfo) Result {
	r, _ := a.AuthenticateQuick(c)
	return r
}

// CertCN lets in clients that presented a verified TLS client certificate,
// with its Subject Common Name as their identity whatever username they
// sent. It has no opinion on clients without one.
type CertCN struct{}

// AuthenticateQuick implements QuickAuthenticator.
func (CertCN) AuthenticateQuick(c *ConnectInfo) (Result, bool) {
	if c.CertCN == "" {
		return Result{}, true
	}
	return Result{Decision: Allow, Username: c.CertCN}, true
}

// Authenticate implements Authenticator.
func (a CertCN) Authenticate(_ context.Context, c *ConnectInfo) Result {
	r, _ := a.AuthenticateQuick(c)
	return r
}
