package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/coolpy7/coolpy7/auth/passwd"
	"github.com/coolpy7/coolpy7/config"
)

// login3 connects a 3.1.1 client with credentials and returns the CONNACK
// return code (0 accepted).
func login3(t *testing.T, addr, id, user, pass string) (*client3, byte) {
	t.Helper()
	c, tok, _ := dial3(t, addr, id, true, func(o *mqtt.ClientOptions) {
		if user != "" {
			o.SetUsername(user)
		}
		if pass != "" {
			o.SetPassword(pass)
		}
	})
	return c, tok.ReturnCode()
}

// login5 connects a 5.0 client with credentials and returns the client and
// the CONNACK reason code.
func login5(t *testing.T, addr string, cp *paho.Connect, user, pass string) (*client5, byte) {
	t.Helper()
	if user != "" {
		cp.Username, cp.UsernameFlag = user, true
	}
	if pass != "" {
		cp.Password, cp.PasswordFlag = []byte(pass), true
	}
	c, ca, err := dial5(t, addr, cp)
	if ca == nil {
		t.Fatalf("client %q: no CONNACK: %v", cp.ClientID, err)
	}
	return c, ca.ReasonCode
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func passwordFile(t *testing.T, users map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	f := passwd.New(p, passwd.WithCost(bcrypt.MinCost))
	for u, pw := range users {
		if err := f.Add(u, pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAuthPasswordFile: good and bad logins, and none, with 3.1.1 and 5.0
// clients against a bcrypt password file; anonymous access off.
func TestAuthPasswordFile(t *testing.T) {
	t.Parallel()
	file := passwordFile(t, map[string]string{"alice": "s3cret"})
	addr := startBroker(t, func(c *config.Config) { c.PasswordFile = file })

	if _, rc := login3(t, addr, uniqueID("pw"), "alice", "s3cret"); rc != 0 {
		t.Errorf("3.1.1 good login: return code %d, want 0", rc)
	}
	if _, rc := login3(t, addr, uniqueID("pw"), "alice", "wrong"); rc != 4 {
		t.Errorf("3.1.1 bad password: return code %d, want 4", rc)
	}
	if _, rc := login3(t, addr, uniqueID("pw"), "mallory", "s3cret"); rc != 4 {
		t.Errorf("3.1.1 unknown user: return code %d, want 4", rc)
	}
	if _, rc := login3(t, addr, uniqueID("pw"), "", ""); rc != 5 {
		t.Errorf("3.1.1 anonymous: return code %d, want 5", rc)
	}
	if _, rc := login5(t, addr, cp5(uniqueID("pw")), "alice", "s3cret"); rc != 0 {
		t.Errorf("5.0 good login: reason %#x, want 0", rc)
	}
	// Cached now: the same login again is answered on the quick path.
	if _, rc := login5(t, addr, cp5(uniqueID("pw")), "alice", "s3cret"); rc != 0 {
		t.Errorf("5.0 cached login: reason %#x, want 0", rc)
	}
	if _, rc := login5(t, addr, cp5(uniqueID("pw")), "alice", "nope"); rc != 0x86 {
		t.Errorf("5.0 bad password: reason %#x, want 0x86", rc)
	}
	if _, rc := login5(t, addr, cp5(uniqueID("pw")), "", ""); rc != 0x87 {
		t.Errorf("5.0 anonymous: reason %#x, want 0x87", rc)
	}
}

// TestAuthAnonymousAllowed: allow_anonymous keeps clients without
// credentials in while a password file is set.
func TestAuthAnonymousAllowed(t *testing.T) {
	t.Parallel()
	file := passwordFile(t, map[string]string{"alice": "s3cret"})
	addr := startBroker(t, func(c *config.Config) { c.PasswordFile = file; c.AllowAnonymous = true })
	if _, rc := login3(t, addr, uniqueID("anon"), "", ""); rc != 0 {
		t.Errorf("anonymous: return code %d, want 0", rc)
	}
	if _, rc := login3(t, addr, uniqueID("anon"), "alice", "bad"); rc != 4 {
		t.Errorf("bad password: return code %d, want 4", rc)
	}
}

var jwtSecret = "0123456789abcdef0123456789abcdef"

func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthJWT: the original's -as 1 -jsk: the token is the password, with
// any username. alg none, a wrong algorithm, an expired token and a wrong
// audience are refused.
func TestAuthJWT(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) {
		c.AuthMode = 1
		c.JWTSecret = jwtSecret
		c.JWTAudience = "cp7"
		c.LoginFailLimit = 0 // a dozen bad tokens from one address would ban it
	})
	exp := time.Now().Add(time.Hour).Unix()
	good := hs256(t, jwt.MapClaims{"sub": "dev1", "aud": "cp7", "exp": exp})

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "dev1", "aud": "cp7", "exp": exp}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "dev1", "aud": "cp7", "exp": exp}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	expired := hs256(t, jwt.MapClaims{"sub": "dev1", "aud": "cp7", "exp": time.Now().Add(-time.Minute).Unix()})
	wrongAud := hs256(t, jwt.MapClaims{"sub": "dev1", "aud": "other", "exp": exp})
	otherSecret, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "dev1", "aud": "cp7", "exp": exp}).
		SignedString([]byte("another secret of sufficient size"))

	if _, rc := login3(t, addr, uniqueID("jwt"), "anyone", good); rc != 0 {
		t.Errorf("3.1.1 good token: return code %d, want 0", rc)
	}
	if _, rc := login5(t, addr, cp5(uniqueID("jwt")), "x", good); rc != 0 {
		t.Errorf("5.0 good token: reason %#x, want 0", rc)
	}
	for name, tok := range map[string]string{
		"alg none": none, "RS256 token": rs, "expired": expired, "wrong audience": wrongAud, "other secret": otherSecret,
		"not a token": "password",
	} {
		if _, rc := login3(t, addr, uniqueID("jwt"), "anyone", tok); rc != 4 {
			t.Errorf("3.1.1 %s: return code %d, want 4", name, rc)
		}
		if _, rc := login5(t, addr, cp5(uniqueID("jwt")), "anyone", tok); rc != 0x86 {
			t.Errorf("5.0 %s: reason %#x, want 0x86", name, rc)
		}
	}
	if _, rc := login5(t, addr, cp5(uniqueID("jwt")), "", ""); rc != 0x87 {
		t.Errorf("5.0 no token: reason %#x, want 0x87", rc)
	}
}

// TestAuthJWTPublicKey: an RS256 public key file; an HS256 token made with
// the public key as its secret (algorithm confusion) is refused.
func TestAuthJWTPublicKey(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	file := writeFile(t, "jwt.pem", string(pemBytes))
	addr := startBroker(t, func(c *config.Config) { c.JWTPublicKey = file })
	claims := jwt.MapClaims{"sub": "dev1", "exp": time.Now().Add(time.Hour).Unix()}
	good, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	confused, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pemBytes)
	if _, rc := login5(t, addr, cp5(uniqueID("rs")), "u", good); rc != 0 {
		t.Errorf("RS256 token: reason %#x, want 0", rc)
	}
	if _, rc := login5(t, addr, cp5(uniqueID("rs")), "u", confused); rc != 0x86 {
		t.Errorf("HS256 with the public key as secret: reason %#x, want 0x86", rc)
	}
}

// TestAuthTokenExpiry: the session ends when the token does: v5
// DISCONNECT 0xA0, v3 connection closed. The $SYS counter sees it.
func TestAuthTokenExpiry(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.JWTSecret = jwtSecret })
	exp := time.Now().Add(1500 * time.Millisecond).Unix()
	if time.Until(time.Unix(exp, 0)) < 700*time.Millisecond {
		exp++ // exp is in whole seconds; keep the token valid at CONNECT
	}
	tok := hs256(t, jwt.MapClaims{"sub": "dev1", "exp": exp})
	c5, rc := login5(t, addr, cp5(uniqueID("exp")), "x", tok)
	if rc != 0 {
		t.Fatalf("login: reason %#x", rc)
	}
	c3, rc3 := login3(t, addr, uniqueID("exp"), "x", tok)
	if rc3 != 0 {
		t.Fatalf("3.1.1 login: return code %d", rc3)
	}
	d := recv(t, c5.disc, 5*time.Second, "DISCONNECT at token expiry")
	if d.ReasonCode != 0xA0 {
		t.Errorf("DISCONNECT reason %#x, want 0xA0", d.ReasonCode)
	}
	recv(t, c3.lost, 5*time.Second, "3.1.1 connection closed at token expiry")
}

// TestACLFile: rules by everyone, user and client ID, with placeholders;
// denied subscriptions get 0x80 (3.1.1) and 0x87 (5.0), denied publishes
// are dropped (3.1.1) or answered 0x87 (5.0), and a wildcard cannot widen
// what the ACL grants.
func TestACLFile(t *testing.T) {
	t.Parallel()
	aclFile := writeFile(t, "acl", `
allow pub devices/%c/#
allow sub cmd/%c
allow sub devices/%c/#
deny  pubsub $SYS/#
user alice
allow pubsub alice/#
allow sub    devices/+/status
`)
	pw := passwordFile(t, map[string]string{"alice": "a", "bob": "b"})
	addr := startBroker(t, func(c *config.Config) { c.ACLFile = aclFile; c.PasswordFile = pw })

	// bob (no user section): only the %c rules.
	bobID := uniqueID("bob")
	bob, rc := login3(t, addr, bobID, "bob", "b")
	if rc != 0 {
		t.Fatalf("bob login: %d", rc)
	}
	got := bob.sub(map[string]byte{
		"cmd/" + bobID:              1,
		"devices/" + bobID + "/#":   1,
		"cmd/+":                     1, // would reach other clients' commands
		"devices/#":                 1, // wider than devices/<bob>/#
		"devices/+/status":          1, // alice's rule, not bob's
		"+/" + bobID:                1,
		"#":                         1,
		"alice/x":                   1,
		"$share/g/devices/" + bobID: 1,
	})
	for f, want := range map[string]byte{
		"cmd/" + bobID: 1, "devices/" + bobID + "/#": 1, "cmd/+": 0x80, "devices/#": 0x80, "devices/+/status": 0x80,
		"+/" + bobID: 0x80, "#": 0x80, "alice/x": 0x80, "$share/g/devices/" + bobID: 1,
	} {
		if got[f] != want {
			t.Errorf("bob SUBACK for %q: %#x, want %#x", f, got[f], want)
		}
	}

	// alice: her own section and %u.
	aliceID := uniqueID("alice")
	alice := connect5(t, addr, func() *paho.Connect {
		cp := cp5(aliceID)
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = "alice", true, []byte("a"), true
		return cp
	}())
	sa := alice.subscribe(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "alice/#", QoS: 1}, {Topic: "devices/+/status", QoS: 1}, {Topic: "devices/+/+", QoS: 1}, {Topic: "bob/#", QoS: 1},
	}})
	if want := []byte{1, 1, 0x87, 0x87}; string(sa.Reasons) != string(want) {
		t.Errorf("alice SUBACK %#x, want %#x", sa.Reasons, want)
	}

	// Publish: bob may write under devices/<bob>/ only; a denied 3.1.1
	// publish is acknowledged and dropped.
	bob.pub("devices/"+bobID+"/status", 1, false, "ok")
	m := alice.next("bob's allowed publish")
	if m.Topic != "devices/"+bobID+"/status" || string(m.Payload) != "ok" {
		t.Errorf("alice got %q %q", m.Topic, m.Payload)
	}
	bob.pub("alice/inbox", 1, false, "sneaky")
	bob.pub("devices/other/status", 0, false, "spoof")
	alice.none("bob's denied publishes")

	// A denied v5 publish gets 0x87.
	ctx, cancel := ctxTimeout()
	defer cancel()
	pr, err := alice.Publish(ctx, &paho.Publish{Topic: "devices/x/status", QoS: 1, Payload: []byte("no")})
	if pr == nil || pr.ReasonCode != 0x87 {
		t.Errorf("alice's denied QoS 1 publish: %+v %v, want reason 0x87", pr, err)
	}
	pr, err = alice.Publish(ctx, &paho.Publish{Topic: "alice/own", QoS: 2, Payload: []byte("yes")})
	if err != nil || pr == nil || pr.ReasonCode != 0 {
		t.Errorf("alice's allowed QoS 2 publish: %+v %v", pr, err)
	}
	if m := alice.next("own message"); m.Topic != "alice/own" {
		t.Errorf("got %q", m.Topic)
	}

	// A delayed publish is judged by the topic it lands on.
	pr, err = alice.Publish(ctx, &paho.Publish{Topic: "$delayed/1/devices/x/status", QoS: 1, Payload: []byte("later no")})
	if pr == nil || pr.ReasonCode != 0x87 {
		t.Errorf("alice's denied delayed publish: %+v %v, want reason 0x87", pr, err)
	}
	pr, err = alice.Publish(ctx, &paho.Publish{Topic: "$delayed/1/alice/later", QoS: 1, Payload: []byte("later yes")})
	if err != nil || pr == nil || pr.ReasonCode != 0 {
		t.Errorf("alice's allowed delayed publish: %+v %v", pr, err)
	}
	if m := alice.next("own delayed message"); m.Topic != "alice/later" {
		t.Errorf("got %q", m.Topic)
	}

	// A will on a topic the client may not publish is refused at CONNECT.
	_, tok, _ := dial3(t, addr, uniqueID("will"), true, func(o *mqtt.ClientOptions) {
		o.SetUsername("bob").SetPassword("b").SetWill("alice/will", "x", 0, false)
	})
	if tok.ReturnCode() != 5 {
		t.Errorf("CONNECT with a denied will topic: return code %d, want 5", tok.ReturnCode())
	}
}

// TestACLFromJWT: a token's acl claim is the connection's ACL.
func TestACLFromJWT(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.JWTSecret = jwtSecret })
	id := uniqueID("tok")
	tok := hs256(t, jwt.MapClaims{"sub": "dev", "exp": time.Now().Add(time.Hour).Unix(),
		"acl": map[string]any{"pub": []string{"devices/%c/#"}, "sub": []string{"cmd/%c"}}})
	c, rc := login5(t, addr, cp5(id), "x", tok)
	if rc != 0 {
		t.Fatalf("login: %#x", rc)
	}
	sa := c.subscribe(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "cmd/" + id, QoS: 0}, {Topic: "cmd/#", QoS: 0}}})
	if string(sa.Reasons) != string([]byte{0, 0x87}) {
		t.Errorf("SUBACK %#x, want [0 0x87]", sa.Reasons)
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if pr, _ := c.Publish(ctx, &paho.Publish{Topic: "devices/" + id + "/t", QoS: 1}); pr == nil || pr.ReasonCode != 0 {
		t.Errorf("allowed publish: %+v", pr)
	}
	if pr, _ := c.Publish(ctx, &paho.Publish{Topic: "devices/other/t", QoS: 1}); pr == nil || pr.ReasonCode != 0x87 {
		t.Errorf("denied publish: %+v, want 0x87", pr)
	}
}

// TestFloodPublishAndBan: -psl closes a client publishing too fast (v5
// DISCONNECT 0x96), -dt bans its client ID for a while (0x8A), and the ban
// lapses.
func TestFloodPublishAndBan(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.PublishLimitMs = 500; c.BanSeconds = 1 })
	id := uniqueID("flood")
	c := connect5(t, addr, cp5(id))
	ctx, cancel := ctxTimeout()
	defer cancel()
	_, _ = c.Publish(ctx, &paho.Publish{Topic: "f/1", QoS: 0, Payload: []byte("1")})
	_, _ = c.Publish(ctx, &paho.Publish{Topic: "f/1", QoS: 0, Payload: []byte("2")})
	d := recv(t, c.disc, waitTimeout, "DISCONNECT for the publish flood")
	if d.ReasonCode != 0x96 {
		t.Errorf("DISCONNECT reason %#x, want 0x96", d.ReasonCode)
	}
	if _, rc := login5(t, addr, cp5(id), "", ""); rc != 0x8A {
		t.Errorf("reconnect while banned: reason %#x, want 0x8A", rc)
	}
	if _, rc := login3(t, addr, id, "", ""); rc != 5 {
		t.Errorf("3.1.1 reconnect while banned: return code %d, want 5", rc)
	}
	// Another client ID is not banned.
	connect5(t, addr, cp5(uniqueID("flood")))
	time.Sleep(1100 * time.Millisecond)
	if _, rc := login5(t, addr, cp5(id), "", ""); rc != 0 {
		t.Errorf("reconnect after the ban lapsed: reason %#x, want 0", rc)
	}
}

// TestFloodPing: -pl closes a client pinging more often than allowed.
func TestFloodPing(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.PingLimit = 10 })
	r := dialHandshake(t, addr, false, uniqueID("ping"))
	r.send([]byte{0xC0, 0})
	r.expect([]byte{0xD0, 0}, "first PINGRESP")
	r.send([]byte{0xC0, 0})
	r.expectClosed(closeWithin)

	r5 := dialHandshake(t, addr, true, uniqueID("ping"))
	r5.send([]byte{0xC0, 0}, []byte{0xC0, 0})
	r5.expect([]byte{0xD0, 0}, "first PINGRESP")
	p := r5.expectType(0xE0, "DISCONNECT")
	if len(p.Body) < 1 || p.Body[0] != 0x96 {
		t.Errorf("DISCONNECT %v, want reason 0x96", p)
	}
}

// TestConnectRate: an address connecting faster than -cr with a burst of
// -cb is refused (v5 0x9F, v3 3) until tokens come back.
func TestConnectRate(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.ConnectRate = 2; c.ConnectBurst = 2 })
	for i := range 2 {
		if _, rc := login5(t, addr, cp5(uniqueID("rate")), "", ""); rc != 0 {
			t.Fatalf("connect %d: reason %#x", i, rc)
		}
	}
	if _, rc := login5(t, addr, cp5(uniqueID("rate")), "", ""); rc != 0x9F {
		t.Errorf("third connect at once: reason %#x, want 0x9F", rc)
	}
	if _, rc := login3(t, addr, uniqueID("rate"), "", ""); rc != 3 {
		t.Errorf("3.1.1 over the rate: return code %d, want 3", rc)
	}
	time.Sleep(600 * time.Millisecond)
	if _, rc := login5(t, addr, cp5(uniqueID("rate")), "", ""); rc != 0 {
		t.Errorf("after a token came back: reason %#x, want 0", rc)
	}
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), waitTimeout)
}

// TestAuthPipelined: packets sent right behind a CONNECT that is decided
// on a worker (a bcrypt check) wait for it and are handled in order.
func TestAuthPipelined(t *testing.T) {
	t.Parallel()
	file := passwordFile(t, map[string]string{"alice": "s3cret"})
	addr := startBroker(t, func(c *config.Config) { c.PasswordFile = file })
	connect := func(pass string) []byte {
		return pkt(0x10, str("MQTT"), []byte{4, 0x02 | 0x80 | 0x40}, be16(30), str(uniqueID("pipe")), str("alice"), str(pass))
	}
	r := dialRaw(t, addr)
	r.send(connect("s3cret"),
		subscribePkt(false, 1, "pipe/t", 1, nil),
		publishPkt(false, "pipe/t", 1, false, 2, nil, "one"),
		publishPkt(false, "pipe/t", 0, false, 0, nil, "two"),
		[]byte{0xC0, 0})
	r.expect([]byte{0x20, 2, 0, 0}, "CONNACK")
	r.expect([]byte{0x90, 3, 0, 1, 1}, "SUBACK")
	// PUBACK and the delivery of "one" may come in either order; then
	// "two", then PINGRESP.
	var got []string
	for range 4 {
		p := r.next("the pipelined packets' answers")
		switch p.First & 0xF0 {
		case 0x40:
			got = append(got, "puback")
		case 0x30:
			m, err := decodePublish(p, false)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Payload)
			if m.QoS == 1 {
				r.send(pkt(0x40, be16(m.PID)))
			}
		case 0xD0:
			got = append(got, "pingresp")
		default:
			t.Fatalf("unexpected %v", p)
		}
	}
	if strings.Join(got, " ") != "puback one two pingresp" && strings.Join(got, " ") != "one puback two pingresp" {
		t.Errorf("answers %v", got)
	}

	// A refused CONNECT: what follows it is never handled.
	r2 := dialRaw(t, addr)
	r2.send(connect("wrong"), subscribePkt(false, 1, "pipe/t", 1, nil))
	r2.expect([]byte{0x20, 2, 0, 4}, "CONNACK refusing")
	r2.expectClosed(closeWithin + time.Second)
}

// TestMaxConnections: the original's -mc: past it, CONNACK 3 (3.1.1) or
// 0x97 (5.0).
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.MaxConnections = 2 })
	connect5(t, addr, cp5(uniqueID("mc")))
	connect5(t, addr, cp5(uniqueID("mc")))
	if _, rc := login5(t, addr, cp5(uniqueID("mc")), "", ""); rc != 0x97 {
		t.Errorf("third connection: reason %#x, want 0x97", rc)
	}
	if _, rc := login3(t, addr, uniqueID("mc"), "", ""); rc != 3 {
		t.Errorf("3.1.1 third connection: return code %d, want 3", rc)
	}
}
