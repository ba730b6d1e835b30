package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/auth/jwtauth"
	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/auth/passwd"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

const (
	waitTimeout = 5 * time.Second
	jwtSecret   = "test-jwt-secret"
	adminPW     = "admin-test-password"
)

// testACL: everyone may use public/#; alice her own tree; bob nothing more.
const testACL = `
allow pubsub public/#
user alice
allow pubsub alice/#
`

// env is a real broker with the real auth chain (password file, JWT) and
// ACL file behind a real HTTP server.
type env struct {
	b    *broker.Server
	h    *Server
	base string // http://host:port
	mqtt string // host:port
	bans *limit.MemoryBans
}

func newEnv(t *testing.T, mod func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.CoAPListen = ""
	cfg.SysInterval = 0
	cfg.HTTPRateLimit = 0
	cfg.AdminPassword = adminPW
	cfg.DataDir = "" // the store in memory; the admin password is configured
	if mod != nil {
		mod(&cfg)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })

	pw := passwd.New(filepath.Join(t.TempDir(), "passwd"), passwd.WithCost(bcrypt.MinCost))
	if err := pw.Add("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := pw.Add("bob", "bobpw"); err != nil {
		t.Fatal(err)
	}
	jv, err := jwtauth.New(jwtauth.Config{Secret: []byte(jwtSecret)})
	if err != nil {
		t.Fatal(err)
	}
	chain := auth.NewChain(auth.Options{}, pw, jv)
	t.Cleanup(chain.Close)
	rules, err := acl.Parse(strings.NewReader(testACL))
	if err != nil {
		t.Fatal(err)
	}
	authorize := func(ctx context.Context, info *auth.ConnectInfo) (auth.Result, acl.ACL) {
		r := chain.Authenticate(ctx, info)
		return r, r.ACL(rules, info.ClientID)
	}
	bans := limit.NewMemoryBans(nil)
	h, err := New(Options{Broker: b, Config: cfg, Authorize: authorize, Bans: bans, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	// Ready once the broker's clock ticked.
	deadline := time.Now().Add(waitTimeout)
	for !b.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return &env{b: b, h: h, base: "http://" + h.Addr(), mqtt: b.Addr(), bans: bans}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func token(t *testing.T, secret, sub string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%d %s: %v", r.code, r.body, err)
	}
}

// do sends a request; authz is the whole Authorization header, or "".
func do(t *testing.T, method, url, authz, ctype string, body []byte) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (e *env) login(t *testing.T) string {
	t.Helper()
	r := do(t, "POST", e.base+"/api/login", "", "application/json", []byte(`{"username":"admin","password":"`+adminPW+`"}`))
	var out struct{ Token string }
	r.json(t, &out)
	if r.code != 200 || out.Token == "" {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	return "Bearer " + out.Token
}

// sub is a paho MQTT 3.1.1 client collecting what it receives.
type sub struct {
	c    mqtt.Client
	mu   sync.Mutex
	msgs []mqtt.Message
	got  chan struct{}
	lost chan error
}

func dial(t *testing.T, addr, id string) *sub {
	t.Helper()
	return dialAs(t, addr, id, "", "")
}

func dialAs(t *testing.T, addr, id, user, pass string) *sub {
	t.Helper()
	s := &sub{got: make(chan struct{}, 1000), lost: make(chan error, 1)}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).
		SetConnectTimeout(waitTimeout).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			s.got <- struct{}{}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { s.lost <- err })
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	s.c = mqtt.NewClient(o)
	if tk := s.c.Connect(); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatalf("connect %s: %v", id, tk.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(0) })
	return s
}

func (s *sub) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	if tk := s.c.Subscribe(filter, qos, nil); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tk.Error())
	}
}

// next waits for the next message.
func (s *sub) next(t *testing.T) mqtt.Message {
	t.Helper()
	select {
	case <-s.got:
	case <-time.After(waitTimeout):
		t.Fatal("no message within", waitTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m
}

// none makes sure nothing arrives for a while.
func (s *sub) none(t *testing.T) {
	t.Helper()
	select {
	case <-s.got:
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("unexpected message on %s", s.msgs[0].Topic())
	case <-time.After(500 * time.Millisecond):
	}
}
