package transport_test

import (
	"bufio"
	"bytes"
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/transport"
)

const wait = 5 * time.Second

// fixture is a broker with every kind of listener on 127.0.0.1:0: its own
// TCP listener, and WS, WSS and TLS listeners reporting to it.
type fixture struct {
	tcp, ws, wss, tls string // host:port
	ca                *testCA
	roots             *stdtls.Config // trusts the server certificate
}

// startFixture starts the broker; clientAuth is "" or a transport
// ClientAuth policy (with the fixture's CA as the client CA), origins the
// WebSocket listeners' allowed origins.
func startFixture(t *testing.T, clientAuth string, origins ...string) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.ConnectTimeout = 1
	cfg.SysInterval = 0
	cfg.DataDir = ""
	srv, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{tcp: srv.Addr(), ca: newCA(t, "coolpy7 test CA")}
	dir := t.TempDir()
	cert, key := f.ca.server(t, dir)
	opts := transport.TLSOptions{CertFile: cert, KeyFile: key}
	if clientAuth != "" {
		opts.ClientAuth = clientAuth
		opts.ClientCAFile = f.ca.write(t, dir)
	}
	st, err := transport.LoadServerTLS(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.roots = &stdtls.Config{RootCAs: f.ca.pool()}
	ls := []transport.Listener{
		transport.NewWebSocket("127.0.0.1:0", transport.WSOptions{Origins: origins}, nil, srv),
		transport.NewWebSocket("127.0.0.1:0", transport.WSOptions{Origins: origins}, st, srv),
		transport.NewTLS("127.0.0.1:0", st, srv),
	}
	for _, l := range ls {
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
	}
	f.ws, f.wss, f.tls = ls[0].Addr(), ls[1].Addr(), ls[2].Addr()
	t.Cleanup(func() {
		for _, l := range ls {
			l.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return f
}

// url is the broker URL for a paho client over the given transport.
func (f *fixture) url(kind string) string {
	switch kind {
	case "ws":
		return "ws://" + f.ws + "/mqtt"
	case "wss":
		return "wss://" + f.wss + "/mqtt"
	case "tls":
		return "tls://" + f.tls
	}
	return "tcp://" + f.tcp
}

// tlsFor is a client TLS configuration trusting the server, with cert as
// the client certificate when given.
func (f *fixture) tlsFor(cert ...stdtls.Certificate) *stdtls.Config {
	c := f.roots.Clone()
	c.Certificates = cert
	return c
}

// dial connects a paho client, or returns why it could not.
func dial(url, id string, tc *stdtls.Config) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetTLSConfig(tc).
		SetAutoReconnect(false).SetConnectTimeout(wait).SetWriteTimeout(wait)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(2 * wait) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func mustDial(t *testing.T, url, id string, tc *stdtls.Config) mqtt.Client {
	t.Helper()
	c, err := dial(url, id, tc)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// exchange subscribes sub to topic, publishes each payload from pub at
// qos and checks that all of them arrive, in order.
func exchange(t *testing.T, sub, pub mqtt.Client, topic string, qos byte, payloads ...[]byte) {
	t.Helper()
	got := make(chan []byte, len(payloads))
	tok := sub.Subscribe(topic, qos, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() })
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for _, p := range payloads {
		if tok := pub.Publish(topic, qos, false, p); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	for i, want := range payloads {
		select {
		case p := <-got:
			if !bytes.Equal(p, want) {
				t.Fatalf("message %d: %d bytes, want %d", i, len(p), len(want))
			}
		case <-time.After(wait):
			t.Fatalf("message %d of %d not delivered", i, len(payloads))
		}
	}
}

// TestPahoOverEveryTransport publishes between paho clients over WS, WSS,
// TLS and TCP in every pairing, at every QoS, with a payload large enough
// to span many WebSocket frames and TLS records.
func TestPahoOverEveryTransport(t *testing.T) {
	f := startFixture(t, "")
	large := bytes.Repeat([]byte("coolpy7 "), 40000) // 320 KB
	kinds := []string{"ws", "wss", "tls", "tcp"}
	clients := map[string]mqtt.Client{}
	for _, k := range kinds {
		clients[k] = mustDial(t, f.url(k), "paho-"+k, f.roots)
	}
	for i, from := range kinds {
		to := kinds[(i+1)%len(kinds)]
		t.Run(from+"-to-"+to, func(t *testing.T) {
			for qos := range byte(3) {
				topic := fmt.Sprintf("t/%s/%s/%d", from, to, qos)
				exchange(t, clients[to], clients[from], topic, qos, []byte("small"), large, []byte("after"))
			}
		})
	}
}

// wsDial opens a raw WebSocket to the fixture (plain, or secure when tc is
// set) offering protocols, with header added to the request.
func wsDial(addr string, tc *stdtls.Config, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: protocols, TLSClientConfig: tc, HandshakeTimeout: wait}
	scheme := "ws://"
	if tc != nil {
		scheme = "wss://"
	}
	return d.Dial(scheme+addr+"/mqtt", header)
}

// MQTT 3.1.1 packets for raw tests.
var (
	connectPkt = func(id string) []byte {
		vh := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, byte(len(id))}, id...)
		return append([]byte{0x10, byte(len(vh))}, vh...)
	}
	connack  = []byte{0x20, 2, 0, 0}
	pingreq  = []byte{0xC0, 0}
	pingresp = []byte{0xD0, 0}
)

// maskedFrame is a client frame with a fixed masking key.
func maskedFrame(fin bool, op byte, p []byte) []byte {
	if fin {
		op |= 0x80
	}
	key := []byte{0x37, 0xfa, 0x21, 0x3d}
	f := append([]byte{op, 0x80 | byte(len(p))}, key...)
	for i, c := range p {
		f = append(f, c^key[i%4])
	}
	return f
}

// readPackets reads binary messages until it has n bytes.
func readPackets(t *testing.T, c *websocket.Conn, n int) []byte {
	t.Helper()
	var got []byte
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for len(got) < n {
		typ, m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if typ != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", typ)
		}
		got = append(got, m...)
	}
	return got
}

// TestWebSocketFraming sends MQTT in frames cut every way the spec allows:
// several packets in one frame, one packet over several frames of a
// fragmented message with a ping inside it, and a packet split across
// messages. Each packet the broker sends is one binary message.
func TestWebSocketFraming(t *testing.T) {
	f := startFixture(t, "")
	for _, secure := range []bool{false, true} {
		name, addr, tc := "ws", f.ws, (*stdtls.Config)(nil)
		if secure {
			name, addr, tc = "wss", f.wss, f.roots
		}
		t.Run(name, func(t *testing.T) {
			c, resp, err := wsDial(addr, tc, nil, "mqtt")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "mqtt" {
				t.Fatalf("subprotocol %q", p)
			}
			// CONNECT and two PINGREQs in one frame.
			msg := append(append(connectPkt("framing-"+name), pingreq...), pingreq...)
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			want := append(append(append([]byte{}, connack...), pingresp...), pingresp...)
			if got := readPackets(t, c, len(want)); !bytes.Equal(got, want) {
				t.Fatalf("got %x, want %x", got, want)
			}
			// gorilla cannot fragment a message by hand, so these frames
			// go to the connection under it: a PINGREQ as a message of
			// three fragments, the middle one empty, with a ping between
			// the first two; then a PINGREQ split across two messages.
			pongs := make(chan string, 1)
			c.SetPongHandler(func(s string) error { pongs <- s; return nil })
			var raw []byte
			raw = append(raw, maskedFrame(false, 0x2, pingreq[:1])...)
			raw = append(raw, maskedFrame(true, 0x9, []byte("are you there"))...)
			raw = append(raw, maskedFrame(false, 0x0, nil)...)
			raw = append(raw, maskedFrame(true, 0x0, pingreq[1:])...)
			raw = append(raw, maskedFrame(true, 0x2, pingreq[:1])...)
			raw = append(raw, maskedFrame(true, 0x2, pingreq[1:])...)
			if _, err := c.UnderlyingConn().Write(raw); err != nil {
				t.Fatal(err)
			}
			pingresps := append(append([]byte{}, pingresp...), pingresp...)
			if got := readPackets(t, c, 4); !bytes.Equal(got, pingresps) {
				t.Fatalf("got %x, want %x", got, pingresps)
			}
			select {
			case p := <-pongs:
				if p != "are you there" {
					t.Fatalf("pong %q", p)
				}
			case <-time.After(wait):
				t.Fatal("no pong")
			}
			// A Close frame is answered with the same status.
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(wait))
			_, _, err = c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4001 {
				t.Fatalf("after close: %v", err)
			}
		})
	}
}

// TestWebSocketSubprotocols checks the negotiation: the client's first
// MQTT subprotocol is chosen, none offered is taken as MQTT, and an offer
// with no MQTT subprotocol is refused with 400 while the broker carries on.
func TestWebSocketSubprotocols(t *testing.T) {
	f := startFixture(t, "")
	for _, tc := range []struct {
		offer  []string
		chosen string
	}{
		{[]string{"mqtt"}, "mqtt"},
		{[]string{"mqttv3.1"}, "mqttv3.1"},
		{[]string{"mqttv5"}, "mqttv5"},
		{[]string{"wamp", "mqttv3.1", "mqtt"}, "mqttv3.1"},
		{nil, ""},
	} {
		c, resp, err := wsDial(f.ws, nil, nil, tc.offer...)
		if err != nil {
			t.Fatalf("%q: %v", tc.offer, err)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != tc.chosen {
			t.Errorf("%q: chose %q, want %q", tc.offer, p, tc.chosen)
		}
		_ = c.WriteMessage(websocket.BinaryMessage, connectPkt("proto"))
		if got := readPackets(t, c, 4); !bytes.Equal(got, connack) {
			t.Fatalf("%q: got %x", tc.offer, got)
		}
		c.Close()
	}
	for _, addr := range []string{f.ws, f.wss} {
		tc := (*stdtls.Config)(nil)
		if addr == f.wss {
			tc = f.roots
		}
		_, resp, err := wsDial(addr, tc, nil, "chat", "superchat")
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong subprotocol: err %v, response %v", err, resp)
		}
	}
	mustDial(t, f.url("ws"), "still-up", nil)
}

// rawHTTP sends a request to the WebSocket listener and returns the
// status line of the answer.
func rawHTTP(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%.40q: %v", req, err)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// TestWebSocketRefusals sends requests that must not be upgraded, and
// frames that must close the connection, and checks the answers.
func TestWebSocketRefusals(t *testing.T) {
	f := startFixture(t, "", "https://chat.example.com")
	const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	upgrade := func(extra string) string {
		return "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + extra + "\r\n"
	}
	for name, tc := range map[string]struct{ req, status string }{
		"plain GET":     {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 Upgrade Required"},
		"POST":          {"POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
		"HTTP/1.0":      {"GET /mqtt HTTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		"no version":    {upgrade(key), "HTTP/1.1 426 Upgrade Required"},
		"version 8":     {upgrade(key + "Sec-WebSocket-Version: 8\r\n"), "HTTP/1.1 426 Upgrade Required"},
		"no key":        {upgrade("Sec-WebSocket-Version: 13\r\n"), "HTTP/1.1 400 Bad Request"},
		"short key":     {upgrade("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n"), "HTTP/1.1 400 Bad Request"},
		"other origin":  {upgrade(key + "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example.com\r\n"), "HTTP/1.1 403 Forbidden"},
		"two origins":   {upgrade(key + "Sec-WebSocket-Version: 13\r\nOrigin: https://chat.example.com\r\nOrigin: https://x\r\n"), "HTTP/1.1 403 Forbidden"},
		"folded header": {upgrade(key + "Sec-WebSocket-Version: 13\r\n more\r\n"), "HTTP/1.1 400 Bad Request"},
		"huge header":   {upgrade(key + "X-Pad: " + strings.Repeat("a", 9000) + "\r\n"), "HTTP/1.1 431 Request Header Fields Too Large"},
		"allowed":       {upgrade(key + "Sec-WebSocket-Version: 13\r\nOrigin: https://CHAT.example.com/\r\n"), "HTTP/1.1 101 Switching Protocols"},
		"no origin":     {upgrade(key + "Sec-WebSocket-Version: 13\r\n"), "HTTP/1.1 101 Switching Protocols"},
	} {
		if got := rawHTTP(t, f.ws, tc.req); got != tc.status {
			t.Errorf("%s: %q, want %q", name, got, tc.status)
		}
	}

	for name, tc := range map[string]struct {
		send func(*websocket.Conn) error
		code int
	}{
		"text frame": {func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte("{}")) },
			websocket.CloseUnsupportedData},
		"bad close": {func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, []byte{3, 0xed}, time.Now().Add(wait))
		}, websocket.CloseProtocolError},
	} {
		c, _, err := wsDial(f.ws, nil, nil, "mqtt")
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.send(c); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, _, err = c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: %v, want close %d", name, err, tc.code)
		}
		c.Close()
	}
	mustDial(t, f.url("ws"), "still-up", nil)
}

// TestTLSBadCertificates refuses every kind of bad certificate, on the TLS
// and the WSS listener, and keeps serving good clients.
func TestTLSBadCertificates(t *testing.T) {
	f := startFixture(t, transport.ClientAuthRequire)
	other := newCA(t, "some other CA")
	good := f.ca.client(t, "device-1", nil)
	for name, tc := range map[string]*stdtls.Config{
		"untrusted server": {Certificates: []stdtls.Certificate{good}}, // the client does not trust our CA
		"no client cert":   f.tlsFor(),
		"other CA":         f.tlsFor(other.client(t, "device-1", nil)),
		"expired": f.tlsFor(f.ca.client(t, "device-1", func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		})),
		"server-only usage": f.tlsFor(f.ca.client(t, "device-1", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		})),
		"huge RSA key": f.tlsFor(hugeRSAClient(t, f.ca)),
	} {
		for _, kind := range []string{"tls", "wss"} {
			if c, err := dial(f.url(kind), "bad", tc); err == nil {
				c.Disconnect(0)
				t.Errorf("%s over %s: connected", name, kind)
			}
		}
	}
	for _, kind := range []string{"tls", "wss"} {
		mustDial(t, f.url(kind), "good-"+kind, f.tlsFor(good))
	}
}

// TestTLSStalledHandshake opens connections that stop half-way: no
// ClientHello, half a ClientHello, half an HTTP upgrade, and no upgrade
// after a TLS handshake. Each is closed by the CONNECT timeout (1 s here),
// and clients keep connecting meanwhile: nothing waits on a stalled peer.
func TestTLSStalledHandshake(t *testing.T) {
	f := startFixture(t, "")
	var stalled []net.Conn
	open := func(addr string, first []byte) {
		c, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) > 0 {
			if _, err := c.Write(first); err != nil {
				t.Fatal(err)
			}
		}
		stalled = append(stalled, c)
	}
	hello := clientHello(t)
	open(f.tls, nil)
	open(f.tls, hello[:len(hello)/2])
	open(f.wss, hello[:10])
	open(f.ws, []byte("GET /mqtt HTTP/1.1\r\nHost: x\r\n"))
	// A finished TLS handshake with no WebSocket upgrade after it.
	tc, err := stdtls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", f.wss, f.roots)
	if err != nil {
		t.Fatal(err)
	}
	stalled = append(stalled, tc)

	start := time.Now()
	for _, k := range []string{"tls", "wss", "ws", "tcp"} {
		c := mustDial(t, f.url(k), "meanwhile-"+k, f.roots)
		c.Disconnect(0)
	}
	for i, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("stalled connection %d still open after %v", i, time.Since(start))
		}
		c.Close()
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stalled connections closed after %v", d)
	}
	mustDial(t, f.url("tls"), "after", f.roots)
}

// clientHello captures the first flight of a crypto/tls client.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		c := stdtls.Client(a, &stdtls.Config{ServerName: "localhost"})
		_ = c.SetDeadline(time.Now().Add(wait))
		_ = c.Handshake()
	}()
	buf := make([]byte, 4096)
	_ = b.SetReadDeadline(time.Now().Add(wait))
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	return buf[:n]
}

// recorder is a Handler that echoes what it reads and records the events
// of one connection.
type recorder struct {
	mu      sync.Mutex
	events  []string
	cn      string
	written int
	wrote   int
	err     error
	closed  chan struct{}
}

func (r *recorder) Open(c transport.Conn) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "open")
	return c
}

func (r *recorder) Data(state any, data []byte) {
	c := state.(transport.Conn)
	r.mu.Lock()
	r.events = append(r.events, "data")
	r.cn = transport.CommonName(c)
	r.wrote += len(data)
	r.mu.Unlock()
	_, _ = c.Write(data)
}

func (r *recorder) Written(_ any, n int) {
	r.mu.Lock()
	r.written += n
	r.mu.Unlock()
}

func (r *recorder) Close(_ any, err error) {
	r.mu.Lock()
	r.events = append(r.events, "close")
	r.err = err
	r.mu.Unlock()
	close(r.closed)
}

// TestTLSEventsAndCommonName drives the TLS listener with a plain
// Handler: a client with a certificate gets its bytes echoed, the Handler
// sees open, data and close, can read the certificate's CN, and is told of
// exactly the bytes it wrote, not the TLS records that carried them.
func TestTLSEventsAndCommonName(t *testing.T) {
	ca := newCA(t, "events CA")
	dir := t.TempDir()
	cert, key := ca.server(t, dir)
	st, err := transport.LoadServerTLS(transport.TLSOptions{CertFile: cert, KeyFile: key,
		ClientAuth: transport.ClientAuthOptional, ClientCAFile: ca.write(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	for _, withCert := range []bool{true, false} {
		r := &recorder{closed: make(chan struct{})}
		l := transport.NewTLS("127.0.0.1:0", st, r)
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		tc := &stdtls.Config{RootCAs: ca.pool()}
		want := ""
		if withCert {
			tc.Certificates = []stdtls.Certificate{ca.client(t, "sensor-42", nil)}
			want = "sensor-42"
		}
		c, err := stdtls.Dial("tcp", l.Addr(), tc)
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte("echo"), 10000)
		go func() { _, _ = c.Write(msg) }()
		got := make([]byte, len(msg))
		_ = c.SetReadDeadline(time.Now().Add(wait))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %v", err)
		}
		c.Close()
		select {
		case <-r.closed:
		case <-time.After(wait):
			t.Fatal("no close event")
		}
		l.Stop()
		r.mu.Lock()
		if r.cn != want {
			t.Errorf("common name %q, want %q", r.cn, want)
		}
		if r.events[0] != "open" || r.events[len(r.events)-1] != "close" || r.wrote != len(msg) {
			t.Errorf("events %v, %d bytes", r.events, r.wrote)
		}
		if r.written != r.wrote {
			t.Errorf("told %d bytes written, wrote %d", r.written, r.wrote)
		}
		r.mu.Unlock()
	}
}

// TestTLSRefusesHugeRSAKey checks that a client certificate with a key
// past the size limit is refused for its size, before any signature by it
// is checked (CVE-2023-29409).
func TestTLSRefusesHugeRSAKey(t *testing.T) {
	ca := newCA(t, "size CA")
	dir := t.TempDir()
	cert, key := ca.server(t, dir)
	st, err := transport.LoadServerTLS(transport.TLSOptions{CertFile: cert, KeyFile: key,
		ClientAuth: transport.ClientAuthRequire, ClientCAFile: ca.write(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{closed: make(chan struct{})}
	l := transport.NewTLS("127.0.0.1:0", st, r)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	tc := &stdtls.Config{RootCAs: ca.pool(), Certificates: []stdtls.Certificate{hugeRSAClient(t, ca)}}
	if c, err := stdtls.Dial("tcp", l.Addr(), tc); err == nil {
		// TLS 1.3 clients learn of the refusal on their first read.
		_ = c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("huge key accepted")
		}
		c.Close()
	}
	select {
	case <-r.closed:
	case <-time.After(wait):
		t.Fatal("not closed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil || !strings.Contains(r.err.Error(), "9000-bit RSA key") {
		t.Fatalf("closed with %v, want the key size refused", r.err)
	}
}

// TestBrokerConfigListeners starts the broker from configuration keys
// alone and connects over each listener.
func TestBrokerConfigListeners(t *testing.T) {
	ca := newCA(t, "config CA")
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen = ""
	cfg.SysInterval = 0
	cfg.DataDir = ""
	cfg.TLSCert, cfg.TLSKey = ca.server(t, dir)
	cfg.TLSListen, cfg.WSListen, cfg.WSSListen = freeAddr(t), freeAddr(t), freeAddr(t)
	srv, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	tc := &stdtls.Config{RootCAs: ca.pool()}
	for _, url := range []string{"tls://" + cfg.TLSListen, "ws://" + cfg.WSListen + "/mqtt", "wss://" + cfg.WSSListen + "/any/path"} {
		c, err := dial(url, "cfg", tc)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		c.Disconnect(0)
	}
	cfg.TLSCert = dir + "/missing.pem"
	if _, err := broker.New(cfg, nil); err == nil {
		t.Fatal("a missing certificate file was accepted")
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestAcceptedSocketsCloseOnExec checks that no socket of the process,
// accepted ones included, lacks close-on-exec once clients are connected
// over WS, WSS and TLS (see cloexec.go for what happens otherwise).
func TestAcceptedSocketsCloseOnExec(t *testing.T) {
	f := startFixture(t, "")
	for _, k := range []string{"ws", "wss", "tls"} {
		mustDial(t, f.url(k), "cloexec-"+k, f.roots)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	sockets := 0
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(target, "socket:") {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			continue // closed since the listing
		}
		sockets++
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("socket fd %d lacks close-on-exec", fd)
		}
	}
	if sockets < 6 {
		t.Fatalf("found only %d sockets", sockets)
	}
}
