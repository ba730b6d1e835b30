package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coolpy7/coolpy7/config"
)

func TestPublishReachesMQTTSubscriberAtEachQoS(t *testing.T) {
	e := newEnv(t, nil)
	s := dial(t, e.mqtt, "watcher")
	s.subscribe(t, "alice/#", 2)
	for qos := range 3 {
		topic := fmt.Sprintf("alice/q%d", qos)
		r := do(t, "POST", fmt.Sprintf("%s/pub?clientid=web&topic=%s&qos=%d&retain=false", e.base, topic, qos), basic("alice", "secret"), "", []byte("payload "+topic))
		if r.code != 200 || strings.TrimSpace(string(r.body)) != `{"ok":true}` {
			t.Fatalf("qos %d: %d %s", qos, r.code, r.body)
		}
		m := s.next(t)
		if m.Topic() != topic || string(m.Payload()) != "payload "+topic || m.Qos() != byte(qos) {
			t.Fatalf("qos %d: got %s %q qos %d", qos, m.Topic(), m.Payload(), m.Qos())
		}
	}
	// The JSON form, base64 payload, retained.
	body := `{"topic":"alice/json","payload":"` + base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}) + `","qos":1,"retain":true,"encoding":"base64"}`
	if r := do(t, "POST", e.base+"/pub?clientid=web", basic("alice", "secret"), "application/json", []byte(body)); r.code != 200 {
		t.Fatalf("json: %d %s", r.code, r.body)
	}
	if m := s.next(t); m.Topic() != "alice/json" || string(m.Payload()) != "\x00\x01\x02\xff" || m.Qos() != 1 {
		t.Fatalf("json: got %s %q qos %d", m.Topic(), m.Payload(), m.Qos())
	}
	if _, ok := e.b.RetainedGet("alice/json"); !ok {
		t.Fatal("retain:true did not retain")
	}
	// The batch form, in order.
	batch := `[{"topic":"alice/b1","payload":"one"},{"topic":"alice/b2","payload":"two","qos":2}]`
	if r := do(t, "POST", e.base+"/pub/batch", basic("alice", "secret"), "application/json", []byte(batch)); r.code != 200 || !strings.Contains(string(r.body), `"published":2`) {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	if m := s.next(t); m.Topic() != "alice/b1" || string(m.Payload()) != "one" {
		t.Fatalf("batch 1: %s %q", m.Topic(), m.Payload())
	}
	if m := s.next(t); m.Topic() != "alice/b2" || string(m.Payload()) != "two" || m.Qos() != 2 {
		t.Fatalf("batch 2: %s %q", m.Topic(), m.Payload())
	}
}

func TestPublishAuthAndACL(t *testing.T) {
	e := newEnv(t, nil)
	s := dial(t, e.mqtt, "watcher")
	s.subscribe(t, "#", 0)
	url := e.base + "/pub?topic=alice/x"
	for name, authz := range map[string]string{
		"none":           "",
		"wrong password": basic("alice", "wrong"),
		"unknown user":   basic("mallory", "secret"),
		"bad jwt":        "Basic " + token(t, "not-the-secret", "alice", time.Now().Add(time.Hour)),
		"expired jwt":    "Basic " + token(t, jwtSecret, "alice", time.Now().Add(-time.Hour)),
		"garbage":        "Basic !!!",
		"bearer":         "Bearer abc",
	} {
		r := do(t, "POST", url, authz, "", []byte("x"))
		if r.code != http.StatusUnauthorized || r.hdr.Get("WWW-Authenticate") == "" || !strings.Contains(string(r.body), `"ok":false`) {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
	}
	// A valid JWT passes; its subject is alice for the ACL.
	if r := do(t, "POST", url, "Basic "+token(t, jwtSecret, "alice", time.Now().Add(time.Hour)), "", []byte("jwt")); r.code != 200 {
		t.Fatalf("good jwt: %d %s", r.code, r.body)
	}
	if m := s.next(t); string(m.Payload()) != "jwt" {
		t.Fatalf("got %q", m.Payload())
	}
	// The ACL: bob may not publish to alice's tree, nobody outside public/.
	for _, c := range []struct{ authz, topic string }{
		{basic("bob", "bobpw"), "alice/x"},
		{basic("alice", "secret"), "bob/x"},
		{"Basic " + token(t, jwtSecret, "bob", time.Now().Add(time.Hour)), "alice/x"},
	} {
		r := do(t, "POST", e.base+"/pub?topic="+c.topic, c.authz, "", []byte("denied"))
		if r.code != http.StatusForbidden {
			t.Errorf("%s: %d %s", c.topic, r.code, r.body)
		}
	}
	if r := do(t, "POST", e.base+"/pub?topic=public/x", basic("bob", "bobpw"), "", []byte("public")); r.code != 200 {
		t.Fatalf("bob to public: %d %s", r.code, r.body)
	}
	if m := s.next(t); string(m.Payload()) != "public" {
		t.Fatalf("got %q, a denied message went through", m.Payload())
	}
	// A batch with one forbidden message publishes none.
	batch := `[{"topic":"alice/ok","payload":"a"},{"topic":"bob/no","payload":"b"}]`
	if r := do(t, "POST", e.base+"/pub/batch", basic("alice", "secret"), "application/json", []byte(batch)); r.code != http.StatusForbidden {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	s.none(t)
}

func TestPublishBadInput(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxPacketSize = 1000 })
	s := dial(t, e.mqtt, "watcher")
	s.subscribe(t, "#", 0)
	a := basic("alice", "secret")
	big := strings.Repeat("x", 1001)
	for _, c := range []struct {
		name, path, ctype, body string
		code                    int
	}{
		{"missing topic", "/pub?qos=0", "", "x", 400},
		{"empty topic", "/pub?topic=", "", "x", 400},
		{"plus wildcard", "/pub?topic=alice/+", "", "x", 400},
		{"hash wildcard", "/pub?topic=alice/%23", "", "x", 400},
		{"sys topic", "/pub?topic=$SYS/x", "", "x", 400},
		{"invalid utf8", "/pub?topic=alice/%ff", "", "x", 400},
		{"qos 3", "/pub?topic=alice/x&qos=3", "", "x", 400},
		{"qos word", "/pub?topic=alice/x&qos=one", "", "x", 400},
		{"retain word", "/pub?topic=alice/x&retain=maybe", "", "x", 400},
		{"unknown key", "/pub?topic=alice/x&retian=true", "", "x", 400},
		{"bad escape", "/pub?topic=alice/%zz", "", "x", 400},
		{"oversized", "/pub?topic=alice/x", "", big, 413},
		{"oversized json", "/pub", "application/json", `{"topic":"alice/x","payload":"` + strings.Repeat("x", 2000) + `"}`, 413},
		{"bad json", "/pub", "application/json", `{"topic":`, 400},
		{"json trailing", "/pub", "application/json", `{"topic":"alice/x"} {}`, 400},
		{"json unknown field", "/pub", "application/json", `{"topic":"alice/x","qos":0,"colour":1}`, 400},
		{"json qos 3", "/pub", "application/json", `{"topic":"alice/x","qos":3}`, 400},
		{"json wildcard", "/pub", "application/json", `{"topic":"alice/#"}`, 400},
		{"bad base64", "/pub", "application/json", `{"topic":"alice/x","payload":"!!","encoding":"base64"}`, 400},
		{"bad encoding", "/pub", "application/json", `{"topic":"alice/x","encoding":"rot13"}`, 400},
		{"topic in query and json", "/pub?topic=alice/x", "application/json", `{"topic":"alice/x"}`, 400},
		{"batch not json", "/pub/batch", "text/plain", `[]`, 415},
		{"batch empty", "/pub/batch", "application/json", `[]`, 400},
		{"batch object", "/pub/batch", "application/json", `{"topic":"alice/x"}`, 400},
		{"batch bad item", "/pub/batch", "application/json", `[{"topic":"alice/x"},{"topic":"alice/+"}]`, 400},
		{"batch unknown key", "/pub/batch?topic=alice/x", "application/json", `[{"topic":"alice/x"}]`, 400},
	} {
		r := do(t, "POST", e.base+c.path, a, c.ctype, []byte(c.body))
		if r.code != c.code || !strings.Contains(string(r.body), `"err":`) {
			t.Errorf("%s: %d %s, want %d with an error", c.name, r.code, r.body, c.code)
		}
	}
	s.none(t)
	// The broker is unharmed.
	if r := do(t, "POST", e.base+"/pub?topic=alice/after", a, "", []byte("fine")); r.code != 200 {
		t.Fatalf("after: %d %s", r.code, r.body)
	}
	if m := s.next(t); m.Topic() != "alice/after" {
		t.Fatalf("got %s", m.Topic())
	}
}

// A QoS 1 publish answers only once the message is routed: an offline
// persistent session has it queued by the time the answer comes, with no
// wait in between.
func TestPublishQoS1QueuedBeforeAnswer(t *testing.T) {
	e := newEnv(t, nil)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + e.mqtt).SetClientID("sleeper").SetCleanSession(false).
		SetAutoReconnect(false).SetConnectTimeout(waitTimeout)
	c := mqtt.NewClient(o)
	if tk := c.Connect(); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	if tk := c.Subscribe("public/q", 1, nil); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	c.Disconnect(100)
	deadline := time.Now().Add(waitTimeout)
	for ci, _ := e.b.Client("sleeper"); ci.Connected; ci, _ = e.b.Client("sleeper") {
		if time.Now().After(deadline) {
			t.Fatal("still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 1; i <= 3; i++ {
		if r := do(t, "POST", e.base+"/pub?topic=public/q&qos=1", basic("bob", "bobpw"), "", []byte("m")); r.code != 200 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		if ci, _ := e.b.Client("sleeper"); ci.Queued != i {
			t.Fatalf("after answer %d: %d queued", i, ci.Queued)
		}
	}
	// QoS 0 is not kept for an offline session.
	if r := do(t, "POST", e.base+"/pub?topic=public/q&qos=0", basic("bob", "bobpw"), "", []byte("m")); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if ci, _ := e.b.Client("sleeper"); ci.Queued != 3 {
		t.Fatalf("qos 0 queued: %d", ci.Queued)
	}
}
