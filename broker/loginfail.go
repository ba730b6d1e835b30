package broker

import (
	"errors"
	"net/netip"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/limit"
)

// setupLoginFailures makes the failed-login counter when
// login_fail_limit, login_fail_window and login_fail_ban are all set.
func (s *Server) setupLoginFailures() {
	cfg := &s.cfg.AuthConfig
	if cfg.LoginFailLimit <= 0 || cfg.LoginFailWindow <= 0 || cfg.LoginFailBan <= 0 {
		return
	}
	s.sec.fails = limit.NewLoginFailures(limit.FailureOptions{Limit: cfg.LoginFailLimit, Window: cfg.LoginFailWindow.Duration()})
	s.sec.failBan = cfg.LoginFailBan.Duration()
}

// loginFailed counts a refused CONNECT against its address and bans the
// address when it reached the limit. Only a refusal of who the client is
// counts: not a busy or unreachable authenticator, a rate limit or a ban
// (a banned client retrying would otherwise be banned again the moment
// its ban lapsed), nor a will topic the ACL denies a client that did log
// in.
func (s *Server) loginFailed(info *auth.ConnectInfo, r *auth.Result) {
	f := s.sec.fails
	if f == nil || !info.Addr.IsValid() || r.Reason != auth.BadCredentials && r.Reason != auth.NotAuthorized ||
		errors.Is(r.Err, errWillDenied) {
		return
	}
	p, ban := f.Fail(info.Addr)
	if !ban {
		return
	}
	if s.banListFull() {
		s.log.Debug("ban list full: address not banned", "remote", p)
		return
	}
	until := time.Now().Add(s.sec.failBan)
	if err := s.sec.bans.Add(limit.Ban{IP: p, Until: until, Reason: "login failures"}); err != nil {
		s.log.Warn("ban failed", "remote", p, "err", err)
		return
	}
	s.stats.bans.Add(1)
	s.log.Warn("address banned", "remote", p, "reason", "login failures", "until", until.Format(time.RFC3339))
}

// maxLoginBans bounds the ban list for failed-login bans, which a flood
// from many addresses (IPv6 /64s are plentiful) could otherwise grow by one
// per Limit failures for the whole ban time: ~150 B each in memory.
const maxLoginBans = 65536

// banListFull reports the ban list at maxLoginBans, dropping lapsed bans
// first, at most once a second: a sweep walks the whole list.
func (s *Server) banListFull() bool {
	l, ok := s.sec.bans.(interface {
		Len() int
		Sweep()
	})
	if !ok || l.Len() < maxLoginBans {
		return false
	}
	now, last := s.nanos(), s.sec.sweptAt.Load()
	if now-last >= int64(time.Second) && s.sec.sweptAt.CompareAndSwap(last, now) {
		l.Sweep()
	}
	return l.Len() >= maxLoginBans
}

// loginSucceeded forgets the failures of an address that logged in.
func (s *Server) loginSucceeded(addr netip.Addr) {
	if s.sec.fails != nil && addr.IsValid() {
		s.sec.fails.Succeeded(addr)
	}
}
