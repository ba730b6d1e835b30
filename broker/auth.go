package broker

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/auth/jwtauth"
	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/auth/passwd"
	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/hooks/extend"
	"github.com/coolpy7/coolpy7/hooks/webhook"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/transport"
)

// security is the broker's authentication, ACL and anti-abuse state, all
// set up by New from the config and fixed after.
type security struct {
	chain *auth.Chain
	acls  *acl.Store // nil without an ACL file
	bans  limit.Bans
	// noBans reports the ban list empty; with no authenticator, limit or
	// guard either, a CONNECT needs no address and no authentication.
	noBans     func() bool
	chainEmpty bool
	auths      []auth.Authenticator // the chain's, for SetHooks to extend
	rate       *limit.ConnectRate   // nil: no connect-rate limit
	flood      limit.Flood
	floods     bool // -pl or -psl set
	banFor     time.Duration
	fails      *limit.LoginFailures // nil: failed logins ban no one
	failBan    time.Duration
	sweptAt    atomic.Int64 // nanos() of the last sweep of a full ban list
	// guarded: connections need a guard (an ACL other than AllowAll, a
	// token expiry, flood state). Without it the client's guard pointer
	// stays nil and PUBLISH checks nothing.
	guarded bool
	stop    context.CancelFunc // ends the file watchers and the JWKS refresh
}

// authStats are the counters of this file's concerns, in Server.stats.
type authStats struct {
	authFailures, pubDenied, expired atomic.Int64
	floods, bans, rateLimited        atomic.Int64
	hookBusy, hookDenied             atomic.Int64
}

// guard is what a connection keeps for authorisation and flood control,
// allocated at CONNECT only when the broker has some (88 bytes instead of
// a nil pointer).
type guard struct {
	acl     acl.ACL
	flood   limit.FloodState
	expires int64      // coarse tick at which the credentials lapse; 0 never
	user    string     // the identity authentication vouched for, for hooks
	addr    netip.Addr // for hooks
	pend    atomic.Pointer[pending]
}

// install makes g the connection's guard. A connection whose CONNECT was
// decided on a worker has one already, holding its pending input, which
// the event loop may be looking at: that one is filled in instead.
func (c *client) install(g *guard) {
	switch {
	case g == nil:
	case c.guard == nil:
		c.guard = g
	default:
		o := c.guard
		o.acl, o.flood, o.expires, o.user, o.addr = g.acl, g.flood, g.expires, g.user, g.addr
	}
}

var (
	errCredentialsExpired = &packets.Error{Code: packets.MaximumConnectTime, Msg: "credentials expired"}
	errFlood              = &packets.Error{Code: packets.MessageRateTooHigh, Msg: "flood limit broken"}
	errPendingFull        = &packets.Error{Code: packets.QuotaExceeded, Msg: "too much input while a packet is being decided"}
)

// setupSecurity builds the authentication chain, ACL store, limits and
// hooks from the config.
func (s *Server) setupSecurity() error {
	cfg := &s.cfg.AuthConfig
	ctx, cancel := context.WithCancel(context.Background())
	sec := &s.sec
	sec.stop = cancel
	bans, err := openBans(s.store)
	if err != nil {
		s.log.Warn("ban list: some stored bans could not be read", "err", err)
	}
	sec.bans = bans
	sec.noBans = func() bool { return false }
	if e, ok := bans.(interface{ Empty() bool }); ok {
		sec.noBans = e.Empty
	}
	onErr := func(what string) func(error) {
		return func(err error) { s.log.Warn("reload failed", "what", what, "err", err) }
	}
	fail := func(err error) error {
		cancel()
		if s.hookPool != nil {
			s.hookPool.close()
		}
		if c, ok := s.hooks.(interface{ Close() error }); ok {
			c.Close()
		}
		return err
	}

	h, err := s.externalHooks()
	if err != nil {
		return fail(err)
	}
	if h != nil {
		s.SetHooks(h)
	}

	var auths []auth.Authenticator
	if cfg.AllowAnonymous {
		auths = append(auths, auth.Anonymous{})
	}
	if cfg.CertAuth {
		auths = append(auths, auth.CertCN{})
	}
	if cfg.PasswordFile != "" {
		f, err := passwd.Load(cfg.PasswordFile)
		if err != nil {
			return fail(err)
		}
		go f.Watch(ctx, 2*time.Second, onErr("password_file"))
		auths = append(auths, f)
	}
	if cfg.JWTOn() {
		v, err := jwtauth.New(jwtauth.Config{
			Secret: []byte(cfg.JWTSecret), PublicKeyFile: cfg.JWTPublicKey, JWKSURL: cfg.JWTJWKSURL,
			Audience: cfg.JWTAudience, Issuer: cfg.JWTIssuer,
		})
		if err != nil {
			return fail(err)
		}
		if cfg.JWTJWKSURL != "" {
			if err := v.Refresh(ctx); err != nil {
				s.log.Warn("JWKS fetch failed; retrying", "url", cfg.JWTJWKSURL, "err", err)
			}
			go v.Run(ctx, onErr("jwt_jwks_url"))
		}
		auths = append(auths, v)
	}
	if s.hookEv&hooks.Auth != 0 {
		auths = append(auths, hookAuthenticator(s.hooks))
	}
	if cfg.AuthOn() && len(auths) == 0 {
		return fail(errors.New("authentication is on but no authenticator is configured"))
	}
	if len(auths) == 1 && cfg.AllowAnonymous {
		// allow_anonymous alone is no authentication at all.
		auths = nil
	}
	sec.auths = auths
	sec.chain = auth.NewChain(s.chainOptions(), auths...)
	sec.chainEmpty = len(auths) == 0

	if cfg.ACLFile != "" {
		st, err := acl.LoadStore(cfg.ACLFile)
		if err != nil {
			return fail(err)
		}
		go st.Watch(ctx, 2*time.Second, onErr("acl_file"))
		sec.acls = st
	}
	if cfg.PingLimit > 0 {
		sec.flood.MinPing = limit.Every(cfg.PingLimit.Duration(), 1)
		sec.floods = true
	}
	if cfg.PublishLimitMs > 0 {
		sec.flood.MinPublish = limit.Every(time.Duration(cfg.PublishLimitMs)*time.Millisecond, 1)
		sec.floods = true
	}
	sec.banFor = cfg.BanSeconds.Duration()
	s.setupLoginFailures()
	if cfg.ConnectRate > 0 {
		sec.rate = limit.NewConnectRate(limit.RateOptions{Rate: cfg.ConnectRate, Burst: cfg.ConnectBurst})
	}
	// Any authenticator may hand out rules (a token's acl claim, a hook's
	// answer), and tokens expire; only a broker with none of it, no ACL
	// file and no flood rule can skip the guard.
	sec.guarded = len(auths) > 0 || sec.acls != nil || sec.floods
	return nil
}

// chainOptions sizes the chain's workers: GOMAXPROCS for bcrypt, which is
// CPU-bound, but as many as the hook pool when a hook service is in the
// chain, whose calls mostly wait: a slow service must not hold up the
// password checks of everyone else.
func (s *Server) chainOptions() auth.Options {
	o := auth.Options{Bans: s.sec.bans}
	if s.hookEv&hooks.Auth != 0 {
		o.Workers = s.hookWorkers()
	}
	return o
}

// hookAuthenticator is h in the authentication chain. The external hooks
// are authenticators themselves, with a quick path over their cache.
func hookAuthenticator(h Hooks) auth.Authenticator {
	if a, ok := h.(auth.Authenticator); ok {
		return a
	}
	return hooks.Authenticator{H: h}
}

// externalHooks builds the webhook or the extend service client from the
// config; nil when neither is set.
func (s *Server) externalHooks() (hooks.Hooks, error) {
	cfg := &s.cfg.AuthConfig
	down, _ := hooks.ParseDown(cfg.HookDown)
	timeout := time.Duration(cfg.HookTimeoutMs) * time.Millisecond
	cache := cfg.HookCacheSeconds.Duration()
	switch {
	case cfg.WebhookURL != "" && cfg.AuthMode == 2:
		return nil, errors.New("webhook_url and auth_mode 2 (extend service): choose one")
	case cfg.WebhookURL != "":
		return webhook.New(webhook.Config{URL: cfg.WebhookURL, Timeout: timeout, Down: down, CacheTTL: cache}), nil
	case cfg.AuthMode == 2:
		addr := cfg.ExtendAddr
		if addr == "" {
			addr = "localhost:5683"
		}
		return extend.New(extend.Config{Addr: addr, Token: cfg.ExtendToken, Timeout: timeout, Down: down, CacheTTL: cache})
	}
	return nil, nil
}

func (s *Server) closeSecurity() {
	s.sec.chain.Close()
	s.sec.stop()
	if s.hookPool != nil {
		s.hookPool.close()
	}
	if c, ok := s.hooks.(interface{ Close() error }); ok {
		c.Close()
	}
}

// Bans is the broker's ban list, kept in its store: bans added here refuse
// matching CONNECTs (v5 0x8A, v3 5) until they lapse.
func (s *Server) Bans() limit.Bans { return s.sec.bans }

// Authorize runs the same authentication chain and ACL as an MQTT CONNECT,
// blocking while the chain does: for other ways in (HTTP publish). With
// authentication off it allows everyone, with the ACL file's rules if any.
// Failures count towards the login-failure ban of info.Addr.
func (s *Server) Authorize(ctx context.Context, info *auth.ConnectInfo) (auth.Result, acl.ACL) {
	r, a := s.AuthorizeSpoofable(ctx, info)
	if r.Decision != auth.Allow {
		s.loginFailed(info, &r)
	} else {
		s.loginSucceeded(info.Addr)
	}
	return r, a
}

// AuthorizeSpoofable is Authorize for ways in whose source address can be
// forged (CoAP over UDP): its failures do not count towards a ban, or
// anyone could have any address banned.
func (s *Server) AuthorizeSpoofable(ctx context.Context, info *auth.ConnectInfo) (auth.Result, acl.ACL) {
	r := s.sec.chain.Authenticate(ctx, info)
	if r.Decision != auth.Allow {
		return r, acl.ACL{}
	}
	return r, s.aclFor(&r, info.ClientID)
}

func (s *Server) aclFor(r *auth.Result, clientID string) acl.ACL {
	var f *acl.File
	if s.sec.acls != nil {
		f = s.sec.acls.File()
	}
	return r.ACL(f, clientID)
}

// addrOf is the IP address of a connection; the zero Addr when unknown.
func addrOf(c transport.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case interface{ AddrPort() netip.AddrPort }:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}

// authenticate decides a CONNECT, at once or later. It returns the
// result and true when known now; otherwise the connection is suspended
// and a worker finishes the CONNECT with the result (and with the
// OnConnect hook's answer, asked there since a worker may block).
func (s *Server) authenticate(c *client, info *auth.ConnectInfo, id string, assigned bool, fh packets.FixedHeader, body []byte) (auth.Result, bool) {
	if r, ok := s.sec.chain.Quick(info); ok {
		return r, true
	}
	p := c.suspendLocked()
	raw := clone(body)
	// The password may point into the read buffer; the worker needs none.
	in := &auth.ConnectInfo{ClientID: info.ClientID, Username: info.Username, Addr: info.Addr, CertCN: info.CertCN}
	r, now := s.sec.chain.Check(info, func(r auth.Result) {
		var hk hookVerdict
		if r.Decision == auth.Allow && s.hookEv&hooks.Connect != 0 {
			hk = s.hookConnect(in, &r)
		}
		s.finishConnect(c, p, raw, fh, id, assigned, in, r, hk)
	})
	if now {
		c.unsuspend(p)
	}
	return r, now
}

// connectOffloaded asks a blocking OnConnect hook on the hook pool.
func (s *Server) connectOffloaded(c *client, v byte, info *auth.ConnectInfo, r auth.Result, id string, assigned bool, fh packets.FixedHeader, body []byte) error {
	p := c.suspendLocked()
	raw := clone(body)
	in := cloneInfo(info)
	if s.hookPool.submit(func() {
		s.finishConnect(c, p, raw, fh, id, assigned, in, r, s.hookConnect(in, &r))
	}) {
		return errSuspended
	}
	c.unsuspend(p)
	s.stats.hookBusy.Add(1)
	r = auth.Result{Decision: auth.Deny, Reason: auth.ServerBusy}
	return s.refuseAuth(c, v, *info, &r)
}

// finishConnect runs on a worker: it decodes the CONNECT again from its
// copy and goes on with it.
func (s *Server) finishConnect(c *client, p *pending, raw []byte, fh packets.FixedHeader, id string, assigned bool, info *auth.ConnectInfo, r auth.Result, hk hookVerdict) {
	c.resume(p, func() error {
		pk := new(packets.Packet)
		if err := packets.Decode(pk, fh, raw, 0); err != nil {
			return err
		}
		return s.connectWith(c, pk, id, assigned, info, r, hk)
	})
}

func cloneInfo(info *auth.ConnectInfo) *auth.ConnectInfo {
	return &auth.ConnectInfo{ClientID: strings.Clone(info.ClientID), Username: strings.Clone(info.Username),
		Password: clone(info.Password), Addr: info.Addr, CertCN: info.CertCN}
}

// hookVerdict is the OnConnect hook's answer.
type hookVerdict struct{ err error }

// hookConnect asks OnConnect; it may block when the hooks do.
func (s *Server) hookConnect(info *auth.ConnectInfo, r *auth.Result) hookVerdict {
	ctx, cancel := s.hookCtx()
	defer cancel()
	return hookVerdict{s.hooks.OnConnect(ctx, &hooks.Client{ClientID: info.ClientID, Username: r.Username, Addr: info.Addr})}
}

// open reports whether a CONNECT can skip authentication: nothing is
// configured that could refuse it or needs to know who it is.
func (s *Server) open() bool {
	sec := &s.sec
	return sec.chainEmpty && sec.rate == nil && !sec.guarded && s.hooks == nil && sec.noBans()
}

// refuseAuth answers a CONNECT that authentication refused.
func (s *Server) refuseAuth(c *client, v byte, info auth.ConnectInfo, r *auth.Result) error {
	s.stats.authFailures.Add(1)
	s.log.Info("connection refused", "client", info.ClientID, "user", info.Username, "remote", info.Addr,
		"reason", reasonText(r.Reason), "err", r.Err)
	s.loginFailed(&info, r)
	c.connack(v, false, r.Code(v), nil)
	return &packets.Error{Code: r.Code(packets.V5), Msg: "not authorized: " + reasonText(r.Reason)}
}

func reasonText(r auth.Reason) string {
	switch r {
	case auth.BadCredentials:
		return "bad credentials"
	case auth.NotAuthorized:
		return "not authorized"
	case auth.Banned:
		return "banned"
	case auth.ServerBusy:
		return "server busy"
	case auth.RateLimited:
		return "connect rate"
	}
	return "server unavailable"
}

// newGuard makes the guard of an allowed connection, or nil when it needs
// none.
func (s *Server) newGuard(r *auth.Result, clientID string, addr netip.Addr) *guard {
	if !s.sec.guarded && s.hooks == nil {
		return nil
	}
	g := &guard{acl: s.aclFor(r, clientID), user: r.Username, addr: addr}
	if !r.Expires.IsZero() {
		// At least the next tick: the wheel never visits a past bucket,
		// and a token within its leeway may be past exp already.
		now := s.clock.Load()
		g.expires = max(now+int64(time.Until(r.Expires)*ticksPerSecond/time.Second), now) + 1
	}
	if g.acl == acl.AllowAll() && g.expires == 0 && !s.sec.floods && s.hooks == nil {
		return nil
	}
	return g
}

// checkExpired closes a connection whose credentials lapsed.
func (s *Server) checkExpired(c *client, now int64) {
	if c.has(flagClosing) {
		return
	}
	s.stats.expired.Add(1)
	s.log.Info("credentials expired", "client", c.clientID())
	c.fail(errCredentialsExpired)
}

// canPublish applies the ACL and the publish flood rule to an inbound
// PUBLISH; a flood violation is returned as an error, which closes the
// connection.
func (c *client) canPublish(topic []byte) (bool, error) {
	g := c.guard
	if g == nil {
		return true, nil
	}
	s := c.srv
	if s.sec.floods && s.sec.flood.Publish(&g.flood, s.nanos()) != limit.NoViolation {
		return false, c.flooded("publish")
	}
	if g.acl.CanPublish(aclTopic(stringOf(topic))) {
		return true, nil
	}
	s.stats.pubDenied.Add(1)
	return false, nil
}

// pinged applies the ping flood rule.
func (c *client) pinged() error {
	if g := c.guard; g != nil && c.srv.sec.floods && c.srv.sec.flood.Ping(&g.flood, c.srv.nanos()) != limit.NoViolation {
		return c.flooded("ping")
	}
	return nil
}

// flooded bans the client ID for -dt and returns the error that closes it.
func (c *client) flooded(what string) error {
	s := c.srv
	s.stats.floods.Add(1)
	id := c.clientID()
	if s.sec.banFor > 0 && id != "" {
		until := time.Now().Add(s.sec.banFor)
		if err := s.sec.bans.Add(limit.Ban{ClientID: id, Until: until, Reason: what + " flood"}); err == nil {
			s.stats.bans.Add(1)
			s.log.Warn("client banned", "client", id, "reason", what+" flood", "until", until.Format(time.RFC3339))
		}
	}
	return errFlood
}

// nanos is a monotonic clock for the flood rules, in nanoseconds since
// the server started.
func (s *Server) nanos() int64 { return int64(time.Since(s.started)) }

// connectAllowed applies the connect-rate limit.
func (s *Server) connectAllowed(ip netip.Addr) bool {
	if s.sec.rate == nil || !ip.IsValid() {
		return true
	}
	if s.sec.rate.Allow(ip) {
		return true
	}
	s.stats.rateLimited.Add(1)
	return false
}

// banCount is the number of bans in force, for $SYS.
func (s *Server) banCount() int {
	l, err := s.sec.bans.List()
	if err != nil {
		return -1
	}
	return len(l)
}
