package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/hooks/webhook"
)

// calls records which hook paths a fake service saw, and for whom.
type calls struct {
	mu   sync.Mutex
	seen []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	c.seen = append(c.seen, s)
	c.mu.Unlock()
}

func (c *calls) has(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.seen {
		if x == s {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeWebhook is a real HTTP service: it allows user "good" (3.1.1 and 5.0
// ACL from its answer), makes "slow" wait far past the broker's timeout,
// refuses "forbidden/#", rewrites "rewrite/me" into "rewritten/you",
// drops publishes to "censored" and moves "move" to "moved" upper-cased.
func fakeWebhook(t *testing.T, log *calls) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req webhook.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.add(r.URL.Path + " " + req.ClientID)
		var resp map[string]any
		switch r.URL.Path {
		case "/auth":
			switch req.Username {
			case "good":
				resp = map[string]any{"ok": req.Password == "pw", "acl": map[string]any{"pub": []string{"#"}, "sub": []string{"#"}}}
			case "slow":
				select {
				case <-time.After(3 * time.Second):
				case <-r.Context().Done():
				}
				resp = map[string]any{"ok": true}
			default:
				resp = map[string]any{"ok": false}
			}
		case "/sub":
			switch req.Topic {
			case "forbidden/#":
				resp = map[string]any{"ok": false}
			case "rewrite/me":
				resp = map[string]any{"ok": true, "topic": "rewritten/you"}
			default:
				resp = map[string]any{"ok": true}
			}
		case "/pub":
			switch req.Topic {
			case "censored":
				resp = map[string]any{"ok": false}
			case "move":
				resp = map[string]any{"ok": true, "topic": "moved", "payload": bytes.ToUpper(req.Payload)}
			default:
				resp = map[string]any{"ok": true}
			}
		case "/connect":
			resp = map[string]any{"ok": !strings.HasPrefix(req.ClientID, "noconn")}
		default:
			resp = map[string]any{"ok": true}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func loginGood(id string) *paho.Connect {
	cp := cp5(id)
	cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = "good", true, []byte("pw"), true
	return cp
}

// TestWebhook: the HTTP hook service allows, denies and rewrites logins,
// subscriptions and publishes, and hears of disconnects.
func TestWebhook(t *testing.T) {
	t.Parallel()
	log := &calls{}
	svc := fakeWebhook(t, log)
	addr := startBroker(t, func(c *config.Config) { c.WebhookURL = svc.URL; c.HookTimeoutMs = 1000 })

	if _, rc := login5(t, addr, cp5(uniqueID("wh")), "bad", "pw"); rc != 0x86 {
		t.Errorf("refused login: reason %#x, want 0x86", rc)
	}
	if _, rc := login3(t, addr, uniqueID("wh"), "good", "wrong"); rc != 4 {
		t.Errorf("3.1.1 refused login: return code %d, want 4", rc)
	}
	subID := uniqueID("wh")
	sub := connect5(t, addr, loginGood(subID))
	sa := sub.subscribe(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "rewrite/me", QoS: 1}, {Topic: "forbidden/#", QoS: 1}, {Topic: "moved", QoS: 1}, {Topic: "censored", QoS: 1},
	}})
	if want := []byte{1, 0x87, 1, 1}; !bytes.Equal(sa.Reasons, want) {
		t.Errorf("SUBACK %#x, want %#x", sa.Reasons, want)
	}
	pub := connect5(t, addr, loginGood(uniqueID("wh")))
	pub.publish(&paho.Publish{Topic: "rewritten/you", QoS: 1, Payload: []byte("via rewrite")})
	if m := sub.next("message on the rewritten filter"); m.Topic != "rewritten/you" {
		t.Errorf("got %q", m.Topic)
	}
	pub.publish(&paho.Publish{Topic: "move", QoS: 1, Payload: []byte("quiet")})
	if m := sub.next("rewritten publish"); m.Topic != "moved" || string(m.Payload) != "QUIET" {
		t.Errorf("got %q %q, want moved QUIET", m.Topic, m.Payload)
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if pr, _ := pub.Publish(ctx, &paho.Publish{Topic: "censored", QoS: 1}); pr == nil || pr.ReasonCode != 0x87 {
		t.Errorf("censored publish: %+v, want reason 0x87", pr)
	}
	sub.none("censored message")
	sub.quit(nil)
	waitFor(t, "/disconnect "+subID, func() bool { return log.has("/disconnect " + subID) })

	// The same login again is answered from the cache, on the event loop;
	// /connect is still asked, on the hook pool.
	count := func(s string) int {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, x := range log.seen {
			if x == s {
				n++
			}
		}
		return n
	}
	connect5(t, addr, loginGood(subID))
	if n := count("/auth " + subID); n != 1 {
		t.Errorf("/auth asked %d times for two logins within the cache TTL, want 1", n)
	}
	if n := count("/connect " + subID); n != 2 {
		t.Errorf("/connect asked %d times for two logins, want 2", n)
	}

	// /connect refuses: after a fresh /auth (on the chain's workers), and
	// after a cached one (on the hook pool).
	nc := uniqueID("noconn")
	for i := range 2 {
		if _, rc := login5(t, addr, loginGood(nc), "", ""); rc != 0x87 {
			t.Errorf("login %d refused by /connect: reason %#x, want 0x87", i, rc)
		}
	}
	if n := count("/auth " + nc); n != 1 {
		t.Errorf("/auth asked %d times, want 1 (then cached)", n)
	}
}

// TestWebhookSlowAndDown: a login the service answers too slowly is refused
// with "server unavailable" while other clients keep being served; a
// service that is down gets the configured answer.
func TestWebhookSlowAndDown(t *testing.T) {
	t.Parallel()
	log := &calls{}
	svc := fakeWebhook(t, log)
	addr := startBroker(t, func(c *config.Config) { c.WebhookURL = svc.URL; c.HookTimeoutMs = 1000 })
	a := connect5(t, addr, loginGood(uniqueID("live")))
	a.mustSub(paho.SubscribeOptions{Topic: "live/#", QoS: 1})

	done := make(chan byte, 2)
	for range 2 {
		go func() {
			_, rc := login5(t, addr, cp5(uniqueID("slow")), "slow", "x")
			done <- rc
		}()
	}
	// While those wait on the service, the live client goes on: every
	// round trip is quick although two logins are stuck.
	waitFor(t, "the slow logins to reach the service", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, s := range log.seen {
			if strings.HasPrefix(s, "/auth slow") {
				n++
			}
		}
		return n == 2
	})
	for i := range 5 {
		start := time.Now()
		a.publish(&paho.Publish{Topic: "live/x", QoS: 1, Payload: []byte{byte(i)}})
		a.next("live round trip")
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("round trip %d took %v while logins were pending", i, d)
		}
	}
	// New logins are not held up behind the stuck ones either.
	start := time.Now()
	connect5(t, addr, loginGood(uniqueID("live")))
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a login took %v while two were stuck at the service", d)
	}
	for range 2 {
		if rc := recv(t, done, waitTimeout, "slow login's CONNACK"); rc != 0x88 {
			t.Errorf("slow login: reason %#x, want 0x88", rc)
		}
	}

	// Down: nothing listens at the URL.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	downDeny := startBroker(t, func(c *config.Config) { c.WebhookURL = dead; c.HookTimeoutMs = 500 })
	if _, rc := login5(t, downDeny, loginGood(uniqueID("down")), "", ""); rc != 0x88 {
		t.Errorf("service down, hook_down deny: reason %#x, want 0x88", rc)
	}
	downAllow := startBroker(t, func(c *config.Config) { c.WebhookURL = dead; c.HookTimeoutMs = 500; c.HookDown = "allow" })
	c := connect5(t, downAllow, loginGood(uniqueID("down")))
	c.mustSub(paho.SubscribeOptions{Topic: "d", QoS: 1})
	c.publish(&paho.Publish{Topic: "d", QoS: 1, Payload: []byte("through")})
	c.next("message while the service is down, hook_down allow")
}

// fakeExtend is the original's extend service as a real go-coap server:
// msgpack requests, JSON answers, the CoAP token checked. It refuses
// client IDs starting "bad", stalls those starting "slow", refuses
// subscriptions to "ext/nosub", adds "ext/extra" to a subscription to
// "ext/sub", drops publishes to "ext/deny" and rewrites those to
// "ext/rewrite".
func fakeExtend(t *testing.T, log *calls) string {
	t.Helper()
	reply := func(w mux.ResponseWriter, v any) {
		b, _ := json.Marshal(v)
		w.SetResponse(codes.Content, message.AppJSON, bytes.NewReader(b))
	}
	r := mux.NewRouter()
	handle := func(path string, f func(req map[string]any) any) {
		r.Handle(path, mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
			if string(m.Token()) != "sesame" {
				reply(w, map[string]any{"ok": false, "err": "token error"})
				return
			}
			body, err := m.ReadBody()
			if err != nil {
				return
			}
			var req map[string]any
			if err := msgpack.Unmarshal(body, &req); err != nil {
				t.Errorf("extend service %s: body is not msgpack: %v", path, err)
				return
			}
			cid, _ := req["cid"].(string)
			log.add(path + " " + cid)
			if v := f(req); v != nil {
				reply(w, v)
			}
		}))
	}
	handle("/auth", func(req map[string]any) any {
		cid := req["cid"].(string)
		switch {
		case strings.HasPrefix(cid, "bad"):
			return map[string]any{"ok": false}
		case strings.HasPrefix(cid, "slow"):
			time.Sleep(3 * time.Second)
		}
		return map[string]any{"ok": req["password"] == "open"}
	})
	handle("/sub", func(req map[string]any) any {
		switch req["topic"] {
		case "ext/nosub":
			return map[string]any{"ok": false}
		case "ext/sub":
			return map[string]any{"ok": true, "rep": true, "topic": []string{"ext/extra"}}
		}
		return map[string]any{"ok": true, "rep": false}
	})
	handle("/unsub", func(req map[string]any) any { return map[string]any{"ok": true} })
	handle("/pub", func(req map[string]any) any {
		switch req["topic"] {
		case "ext/deny":
			return map[string]any{"ok": false}
		case "ext/rewrite":
			p, _ := req["payload"].([]byte)
			return map[string]any{"ok": true, "rep": true, "topic": "ext/rewritten", "payload": "was " + string(p)}
		}
		return map[string]any{"ok": true, "rep": false}
	})
	handle("/term", func(req map[string]any) any { return nil })

	l, err := coapnet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := udp.NewServer(options.WithMux(r))
	go s.Serve(l)
	t.Cleanup(func() { s.Stop(); l.Close() })
	return l.LocalAddr().String()
}

func extendLogin(id string) *paho.Connect {
	cp := cp5(id)
	cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = "u", true, []byte("open"), true
	return cp
}

// TestExtendService: -as 2 with the original's CoAP+msgpack extend service
// (a go-coap server in the test), which refuses, adds and rewrites.
func TestExtendService(t *testing.T) {
	t.Parallel()
	log := &calls{}
	svc := fakeExtend(t, log)
	addr := startBroker(t, func(c *config.Config) {
		c.AuthMode = 2
		c.ExtendAddr = svc
		c.ExtendToken = "sesame"
		c.HookTimeoutMs = 1000
	})
	if _, rc := login5(t, addr, cp5(uniqueID("bad")), "u", "open"); rc != 0x86 {
		t.Errorf("refused cid: reason %#x, want 0x86", rc)
	}
	if _, rc := login3(t, addr, uniqueID("ok"), "u", "closed"); rc != 4 {
		t.Errorf("3.1.1 refused password: return code %d, want 4", rc)
	}
	subID := uniqueID("ok")
	sub := connect5(t, addr, extendLogin(subID))
	sa := sub.subscribe(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "ext/sub", QoS: 1}, {Topic: "ext/nosub", QoS: 1}, {Topic: "ext/rewritten", QoS: 1}, {Topic: "ext/deny", QoS: 1},
	}})
	if want := []byte{1, 0x87, 1, 1}; !bytes.Equal(sa.Reasons, want) {
		t.Errorf("SUBACK %#x, want %#x", sa.Reasons, want)
	}
	pub := connect5(t, addr, extendLogin(uniqueID("ok")))
	pub.publish(&paho.Publish{Topic: "ext/extra", QoS: 1, Payload: []byte("added")})
	if m := sub.next("message on the filter the service added"); m.Topic != "ext/extra" {
		t.Errorf("got %q", m.Topic)
	}
	pub.publish(&paho.Publish{Topic: "ext/rewrite", QoS: 1, Payload: []byte("x")})
	if m := sub.next("rewritten publish"); m.Topic != "ext/rewritten" || string(m.Payload) != "was x" {
		t.Errorf("got %q %q, want ext/rewritten \"was x\"", m.Topic, m.Payload)
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if pr, _ := pub.Publish(ctx, &paho.Publish{Topic: "ext/deny", QoS: 1}); pr == nil || pr.ReasonCode != 0x87 {
		t.Errorf("vetoed publish: %+v, want 0x87", pr)
	}
	sub.none("vetoed message")
	sub.kill()
	waitFor(t, "/term "+subID, func() bool { return log.has("/term " + subID) })

	// Slow: a login stuck at the service is refused after the timeout;
	// the others go on meanwhile.
	done := make(chan byte, 1)
	go func() {
		_, rc := login5(t, addr, cp5(uniqueID("slow")), "u", "open")
		done <- rc
	}()
	waitFor(t, "the slow login to reach the service", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, s := range log.seen {
			if strings.HasPrefix(s, "/auth slow") {
				return true
			}
		}
		return false
	})
	pub.mustSub(paho.SubscribeOptions{Topic: "ext/live", QoS: 1})
	for i := range 3 {
		start := time.Now()
		pub.publish(&paho.Publish{Topic: "ext/live", QoS: 1, Payload: []byte{byte(i)}})
		pub.next("round trip while a login is stuck")
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("round trip %d took %v", i, d)
		}
	}
	if rc := recv(t, done, waitTimeout, "slow login's CONNACK"); rc != 0x88 {
		t.Errorf("slow login: reason %#x, want 0x88", rc)
	}

	// Wrong token: the service refuses every call.
	wrong := startBroker(t, func(c *config.Config) {
		c.AuthMode = 2
		c.ExtendAddr = svc
		c.ExtendToken = "guess"
		c.HookTimeoutMs = 500
	})
	if _, rc := login5(t, wrong, extendLogin(uniqueID("ok")), "", ""); rc != 0x88 {
		t.Errorf("wrong token: reason %#x, want 0x88", rc)
	}

	// Down: nothing listens on the port.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	deadAddr := pc.LocalAddr().String()
	pc.Close()
	for _, down := range []struct {
		answer string
		want   byte
	}{{"deny", 0x88}, {"allow", 0}} {
		b := startBroker(t, func(c *config.Config) {
			c.AuthMode = 2
			c.ExtendAddr = deadAddr
			c.HookTimeoutMs = 300
			c.HookDown = down.answer
		})
		if _, rc := login5(t, b, extendLogin(uniqueID("ok")), "", ""); rc != down.want {
			t.Errorf("service down, hook_down %s: reason %#x, want %#x", down.answer, rc, down.want)
		}
	}
}
