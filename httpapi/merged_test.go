package httpapi

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/coolpy7/coolpy7/auth/passwd"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/hooks"
)

// startWired runs a broker whose own configuration does authentication
// (password file, ACL file) and whose hooks are h, with the HTTP server
// wired as cmd/coolpy7 wires it: Server.Authorize and Server.Bans.
func startWired(t *testing.T, dataDir string, h hooks.Hooks) *env {
	t.Helper()
	dir := t.TempDir()
	pw := passwd.New(filepath.Join(dir, "passwd"), passwd.WithCost(bcrypt.MinCost))
	pw.Add("alice", "secret")
	if err := pw.Save(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "acl"), []byte(testACL), 0o600)
	cfg := config.Default()
	cfg.Listen, cfg.HTTPListen, cfg.CoAPListen = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.SysInterval, cfg.HTTPRateLimit = 0, 0
	cfg.AdminPassword = adminPW
	cfg.DataDir = dataDir
	cfg.PasswordFile = filepath.Join(dir, "passwd")
	cfg.ACLFile = filepath.Join(dir, "acl")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if h != nil {
		b.SetHooks(h)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	hs, err := New(Options{Broker: b, Config: cfg, Authorize: b.Authorize, Bans: b.Bans(), Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Shutdown(context.Background()) })
	for deadline := time.Now().Add(waitTimeout); !b.Ready() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return &env{b: b, h: hs, base: "http://" + hs.Addr(), mqtt: b.Addr()}
}

// The broker's own auth chain and ACL file decide HTTP publishes.
func TestPublishThroughBrokerAuthorize(t *testing.T) {
	e := startWired(t, "", nil)
	s := dialAs(t, e.mqtt, "w", "alice", "secret")
	s.subscribe(t, "alice/#", 1)
	if r := do(t, "POST", e.base+"/pub?topic=alice/x&qos=1", basic("alice", "secret"), "", []byte("ok")); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if m := s.next(t); string(m.Payload()) != "ok" {
		t.Fatalf("%q", m.Payload())
	}
	for _, c := range []struct {
		authz, topic string
		code         int
	}{
		{basic("alice", "wrong"), "alice/x", 401},
		{"", "alice/x", 401},
		{basic("alice", "secret"), "bob/x", 403},
	} {
		if r := do(t, "POST", e.base+"/pub?topic="+c.topic, c.authz, "", []byte("no")); r.code != c.code {
			t.Errorf("%s: %d %s, want %d", c.topic, r.code, r.body, c.code)
		}
	}
	s.none(t)
}

// Failed HTTP logins count towards the login-failure ban as MQTT ones do,
// and the ban refuses the address on both.
func TestPublishLoginFailuresBan(t *testing.T) {
	e := startWired(t, "", nil)
	for i := range 5 {
		if r := do(t, "POST", e.base+"/pub?topic=alice/x", basic("alice", "wrong"), "", []byte("no")); r.code != 401 {
			t.Fatalf("bad password %d: %d %s, want 401", i+1, r.code, r.body)
		}
	}
	if r := do(t, "POST", e.base+"/pub?topic=alice/x", basic("alice", "secret"), "", []byte("no")); r.code != 401 {
		t.Errorf("right password after 5 failures: %d %s, want 401 (banned)", r.code, r.body)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + e.mqtt).SetClientID("lf").
		SetUsername("alice").SetPassword("secret").SetConnectRetry(false).SetAutoReconnect(false))
	tok := c.Connect()
	tok.WaitTimeout(waitTimeout)
	if rc := tok.(*mqtt.ConnectToken).ReturnCode(); rc != 5 {
		t.Errorf("MQTT from the banned address: return code %d, want 5", rc)
	}
	if l, _ := e.b.Bans().List(); len(l) != 1 || l[0].IP.String() != "127.0.0.1/32" {
		t.Errorf("bans %+v, want 127.0.0.1/32", l)
	}
}

// rewriter is an in-process hook: it refuses "alice/forbidden", moves
// "alice/old" to "alice/new" and "alice/escape" outside alice's ACL.
type rewriter struct {
	hooks.Base
	mu   sync.Mutex
	seen []hooks.Client
}

func (*rewriter) Events() hooks.Event { return hooks.Publish }

func (r *rewriter) OnPublish(_ context.Context, c *hooks.Client, m *hooks.Message) bool {
	r.mu.Lock()
	r.seen = append(r.seen, *c)
	r.mu.Unlock()
	switch m.Topic {
	case "alice/forbidden":
		return false
	case "alice/old":
		m.Topic, m.Payload = "alice/new", []byte("rewritten")
	case "alice/escape":
		m.Topic = "bob/x"
	}
	return true
}

// HTTP publishes go through the hooks' OnPublish as MQTT ones do.
func TestPublishHooks(t *testing.T) {
	h := &rewriter{}
	e := startWired(t, "", h)
	s := dialAs(t, e.mqtt, "w", "alice", "secret")
	s.subscribe(t, "alice/#", 0)
	a := basic("alice", "secret")
	if r := do(t, "POST", e.base+"/pub?clientid=web&topic=alice/forbidden", a, "", []byte("x")); r.code != 403 {
		t.Fatalf("refused by hook: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", e.base+"/pub?topic=alice/escape", a, "", []byte("x")); r.code != 403 {
		t.Fatalf("rewritten out of the ACL: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", e.base+"/pub?topic=alice/old", a, "", []byte("x")); r.code != 200 {
		t.Fatalf("rewrite: %d %s", r.code, r.body)
	}
	if m := s.next(t); m.Topic() != "alice/new" || string(m.Payload()) != "rewritten" {
		t.Fatalf("got %s %q", m.Topic(), m.Payload())
	}
	s.none(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) != 3 || h.seen[0].ClientID != "web" || h.seen[0].Username != "alice" || !h.seen[0].Addr.IsLoopback() {
		t.Fatalf("hook saw %+v", h.seen)
	}
}

// With the on-disk store, a QoS 1 publish to an offline persistent
// session is answered once it is in the session's stored queue, and that
// queue survives a restart of the broker.
func TestPublishQoS1Durable(t *testing.T) {
	data := t.TempDir()
	e := startWired(t, data, nil)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + e.mqtt).SetClientID("sleeper").SetCleanSession(false).
		SetUsername("alice").SetPassword("secret").SetAutoReconnect(false).SetConnectTimeout(waitTimeout)
	c := mqtt.NewClient(o)
	if tk := c.Connect(); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	if tk := c.Subscribe("alice/q", 1, nil); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	c.Disconnect(100)
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		if ci, _ := e.b.Client("sleeper"); !ci.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still connected")
		}
	}
	for i := 1; i <= 3; i++ {
		if r := do(t, "POST", e.base+"/pub?topic=alice/q&qos=1", basic("alice", "secret"), "", []byte{byte('0' + i)}); r.code != 200 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		if ci, _ := e.b.Client("sleeper"); ci.Queued != i {
			t.Fatalf("after answer %d: %d queued", i, ci.Queued)
		}
	}
	e.h.Shutdown(context.Background())
	e.b.Shutdown(context.Background())
	e2 := startWired(t, data, nil)
	if ci, ok := e2.b.Client("sleeper"); !ok || ci.Queued != 3 {
		t.Fatalf("after restart: %+v %v", ci, ok)
	}
}
