package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/auth/passwd"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

// adminFile is the file in data_dir that keeps the generated admin
// password's bcrypt hash, in the password-file format.
const adminFile = "admin.passwd"

// tokenTTL is how long an admin bearer token is valid.
const tokenTTL = 12 * time.Hour

// adminAuth checks the admin login and issues and verifies bearer tokens.
// Tokens are HS256 JWTs under a key made at random per process: a restart
// logs everyone out, and no key is ever configured or stored.
type adminAuth struct {
	user  string
	pw    *passwd.File
	key   []byte
	now   func() time.Time
	parse *jwt.Parser
}

// newAdminAuth sets up the admin login. A configured admin_password is
// used as is. Otherwise the password is generated at first start, printed
// once, and only its hash kept in data_dir, so that the broker never runs
// with a known default password and never prints it twice.
func newAdminAuth(cfg config.Config, log *slog.Logger) (*adminAuth, error) {
	a := &adminAuth{user: cfg.AdminUser, key: make([]byte, 32), now: time.Now,
		parse: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("CP7"), jwt.WithExpirationRequired())}
	rand.Read(a.key)
	if cfg.AdminPassword != "" {
		a.pw = passwd.New("")
		return a, a.pw.Add(a.user, cfg.AdminPassword)
	}
	if cfg.DataDir == "" {
		pw := newPassword()
		a.pw = passwd.New("")
		log.Warn("admin password generated for this run only (no data_dir to keep it in); set admin_password to choose one",
			"user", a.user, "password", pw)
		return a, a.pw.Add(a.user, pw)
	}
	path := filepath.Join(cfg.DataDir, adminFile)
	f, err := passwd.Load(path)
	switch {
	case err == nil:
		if len(f.Users()) != 1 || f.Users()[0] != a.user {
			return nil, fmt.Errorf("%s holds no password for admin_user %q: delete it to generate one, or set admin_password", path, a.user)
		}
		a.pw = f
		return a, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	pw := newPassword()
	a.pw = passwd.New(path)
	if err := a.pw.Add(a.user, pw); err != nil {
		return nil, err
	}
	if err := a.pw.Save(); err != nil {
		return nil, err
	}
	log.Warn("admin password generated; it is shown only this once, its hash is in "+path+" (delete the file to generate another, or set admin_password)",
		"user", a.user, "password", pw)
	return a, nil
}

func newPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *adminAuth) login(user, password string) (string, time.Time, bool) {
	ok := subtle.ConstantTimeCompare([]byte(user), []byte(a.user)) == 1
	if a.pw.Check(a.user, []byte(password)) != auth.Allow || !ok {
		return "", time.Time{}, false
	}
	exp := a.now().Add(tokenTTL)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: user, Audience: jwt.ClaimStrings{"CP7"}, IssuedAt: jwt.NewNumericDate(a.now()), ExpiresAt: jwt.NewNumericDate(exp),
	})
	s, err := t.SignedString(a.key)
	return s, exp, err == nil
}

func (a *adminAuth) valid(token string) bool {
	_, err := a.parse.Parse(token, func(*jwt.Token) (any, error) { return a.key, nil })
	return err == nil
}

func bearer(r *http.Request) string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *Server) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.admin.valid(bearer(r)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="coolpy7"`)
			fail(w, http.StatusUnauthorized, "admin bearer token missing, invalid or expired; POST /api/login")
			return
		}
		next(w, r)
	}
}

// sysOrAdmin opens /sys and /brokers with ?token=sys_token, as the
// original did, or with an admin bearer token.
func (s *Server) sysOrAdmin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := query(r).Get("token")
		sysOK := s.cfg.SysToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.SysToken)) == 1
		if !sysOK && !s.admin.valid(bearer(r)) && !s.admin.valid(tok) {
			fail(w, http.StatusUnauthorized, "token error")
			return
		}
		next(w, r)
	}
}

type loginRequest struct {
	Username string `json:"username"`
	UserName string `json:"userName"` // the original admin UI's spelling
	Password string `json:"password"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	user := req.Username
	if user == "" {
		user = req.UserName
	}
	tok, exp, ok := s.admin.login(user, req.Password)
	if !ok {
		s.metrics.adminLoginFailures.Add(1)
		fail(w, http.StatusUnauthorized, "wrong username or password")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "token": tok, "type": "Bearer", "expires_at": exp.UTC().Format(time.RFC3339)})
}

// page reads the original admin UI's pagination (current from 1,
// pageSize); pageSize 0 means all.
func page(q url.Values) (current, size int, err error) {
	current, size = 1, 0
	if v := q.Get("current"); v != "" {
		if current, err = strconv.Atoi(v); err != nil || current < 1 {
			return 0, 0, errors.New("current must be a positive integer")
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 10000 {
			return 0, 0, errors.New("pageSize must be 1..10000")
		}
	}
	return current, size, nil
}

// pageBody is the original admin API's list answer.
type pageBody struct {
	Success  bool `json:"success"`
	Current  int  `json:"current"`
	PageSize int  `json:"pageSize"`
	Total    int  `json:"total"`
	Data     any  `json:"data"`
}

func paginate[T any](all []T, current, size int) []T {
	if size == 0 {
		return all
	}
	from := min((current-1)*size, len(all))
	return all[from:min(from+size, len(all))]
}

var pageParams = []param{{name: "current", desc: "page number from 1"}, {name: "pageSize", desc: "entries per page, 1..10000; all when absent"}}

func (s *Server) clients(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	current, size, err := page(q)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	f := broker.ClientFilter{IDPrefix: q.Get("client_id"), Remote: q.Get("ip")}
	switch q.Get("status") {
	case "":
	case "connected", "offline":
		c := q.Get("status") == "connected"
		f.Connected = &c
	default:
		fail(w, http.StatusBadRequest, "status must be connected or offline")
		return
	}
	offset, limit := 0, 0
	if size > 0 {
		offset, limit = (current-1)*size, size
	}
	list, total := s.b.Clients(f, offset, limit)
	writeJSON(w, http.StatusOK, pageBody{true, current, size, total, list})
}

func (s *Server) client(w http.ResponseWriter, r *http.Request) {
	ci, ok := s.b.Client(r.PathValue("id"))
	if !ok {
		fail(w, http.StatusNotFound, "no such client")
		return
	}
	writeJSON(w, http.StatusOK, ci)
}

func (s *Server) kick(w http.ResponseWriter, r *http.Request) {
	if !s.b.Kick(r.PathValue("id")) {
		fail(w, http.StatusNotFound, "no such connected client")
		return
	}
	writeOK(w)
}

func (s *Server) clientSubscriptions(w http.ResponseWriter, r *http.Request) {
	subs, ok := s.b.Subscriptions(r.PathValue("id"))
	if !ok {
		fail(w, http.StatusNotFound, "no such client")
		return
	}
	writeJSON(w, http.StatusOK, pageBody{true, 1, 0, len(subs), subs})
}

func (s *Server) topics(w http.ResponseWriter, r *http.Request) {
	current, size, err := page(query(r))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	all := s.b.Topics()
	writeJSON(w, http.StatusOK, pageBody{true, current, size, len(all), paginate(all, current, size)})
}

// groups is GET /api/groups: every shared group ($share/{group}/{filter},
// the original's $share/{group}) and $queue group.
func (s *Server) groups(w http.ResponseWriter, r *http.Request) {
	current, size, err := page(query(r))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	all := s.b.SharedGroups()
	writeJSON(w, http.StatusOK, pageBody{true, current, size, len(all), paginate(all, current, size)})
}

// retainedJSON shows a retained message; the payload is base64 because
// it is bytes.
type retainedJSON struct {
	Topic    string     `json:"topic"`
	QoS      byte       `json:"qos"`
	Payload  string     `json:"payload"`
	Encoding string     `json:"encoding"`
	Size     int        `json:"size"`
	Expires  *time.Time `json:"expires,omitempty"`
}

func toRetainedJSON(m broker.RetainedMessage) retainedJSON {
	j := retainedJSON{Topic: m.Topic, QoS: m.QoS, Payload: base64.StdEncoding.EncodeToString(m.Payload), Encoding: "base64", Size: len(m.Payload)}
	if !m.Expires.IsZero() {
		j.Expires = &m.Expires
	}
	return j
}

func (s *Server) retainedList(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	current, size, err := page(q)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	filter := q.Get("topic")
	if filter == "" {
		filter = "#"
	}
	msgs, err := s.b.Retained(filter)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	list := make([]retainedJSON, 0, len(msgs))
	for _, m := range paginate(msgs, current, size) {
		list = append(list, toRetainedJSON(m))
	}
	writeJSON(w, http.StatusOK, pageBody{true, current, size, len(msgs), list})
}

func (s *Server) retainedGet(w http.ResponseWriter, r *http.Request) {
	m, ok := s.b.RetainedGet(r.PathValue("topic"))
	if !ok {
		fail(w, http.StatusNotFound, "no retained message on that topic")
		return
	}
	writeJSON(w, http.StatusOK, toRetainedJSON(m))
}

func (s *Server) retainedDelete(w http.ResponseWriter, r *http.Request) {
	found, err := s.b.RetainedDelete(r.Context(), r.PathValue("topic"))
	switch {
	case err != nil:
		fail(w, http.StatusServiceUnavailable, err.Error())
	case !found:
		fail(w, http.StatusNotFound, "no retained message on that topic")
	default:
		writeOK(w)
	}
}

func (s *Server) runtime(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Runtime())
}

func (s *Server) configHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.b.ConfigRedacted())
}

// statsJSON is Stats with names for JSON.
type statsJSON struct {
	UptimeSeconds     float64          `json:"uptime_seconds"`
	Sockets           int64            `json:"sockets"`
	Connected         int64            `json:"connected"`
	Sessions          int              `json:"sessions"`
	Connects          int64            `json:"connects"`
	Subscriptions     int              `json:"subscriptions"`
	Retained          int              `json:"retained"`
	MessagesIn        [3]int64         `json:"messages_received_by_qos"`
	MessagesOut       [3]int64         `json:"messages_sent_by_qos"`
	BytesIn           int64            `json:"bytes_received"`
	BytesOut          int64            `json:"bytes_sent"`
	Dropped           map[string]int64 `json:"messages_dropped"`
	NoSubscribers     int64            `json:"messages_no_subscribers"`
	SubscribeDenied   int64            `json:"subscriptions_denied"`
	ProtocolErrors    int64            `json:"protocol_errors"`
	ConnectTimeouts   int64            `json:"connect_timeouts"`
	KeepaliveTimeouts int64            `json:"keepalive_timeouts"`
	WriteTimeouts     int64            `json:"write_timeouts"`
	Inflight          int64            `json:"inflight"`
	Queued            int64            `json:"queued"`
	Observers         int              `json:"observers"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st := s.b.Stats()
	drops := map[string]int64{"no_subscribers": st.NoSubscribers, "observer_full": st.ObserverDrops}
	for r, name := range broker.DropReasons {
		drops[name] = st.Dropped[r]
	}
	writeJSON(w, http.StatusOK, statsJSON{
		st.Uptime.Seconds(), st.Sockets, st.Connected, st.Sessions, st.Connects, st.Subscriptions, st.Retained,
		st.MessagesIn, st.MessagesOut, st.BytesIn, st.BytesOut, drops, st.NoSubscribers, st.SubscribeDenied,
		st.ProtocolErrors, st.ConnectTimeouts, st.KeepaliveTimeouts, st.WriteTimeouts, st.Inflight, st.Queued, s.b.Observers(),
	})
}

func sum(a [3]int64) int64 { return a[0] + a[1] + a[2] }

// sys is the original's GET /sys.
func (s *Server) sys(w http.ResponseWriter, r *http.Request) {
	st := s.b.Stats()
	type countMax struct {
		Count int64 `json:"count"`
		Max   int64 `json:"max"`
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"connections":   countMax{st.Connected, int64(st.MaxConnections)},
		"subscriptions": countMax{int64(st.Subscriptions), 0},
		"bytes":         map[string]int64{"sent": st.BytesOut, "received": st.BytesIn},
		"messages":      map[string]int64{"sent": sum(st.MessagesOut), "received": sum(st.MessagesIn), "retained": int64(st.Retained)},
	})
}

// system is the later admin API's flat form of /sys.
func (s *Server) system(w http.ResponseWriter, r *http.Request) {
	st := s.b.Stats()
	writeJSON(w, http.StatusOK, map[string]int64{
		"connections_count": st.Connected, "connections_max": int64(st.MaxConnections),
		"subscriptions_count": int64(st.Subscriptions), "subscriptions_max": 0,
		"bytes_received": st.BytesIn, "bytes_sent": st.BytesOut,
		"messages_received": sum(st.MessagesIn), "messages_sent": sum(st.MessagesOut), "messages_retained": int64(st.Retained),
	})
}

type brokerJSON struct {
	Addr     string `json:"addr"`
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Version  string `json:"version"`
	Uptime   int64  `json:"uptime"`
	Datetime string `json:"datetime"`
	IsLocal  bool   `json:"is_local"`
}

// members lists the brokers of the cluster: this one, until clustering
// exists.
func (s *Server) members() []brokerJSON {
	rt := s.b.Runtime()
	host, port := "", 0
	if a := s.b.Addr(); a != "" {
		if h, p, err := net.SplitHostPort(a); err == nil {
			host = h
			port, _ = strconv.Atoi(p)
		}
	}
	name, _ := os.Hostname()
	return []brokerJSON{{Addr: host, Name: name, Port: port, Version: rt.Version, Uptime: int64(rt.Uptime),
		Datetime: time.Now().Format(time.RFC3339), IsLocal: true}}
}

func (s *Server) brokers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.members())
}

func (s *Server) apiBrokers(w http.ResponseWriter, r *http.Request) {
	current, size, err := page(query(r))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	m := s.members()
	writeJSON(w, http.StatusOK, pageBody{true, current, size, len(m), paginate(m, current, size)})
}

type banJSON struct {
	IP       string     `json:"ip,omitempty"`
	ClientID string     `json:"client_id,omitempty"`
	Until    *time.Time `json:"until,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

func (s *Server) bansList(w http.ResponseWriter, r *http.Request) {
	if s.bans == nil {
		fail(w, http.StatusNotImplemented, "no ban list")
		return
	}
	list, err := s.bans.List()
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]banJSON, len(list))
	for i, b := range list {
		out[i] = banJSON{ClientID: b.ClientID, Reason: b.Reason}
		if b.IP.IsValid() {
			out[i].IP = b.IP.String()
		}
		if !b.Until.IsZero() {
			out[i].Until = &list[i].Until
		}
	}
	writeJSON(w, http.StatusOK, pageBody{true, 1, 0, len(out), out})
}

// banLift is DELETE /api/bans?ip= or ?client_id=.
func (s *Server) banLift(w http.ResponseWriter, r *http.Request) {
	if s.bans == nil {
		fail(w, http.StatusNotImplemented, "no ban list")
		return
	}
	q := query(r)
	var b limit.Ban
	ip, id := q.Get("ip"), q.Get("client_id")
	switch {
	case (ip == "") == (id == ""):
		fail(w, http.StatusBadRequest, "give exactly one of ip and client_id")
		return
	case id != "":
		b.ClientID = id
	default:
		p, err := netip.ParsePrefix(ip)
		if err != nil {
			a, aerr := netip.ParseAddr(ip)
			if aerr != nil {
				fail(w, http.StatusBadRequest, "ip must be an address or a prefix")
				return
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		b.IP = p
	}
	lifted, err := s.bans.Lift(b)
	switch {
	case err != nil:
		fail(w, http.StatusBadRequest, err.Error())
	case !lifted:
		fail(w, http.StatusNotFound, "no such ban")
	default:
		writeOK(w)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) { writeOK(w) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.b.Ready() {
		fail(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	writeOK(w)
}
