package coapgw

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"
	piondtls "github.com/pion/dtls/v3"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"golang.org/x/crypto/bcrypt"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/auth/jwtauth"
	"github.com/coolpy7/coolpy7/auth/passwd"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

const waitTimeout = 5 * time.Second

type env struct {
	b    *broker.Server
	g    *Server
	udp  string
	dtls string
	mqtt string
}

// newEnv runs a real broker, the real auth chain (password file, JWT) and
// ACL file, and the gateway on UDP and DTLS (PSK) on loopback.
func newEnv(t testing.TB, mods ...func(*Server)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = "" // the store in memory
	cfg.SysInterval = 0
	cfg.MaxPacketSize = 4096
	cfg.CoAPListen = "127.0.0.1:0"
	cfg.CoAPDTLSListen = "127.0.0.1:0"
	cfg.CoAPDTLSPSK = "psk-secret"
	cfg.CoAPDTLSPSKIdentity = "device"
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
	pw.Add("alice", "secret")
	pw.Add("bob", "bobpw")
	jv, err := jwtauth.New(jwtauth.Config{Secret: []byte("jwt-secret")})
	if err != nil {
		t.Fatal(err)
	}
	chain := auth.NewChain(auth.Options{}, pw, jv)
	t.Cleanup(chain.Close)
	rules, err := acl.Parse(strings.NewReader("allow pubsub public/#\nuser alice\nallow pubsub alice/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Broker: b, Config: cfg, Log: quiet, Authorize: func(ctx context.Context, info *auth.ConnectInfo) (auth.Result, acl.ACL) {
		r := chain.Authenticate(ctx, info)
		return r, r.ACL(rules, info.ClientID)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		m(g)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return &env{b: b, g: g, udp: g.Addrs()[0].String(), dtls: g.Addrs()[1].String(), mqtt: b.Addr()}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func creds(s string) message.Option {
	return message.Option{ID: message.LocationQuery, Value: []byte(s)}
}
func query(s string) message.Option { return message.Option{ID: message.URIQuery, Value: []byte(s)} }

type mqttSub struct {
	c    mqtt.Client
	msgs chan mqtt.Message
}

func subscribe(t *testing.T, addr, filter string) *mqttSub {
	t.Helper()
	s := &mqttSub{msgs: make(chan mqtt.Message, 100)}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("watcher-" + filter).SetAutoReconnect(false).
		SetConnectTimeout(waitTimeout).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { s.msgs <- m })
	s.c = mqtt.NewClient(o)
	if tk := s.c.Connect(); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	if tk := s.c.Subscribe(filter, 2, nil); !tk.WaitTimeout(waitTimeout) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(0) })
	return s
}

func (s *mqttSub) next(t *testing.T) mqtt.Message {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(waitTimeout):
		t.Fatal("no MQTT message")
	}
	return nil
}

func (s *mqttSub) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("unexpected message on %s: %q", m.Topic(), m.Payload())
	case <-time.After(500 * time.Millisecond):
	}
}

func dialUDP(t *testing.T, addr string) *client.Conn {
	t.Helper()
	cc, err := udp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

type answer struct {
	code codes.Code
	OK   bool   `json:"ok"`
	Err  string `json:"err"`
}

func post(t *testing.T, cc interface {
	Post(context.Context, string, message.MediaType, io.ReadSeeker, ...message.Option) (*pool.Message, error)
}, path string, payload string, opts ...message.Option) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := cc.Post(ctx, path, message.TextPlain, strings.NewReader(payload), opts...)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := res.ReadBody()
	a := answer{code: res.Code()}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%v: not JSON: %q", res.Code(), b)
	}
	return a
}

func TestPublishOriginalForm(t *testing.T) {
	e := newEnv(t)
	s := subscribe(t, e.mqtt, "alice/#")
	cc := dialUDP(t, e.udp)
	for qos := range 3 {
		// The original's clients put the whole query in one option.
		a := post(t, cc, "/pub", "hello", creds(basic("alice", "secret")), query("clientid=dev&topic=alice/t&qos="+string(rune('0'+qos))+"&retain=false"))
		if a.code != codes.Changed || !a.OK {
			t.Fatalf("qos %d: %+v", qos, a)
		}
		if m := s.next(t); m.Topic() != "alice/t" || string(m.Payload()) != "hello" || m.Qos() != byte(qos) {
			t.Fatalf("qos %d: %s %q %d", qos, m.Topic(), m.Payload(), m.Qos())
		}
	}
	// One option per key, and a JWT.
	tok := jwtToken(t, "alice")
	if a := post(t, cc, "/pub", "jwt", creds("Basic "+tok), query("topic=alice/j"), query("qos=1")); !a.OK {
		t.Fatalf("jwt: %+v", a)
	}
	if m := s.next(t); string(m.Payload()) != "jwt" {
		t.Fatalf("%q", m.Payload())
	}
	// The resource form.
	if a := post(t, cc, "/ps/alice/r/1", "resource", creds(basic("alice", "secret")), query("qos=2")); a.code != codes.Changed || !a.OK {
		t.Fatalf("resource: %+v", a)
	}
	if m := s.next(t); m.Topic() != "alice/r/1" || string(m.Payload()) != "resource" || m.Qos() != 2 {
		t.Fatalf("resource: %s %q", m.Topic(), m.Payload())
	}
}

func TestPublishRefused(t *testing.T) {
	e := newEnv(t)
	s := subscribe(t, e.mqtt, "#")
	cc := dialUDP(t, e.udp)
	good := creds(basic("alice", "secret"))
	for _, c := range []struct {
		name string
		path string
		opts []message.Option
		body string
		code codes.Code
	}{
		{"no credentials", "/pub", []message.Option{query("topic=alice/x")}, "x", codes.Unauthorized},
		{"wrong password", "/pub", []message.Option{creds(basic("alice", "nope")), query("topic=alice/x")}, "x", codes.Unauthorized},
		{"bad jwt", "/pub", []message.Option{creds("Basic a.b.c"), query("topic=alice/x")}, "x", codes.Unauthorized},
		{"acl", "/pub", []message.Option{creds(basic("bob", "bobpw")), query("topic=alice/x")}, "x", codes.Forbidden},
		{"no topic", "/pub", []message.Option{good, query("qos=0")}, "x", codes.BadRequest},
		{"wildcard", "/pub", []message.Option{good, query("topic=alice/+")}, "x", codes.BadRequest},
		{"hash", "/ps/alice/#", []message.Option{good}, "x", codes.BadRequest},
		{"qos 3", "/pub", []message.Option{good, query("topic=alice/x&qos=3")}, "x", codes.BadRequest},
		{"retain", "/pub", []message.Option{good, query("topic=alice/x&retain=yes")}, "x", codes.BadRequest},
		{"unknown key", "/pub", []message.Option{good, query("topic=alice/x&foo=1")}, "x", codes.BadRequest},
		{"bad escape", "/pub", []message.Option{good, query("topic=alice/%zz")}, "x", codes.BadRequest},
		{"topic twice", "/ps/alice/x", []message.Option{good, query("topic=alice/y")}, "x", codes.BadRequest},
		{"too large", "/pub", []message.Option{good, query("topic=alice/x")}, strings.Repeat("x", 4097), codes.RequestEntityTooLarge},
		{"unknown path", "/nope", []message.Option{good}, "x", codes.NotFound},
	} {
		a := post(t, cc, c.path, c.body, c.opts...)
		if a.code != c.code || a.OK || a.Err == "" {
			t.Errorf("%s: %v %+v, want %v", c.name, a.code, a, c.code)
		}
	}
	s.none(t)
}

func jwtToken(t *testing.T, sub string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte("jwt-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestObserveReceivesMQTT(t *testing.T) {
	e := newEnv(t)
	pub := subscribe(t, e.mqtt, "unused/x") // a connected MQTT client to publish with
	pub.c.Publish("alice/retained", 1, true, "old").WaitTimeout(waitTimeout)
	cc := dialUDP(t, e.udp)
	type note struct{ topic, payload string }
	notes := make(chan note, 10)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	obs, err := cc.Observe(ctx, "/ps/alice/+", func(n *pool.Message) {
		b, _ := n.ReadBody()
		var lv []string
		for _, o := range n.Options() {
			if o.ID == message.LocationPath {
				lv = append(lv, string(o.Value))
			}
		}
		notes <- note{strings.Join(lv, "/"), string(b)}
	}, creds(basic("alice", "secret")))
	if err != nil {
		t.Fatal(err)
	}
	want := func(topic, payload string) {
		t.Helper()
		deadline := time.After(waitTimeout)
		for {
			select {
			case n := <-notes:
				if n.topic == "" {
					continue // the registration's own answer
				}
				if n.topic != topic || n.payload != payload {
					t.Fatalf("got %s %q, want %s %q", n.topic, n.payload, topic, payload)
				}
				return
			case <-deadline:
				t.Fatalf("no notification for %s", topic)
			}
		}
	}
	want("alice/retained", "old")
	pub.c.Publish("alice/live", 0, false, "new").WaitTimeout(waitTimeout)
	want("alice/live", "new")
	pub.c.Publish("alice/a/deeper", 0, false, "no").WaitTimeout(waitTimeout)
	pub.c.Publish("alice/qos2", 2, false, "two").WaitTimeout(waitTimeout)
	want("alice/qos2", "two")
	if n := e.g.Observations(); n != 1 {
		t.Fatalf("%d observations", n)
	}
	if err := obs.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for e.g.Observations() != 0 || e.b.Observers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("observation not ended: %d %d", e.g.Observations(), e.b.Observers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No MQTT session was made for the observer.
	if _, total := e.b.Clients(broker.ClientFilter{}, 0, 0); total != 1 {
		t.Fatalf("%d sessions", total)
	}
}

// A device that only listens keeps its observation past go-coap's idle
// timeout (it is pinged, and answers), and one that is gone loses it.
func TestObserveOutlivesIdlePeer(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.idle, s.tick = 300*time.Millisecond, 50*time.Millisecond })
	pub := subscribe(t, e.mqtt, "unused/y")
	cc := dialUDP(t, e.udp)
	got := make(chan string, 10)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cc.Observe(ctx, "/ps/alice/idle", func(n *pool.Message) {
		if b, _ := n.ReadBody(); len(b) > 0 && b[0] != '{' {
			got <- string(b)
		}
	}, creds(basic("alice", "secret"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // many idle periods without a word from the device
	pub.c.Publish("alice/idle", 0, false, "still there").WaitTimeout(waitTimeout)
	select {
	case p := <-got:
		if p != "still there" {
			t.Fatalf("got %q", p)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("observation lost while idle (%d observations)", e.g.Observations())
	}
	cc.Close() // gone without deregistering
	deadline := time.Now().Add(waitTimeout)
	for e.g.Observations() != 0 || e.b.Observers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("observation of a vanished peer kept: %d", e.g.Observations())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestObserveRefused(t *testing.T) {
	e := newEnv(t)
	cc := dialUDP(t, e.udp)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for name, c := range map[string]struct {
		path string
		cr   string
		code codes.Code
	}{
		"acl":      {"/ps/alice/#", basic("bob", "bobpw"), codes.Forbidden},
		"password": {"/ps/alice/#", basic("alice", "x"), codes.Unauthorized},
		"filter":   {"/ps/alice/#/x", basic("alice", "secret"), codes.BadRequest},
	} {
		got := make(chan codes.Code, 4)
		obs, err := cc.Observe(ctx, c.path, func(n *pool.Message) { got <- n.Code() }, creds(c.cr))
		if err == nil {
			obs.Cancel(ctx)
		}
		select {
		case code := <-got:
			if code != c.code {
				t.Errorf("%s: %v, want %v", name, code, c.code)
			}
		case <-time.After(waitTimeout):
			t.Errorf("%s: no answer (%v)", name, err)
		}
	}
	if e.b.Observers() != 0 {
		t.Fatalf("%d observers left", e.b.Observers())
	}
}

// Garbage datagrams neither crash the gateway nor stop it answering.
func TestMalformedDatagrams(t *testing.T) {
	e := newEnv(t)
	s := subscribe(t, e.mqtt, "alice/#")
	conn, err := net.Dial("udp", e.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, d := range [][]byte{
		{}, {0x00}, {0xff, 0xff, 0xff, 0xff},
		{0x40, 0x02, 0x00, 0x01},                                     // CON POST, no options
		{0x48, 0x02, 0x00, 0x01, 1, 2},                               // token length 8, 2 bytes of it
		{0x40, 0x02, 0x00, 0x01, 0xbf, 'p', 'u', 'b'},                // option length 15 needs an extension
		{0x40, 0x02, 0x00, 0x01, 0xe0},                               // option delta 14 without its two bytes
		{0x40, 0x02, 0x00, 0x01, 0xf0},                               // reserved 15 nibble
		{0x40, 0x01, 0x00, 0x01, 0x60, 0x04, 0xff, 0xff, 0xff, 0xff}, // observe of 4 bytes
		bytes.Repeat([]byte{0x5a}, 2000),
	} {
		conn.Write(d)
	}
	cc := dialUDP(t, e.udp)
	if a := post(t, cc, "/pub", "alive", creds(basic("alice", "secret")), query("topic=alice/alive")); !a.OK {
		t.Fatalf("%+v", a)
	}
	if m := s.next(t); string(m.Payload()) != "alive" {
		t.Fatalf("%q", m.Payload())
	}
}

func TestDTLSWithPSK(t *testing.T) {
	e := newEnv(t)
	s := subscribe(t, e.mqtt, "alice/#")
	cfg := &piondtls.Config{
		PSK:             func([]byte) ([]byte, error) { return []byte("psk-secret"), nil },
		PSKIdentityHint: []byte("device"),
		CipherSuites:    []piondtls.CipherSuiteID{piondtls.TLS_PSK_WITH_AES_128_CCM_8},
	}
	cc, err := dtls.Dial(e.dtls, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if a := post(t, cc, "/pub", "secure", creds(basic("alice", "secret")), query("topic=alice/dtls")); !a.OK {
		t.Fatalf("%+v", a)
	}
	if m := s.next(t); m.Topic() != "alice/dtls" || string(m.Payload()) != "secure" {
		t.Fatalf("%s %q", m.Topic(), m.Payload())
	}
	// A wrong key or identity gets no session.
	for name, c := range map[string]struct{ key, id string }{"key": {"wrong", "device"}, "identity": {"psk-secret", "intruder"}} {
		bad := *cfg
		bad.PSK = func([]byte) ([]byte, error) { return []byte(c.key), nil }
		bad.PSKIdentityHint = []byte(c.id)
		raw, err := net.Dial("udp", e.dtls)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := piondtls.Client(dtlsnet.PacketConnFromConn(raw), raw.RemoteAddr(), &bad)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := conn.HandshakeContext(ctx); err == nil {
			t.Errorf("wrong %s: handshake succeeded", name)
		}
		cancel()
		conn.Close()
	}
	s.none(t)
}

// libcoap's command-line client (apt libcoap3-bin): publish in, observe out.
func TestLibcoapClient(t *testing.T) {
	bin, err := exec.LookPath("coap-client-notls")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("coap-client-notls missing (apt install libcoap3-bin)")
		}
		t.Skip("coap-client-notls not installed")
	}
	e := newEnv(t)
	s := subscribe(t, e.mqtt, "alice/#")
	out, err := exec.Command(bin, "-m", "post", "-B", "5", "-O", "20,"+basic("alice", "secret"), "-e", "from libcoap",
		"coap://"+e.udp+"/pub?clientid=lc&topic=alice/libcoap&qos=1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"ok":true}`) {
		t.Fatalf("%v: %s", err, out)
	}
	if m := s.next(t); m.Topic() != "alice/libcoap" || string(m.Payload()) != "from libcoap" {
		t.Fatalf("%s %q", m.Topic(), m.Payload())
	}
	out, _ = exec.Command(bin, "-m", "post", "-B", "5", "-O", "20,"+basic("alice", "wrong"), "-e", "x", "coap://"+e.udp+"/pub?topic=alice/x").CombinedOutput()
	if !strings.Contains(string(out), "4.01") {
		t.Fatalf("wrong password: %s", out)
	}

	// Observe for three seconds while MQTT publishes.
	var buf syncBuffer
	cmd := exec.Command(bin, "-m", "get", "-s", "3", "-B", "4", "-w", "-O", "20,"+basic("alice", "secret"), "coap://"+e.udp+"/ps/alice/%2B")
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for e.g.Observations() == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("libcoap did not register: %s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.c.Publish("alice/lc1", 0, false, "to-libcoap-1").WaitTimeout(waitTimeout)
	s.c.Publish("alice/lc2", 1, false, "to-libcoap-2").WaitTimeout(waitTimeout)
	cmd.Wait()
	if !strings.Contains(buf.String(), "to-libcoap-1") || !strings.Contains(buf.String(), "to-libcoap-2") {
		t.Fatalf("libcoap output: %s", buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDTLSWithCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coolpy7"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	e := newEnv(t, func(s *Server) {
		s.cfg.CoAPDTLSCert, s.cfg.CoAPDTLSKey, s.cfg.CoAPDTLSPSK = certFile, keyFile, ""
	})
	s := subscribe(t, e.mqtt, "alice/#")
	roots := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	roots.AddCert(cert)
	cc, err := dtls.Dial(e.dtls, &piondtls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if a := post(t, cc, "/pub", "certified", creds(basic("alice", "secret")), query("topic=alice/cert")); !a.OK {
		t.Fatalf("%+v", a)
	}
	if m := s.next(t); m.Topic() != "alice/cert" || string(m.Payload()) != "certified" {
		t.Fatalf("%s %q", m.Topic(), m.Payload())
	}
}
