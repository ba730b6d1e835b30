package config

import (
	"flag"
	"fmt"
	"net/url"
)

// AuthConfig is authentication, topic ACLs, extension hooks and the
// anti-abuse limits (docs/auth.md). It is embedded in Config, so its keys
// sit at the top level of the file like every other.
type AuthConfig struct {
	// AuthMode is the original's -as: 0 authentication as configured by
	// the keys below (none when none is set), 1 JWT (needs jwt_secret,
	// jwt_public_key or jwt_jwks_url), 2 the CoAP extend service (at
	// extend_addr, default localhost:5683).
	AuthMode int `toml:"auth_mode"`
	// AllowAnonymous lets clients without username and password in once
	// some authentication is configured (-anon); without any, everyone is
	// let in anyway.
	AllowAnonymous bool `toml:"allow_anonymous"`
	// CertAuth lets in TLS clients whose certificate the listener verified
	// (tls_client_auth), with its CN as their identity (-certauth).
	CertAuth bool `toml:"cert_auth"`
	// PasswordFile is a bcrypt password file managed by `coolpy7 passwd`
	// (-passwd); re-read when it changes.
	PasswordFile string `toml:"password_file"`
	// JWTSecret verifies HS256/384/512 tokens sent as the password (-jsk).
	JWTSecret string `toml:"jwt_secret"`
	// JWTPublicKey is a PEM file of RSA, EC or Ed25519 public keys or
	// certificates (-jwtkey); JWTJWKSURL a JSON Web Key Set refreshed every
	// 10 minutes (-jwks).
	JWTPublicKey string `toml:"jwt_public_key"`
	JWTJWKSURL   string `toml:"jwt_jwks_url"`
	// JWTAudience and JWTIssuer, when set, must match the token's aud and
	// iss (-jwtaud, -jwtiss).
	JWTAudience string `toml:"jwt_audience"`
	JWTIssuer   string `toml:"jwt_issuer"`
	// ACLFile is the topic ACL file (-acl); re-read when it changes.
	// Without one (and without ACLs from tokens or hooks) every client may
	// publish and subscribe anywhere but $SYS writes.
	ACLFile string `toml:"acl_file"`
	// WebhookURL is the HTTP hook service's base URL (-webhook): JSON POSTs
	// to /auth, /connect, /sub, /unsub, /pub, /disconnect (docs/auth.md).
	WebhookURL string `toml:"webhook_url"`
	// ExtendAddr is the original's CoAP extend service (-ha), host:port
	// over UDP; ExtendToken the CoAP token it expects (-ht).
	ExtendAddr  string `toml:"extend_addr"`
	ExtendToken string `toml:"extend_token"`
	// HookTimeoutMs bounds one call to an external hook (-hookt).
	HookTimeoutMs int `toml:"hook_timeout_ms"`
	// HookWorkers and HookQueue size the pool blocking hooks run on; a
	// call finding the queue full is answered "busy" at once.
	HookWorkers int `toml:"hook_workers"`
	HookQueue   int `toml:"hook_queue"`
	// HookDown is the answer when an external hook service does not
	// answer: deny (default) or allow (-hookdown).
	HookDown string `toml:"hook_down"`
	// HookCacheSeconds is how long an external hook's "allow" for a login
	// is reused for the same client ID, username, password and address
	// (-hookcache); 0 caches nothing.
	HookCacheSeconds Seconds `toml:"hook_cache"`
	// PingLimit is the minimum interval between a client's PINGREQs, in
	// seconds (-pl); PublishLimitMs between its PUBLISHes, in
	// milliseconds (-psl). A faster client is disconnected (v5: 0x96). 0
	// is no limit.
	PingLimit      Seconds `toml:"ping_limit"`
	PublishLimitMs int     `toml:"publish_limit_ms"`
	// BanSeconds bans a client ID that broke -pl or -psl for that long
	// (-dt); 0 bans no one.
	BanSeconds Seconds `toml:"ban_seconds"`
	// ConnectRate is how many CONNECTs per second one address (IPv6: one
	// /64) may make in the long run, ConnectBurst how many at once (-cr,
	// -cb); 0 is no limit. Refused: v5 CONNACK 0x9F, v3 3.
	ConnectRate  float64 `toml:"connect_rate"`
	ConnectBurst int     `toml:"connect_burst"`
	// LoginFailLimit failed logins (bad credentials, not authorized) from
	// one address (IPv6: one /64) within LoginFailWindow ban it for
	// LoginFailBan (-lfl, -lfw, -lfb): the original's ipblocker, through
	// the ban list instead of iptables. Any of the three 0 turns it off.
	LoginFailLimit  int     `toml:"login_fail_limit"`
	LoginFailWindow Seconds `toml:"login_fail_window"`
	LoginFailBan    Seconds `toml:"login_fail_ban"`
}

func defaultAuth() AuthConfig {
	return AuthConfig{HookTimeoutMs: 2000, HookQueue: 1024, HookCacheSeconds: 60, ConnectBurst: 10,
		LoginFailLimit: 5, LoginFailWindow: 60, LoginFailBan: 1800}
}

// AuthOn reports whether any authenticator is configured, which turns
// anonymous access off unless allow_anonymous.
func (a *AuthConfig) AuthOn() bool {
	return a.CertAuth || a.PasswordFile != "" || a.JWTOn() || a.WebhookURL != "" || a.AuthMode == 2
}

// JWTOn reports whether a JWT key is configured.
func (a *AuthConfig) JWTOn() bool {
	return a.JWTSecret != "" || a.JWTPublicKey != "" || a.JWTJWKSURL != ""
}

func (a *AuthConfig) validate() error {
	switch {
	case a.AuthMode < 0 || a.AuthMode > 2:
		return fmt.Errorf("auth_mode %d: want 0 (as configured), 1 (JWT) or 2 (extend service)", a.AuthMode)
	case a.AuthMode == 1 && !a.JWTOn():
		return fmt.Errorf("auth_mode 1 (JWT) needs jwt_secret, jwt_public_key or jwt_jwks_url")
	case a.AuthMode != 2 && a.ExtendAddr != "":
		return fmt.Errorf("extend_addr is only used with auth_mode 2")
	case a.HookTimeoutMs <= 0:
		return fmt.Errorf("hook_timeout_ms must be positive")
	case a.HookWorkers < 0 || a.HookQueue < 0:
		return fmt.Errorf("hook_workers and hook_queue must not be negative")
	case a.HookCacheSeconds < 0 || a.PingLimit < 0 || a.PublishLimitMs < 0 || a.BanSeconds < 0:
		return fmt.Errorf("hook_cache, ping_limit, publish_limit_ms and ban_seconds must not be negative")
	case a.ConnectRate < 0 || a.ConnectBurst < 0:
		return fmt.Errorf("connect_rate and connect_burst must not be negative")
	case a.LoginFailLimit < 0 || a.LoginFailWindow < 0 || a.LoginFailBan < 0:
		return fmt.Errorf("login_fail_limit, login_fail_window and login_fail_ban must not be negative")
	}
	if _, ok := map[string]bool{"": true, "deny": true, "allow": true}[a.HookDown]; !ok {
		return fmt.Errorf("hook_down %q: want deny or allow", a.HookDown)
	}
	if a.WebhookURL != "" {
		u, err := url.Parse(a.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhook_url %q: want an http or https URL", a.WebhookURL)
		}
	}
	return nil
}

// authFlags binds the auth flags to f and returns what copies a flag given
// on the command line from f to c.
func authFlags(fs *flag.FlagSet, f *AuthConfig) func(name string, c *AuthConfig) {
	d := *f
	fs.IntVar(&f.AuthMode, "as", d.AuthMode, "auth `mode`: 0 as configured (none without keys), 1 JWT (-jsk), 2 CoAP extend service (-ha)")
	fs.BoolVar(&f.AllowAnonymous, "anon", d.AllowAnonymous, "let clients without credentials in when authentication is on")
	fs.BoolVar(&f.CertAuth, "certauth", d.CertAuth, "authenticate TLS clients by their verified certificate's CN")
	fs.StringVar(&f.PasswordFile, "passwd", d.PasswordFile, "bcrypt password `file` (coolpy7 passwd)")
	fs.StringVar(&f.JWTSecret, "jsk", d.JWTSecret, "JWT HMAC `secret` (token in the CONNECT password)")
	fs.StringVar(&f.JWTPublicKey, "jwtkey", d.JWTPublicKey, "PEM `file` of JWT public keys (RS/PS/ES/EdDSA)")
	fs.StringVar(&f.JWTJWKSURL, "jwks", d.JWTJWKSURL, "JWKS `URL` of JWT public keys")
	fs.StringVar(&f.JWTAudience, "jwtaud", d.JWTAudience, "required JWT `audience`")
	fs.StringVar(&f.JWTIssuer, "jwtiss", d.JWTIssuer, "required JWT `issuer`")
	fs.StringVar(&f.ACLFile, "acl", d.ACLFile, "topic ACL `file`")
	fs.StringVar(&f.WebhookURL, "webhook", d.WebhookURL, "HTTP hook service base `URL`")
	fs.StringVar(&f.ExtendAddr, "ha", d.ExtendAddr, "CoAP extend service `host:port` (-as 2; default localhost:5683)")
	fs.StringVar(&f.ExtendToken, "ht", d.ExtendToken, "CoAP extend service `token`")
	fs.IntVar(&f.HookTimeoutMs, "hookt", d.HookTimeoutMs, "timeout of one external hook call in `ms`")
	fs.StringVar(&f.HookDown, "hookdown", d.HookDown, "answer when a hook service is down: deny or allow")
	fs.IntVar((*int)(&f.HookCacheSeconds), "hookcache", int(d.HookCacheSeconds), "`seconds` a hook service's login allow is cached; 0 is off")
	fs.IntVar((*int)(&f.PingLimit), "pl", int(d.PingLimit), "minimum `seconds` between a client's PINGREQs; 0 is no limit")
	fs.IntVar(&f.PublishLimitMs, "psl", d.PublishLimitMs, "minimum `ms` between a client's PUBLISHes; 0 is no limit")
	fs.IntVar((*int)(&f.BanSeconds), "dt", int(d.BanSeconds), "`seconds` a client breaking -pl/-psl is banned; 0 is no ban")
	fs.Float64Var(&f.ConnectRate, "cr", d.ConnectRate, "CONNECTs per second allowed per address; 0 is no limit")
	fs.IntVar(&f.ConnectBurst, "cb", d.ConnectBurst, "CONNECTs an address may make at once (with -cr)")
	fs.IntVar(&f.LoginFailLimit, "lfl", d.LoginFailLimit, "failed logins from an address within -lfw that ban it for -lfb; 0 is off")
	fs.IntVar((*int)(&f.LoginFailWindow), "lfw", int(d.LoginFailWindow), "`seconds` in which -lfl failed logins ban an address")
	fs.IntVar((*int)(&f.LoginFailBan), "lfb", int(d.LoginFailBan), "`seconds` an address with -lfl failed logins is banned")
	return func(name string, c *AuthConfig) {
		switch name {
		case "as":
			c.AuthMode = f.AuthMode
		case "anon":
			c.AllowAnonymous = f.AllowAnonymous
		case "certauth":
			c.CertAuth = f.CertAuth
		case "passwd":
			c.PasswordFile = f.PasswordFile
		case "jsk":
			c.JWTSecret = f.JWTSecret
		case "jwtkey":
			c.JWTPublicKey = f.JWTPublicKey
		case "jwks":
			c.JWTJWKSURL = f.JWTJWKSURL
		case "jwtaud":
			c.JWTAudience = f.JWTAudience
		case "jwtiss":
			c.JWTIssuer = f.JWTIssuer
		case "acl":
			c.ACLFile = f.ACLFile
		case "webhook":
			c.WebhookURL = f.WebhookURL
		case "ha":
			c.ExtendAddr = f.ExtendAddr
		case "ht":
			c.ExtendToken = f.ExtendToken
		case "hookt":
			c.HookTimeoutMs = f.HookTimeoutMs
		case "hookdown":
			c.HookDown = f.HookDown
		case "hookcache":
			c.HookCacheSeconds = f.HookCacheSeconds
		case "pl":
			c.PingLimit = f.PingLimit
		case "psl":
			c.PublishLimitMs = f.PublishLimitMs
		case "dt":
			c.BanSeconds = f.BanSeconds
		case "cr":
			c.ConnectRate = f.ConnectRate
		case "cb":
			c.ConnectBurst = f.ConnectBurst
		case "lfl":
			c.LoginFailLimit = f.LoginFailLimit
		case "lfw":
			c.LoginFailWindow = f.LoginFailWindow
		case "lfb":
			c.LoginFailBan = f.LoginFailBan
		}
	}
}
