package e2e

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ---------------------------------------------------------------------------
// MQTT 3.1.1 clients: github.com/eclipse/paho.mqtt.golang

// msg3 is one application message as a 3.1.1 client saw it.
type msg3 struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Dup     bool
}

// client3 wraps a paho.mqtt.golang client whose every message (it
// subscribes without per-subscription callbacks) lands in msgs, one entry
// per PUBLISH packet received.
type client3 struct {
	mqtt.Client
	t    *testing.T
	msgs chan msg3
	lost chan error
}

// dial3 connects a 3.1.1 client and returns it with its CONNECT token (so
// callers can inspect the CONNACK) and the connect error, if any.
func dial3(t *testing.T, addr, id string, clean bool, mods ...func(*mqtt.ClientOptions)) (*client3, *mqtt.ConnectToken, error) {
	t.Helper()
	c := &client3{t: t, msgs: make(chan msg3, 4096), lost: make(chan error, 1)}
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(waitTimeout).
		SetWriteTimeout(waitTimeout).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			select {
			case c.msgs <- msg3{Topic: m.Topic(), Payload: string(m.Payload()), QoS: m.Qos(), Retain: m.Retained(), Dup: m.Duplicate()}:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		})
	for _, m := range mods {
		m(o)
	}
	c.Client = mqtt.NewClient(o)
	tok := c.Connect().(*mqtt.ConnectToken)
	if !tok.WaitTimeout(waitTimeout) {
		c.Disconnect(0)
		t.Fatalf("client %q: no CONNACK within %v", id, waitTimeout)
	}
	if tok.Error() == nil {
		t.Cleanup(func() {
			if c.IsConnectionOpen() {
				c.Disconnect(50)
			}
		})
	}
	return c, tok, tok.Error()
}

// connect3 connects a 3.1.1 client that must be accepted and returns it
// with the CONNACK's session present flag.
func connect3(t *testing.T, addr, id string, clean bool, mods ...func(*mqtt.ClientOptions)) (*client3, bool) {
	t.Helper()
	c, tok, err := dial3(t, addr, id, clean, mods...)
	if err != nil {
		t.Fatalf("client %q: connect: %v (return code %d)", id, err, tok.ReturnCode())
	}
	if rc := tok.ReturnCode(); rc != 0 {
		t.Fatalf("client %q: CONNACK return code %d, want 0", id, rc)
	}
	return c, tok.SessionPresent()
}

// sub subscribes to filters (filter -> requested QoS) in one SUBSCRIBE and
// returns the SUBACK return codes by filter.
func (c *client3) sub(filters map[string]byte) map[string]byte {
	c.t.Helper()
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(waitTimeout) {
		c.t.Fatalf("no SUBACK within %v for %v", waitTimeout, filters)
	}
	if err := tok.Error(); err != nil {
		c.t.Fatalf("subscribe %v: %v", filters, err)
	}
	return tok.(*mqtt.SubscribeToken).Result()
}

// mustSub subscribes to one filter and requires the requested QoS granted.
func (c *client3) mustSub(filter string, qos byte) {
	c.t.Helper()
	if got := c.sub(map[string]byte{filter: qos})[filter]; got != qos {
		c.t.Fatalf("SUBACK for %q: return code %#x, want granted QoS %d", filter, got, qos)
	}
}

// pub publishes and waits for the QoS flow to complete.
func (c *client3) pub(topic string, qos byte, retain bool, payload string) {
	c.t.Helper()
	tok := c.Publish(topic, qos, retain, []byte(payload))
	if !tok.WaitTimeout(waitTimeout) {
		c.t.Fatalf("publish %q QoS %d: flow not complete within %v", topic, qos, waitTimeout)
	}
	if err := tok.Error(); err != nil {
		c.t.Fatalf("publish %q QoS %d: %v", topic, qos, err)
	}
}

func (c *client3) unsub(filters ...string) {
	c.t.Helper()
	tok := c.Unsubscribe(filters...)
	if !tok.WaitTimeout(waitTimeout) {
		c.t.Fatalf("no UNSUBACK within %v", waitTimeout)
	}
	if err := tok.Error(); err != nil {
		c.t.Fatalf("unsubscribe %v: %v", filters, err)
	}
}

func (c *client3) next(what string) msg3 {
	c.t.Helper()
	return recv(c.t, c.msgs, waitTimeout, what)
}

func (c *client3) none(what string) {
	c.t.Helper()
	expectNothing(c.t, c.msgs, quietPeriod, what)
}

// ---------------------------------------------------------------------------
// MQTT 5.0 clients: github.com/eclipse/paho.golang/paho over a plain net.Conn

type client5 struct {
	*paho.Client
	t       *testing.T
	conn    net.Conn
	connack *paho.Connack
	msgs    chan *paho.Publish
	disc    chan *paho.Disconnect
	lost    chan error
}

// dial5 opens a TCP connection and sends cp. It returns the client, the
// CONNACK (nil if none arrived) and paho's error (set for a CONNACK reason
// code >= 0x80).
func dial5(t *testing.T, addr string, cp *paho.Connect) (*client5, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &client5{
		t:    t,
		conn: conn,
		msgs: make(chan *paho.Publish, 4096),
		disc: make(chan *paho.Disconnect, 1),
		lost: make(chan error, 1),
	}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:          conn,
		PacketTimeout: waitTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case c.msgs <- pr.Packet:
				default:
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disc <- d:
			default:
			}
		},
		OnClientError: func(err error) {
			select {
			case c.lost <- err:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err == nil {
		t.Cleanup(func() {
			_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
			_ = conn.Close()
		})
	} else {
		_ = conn.Close()
	}
	c.connack = ca
	return c, ca, err
}

// connect5 connects a 5.0 client that must be accepted.
func connect5(t *testing.T, addr string, cp *paho.Connect) *client5 {
	t.Helper()
	c, ca, err := dial5(t, addr, cp)
	if err != nil {
		t.Fatalf("client %q: connect: %v", cp.ClientID, err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("client %q: CONNACK reason code %#x, want 0", cp.ClientID, ca.ReasonCode)
	}
	return c
}

// cp5 is a CONNECT with clean start and a keepalive long enough not to
// matter.
func cp5(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

func (c *client5) subscribe(s *paho.Subscribe) *paho.Suback {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sa, err := c.Subscribe(ctx, s)
	if sa == nil {
		c.t.Fatalf("subscribe %+v: no SUBACK: %v", s.Subscriptions, err)
	}
	return sa
}

// mustSub subscribes with the given options and requires them granted.
func (c *client5) mustSub(opts ...paho.SubscribeOptions) {
	c.t.Helper()
	sa := c.subscribe(&paho.Subscribe{Subscriptions: opts})
	for i, o := range opts {
		if i >= len(sa.Reasons) || sa.Reasons[i] != o.QoS {
			c.t.Fatalf("SUBACK reason codes %#x, want granted QoS %d for %q", sa.Reasons, o.QoS, o.Topic)
		}
	}
}

func (c *client5) publish(p *paho.Publish) *paho.PublishResponse {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	pr, err := c.Publish(ctx, p)
	if err != nil {
		c.t.Fatalf("publish %q QoS %d: %v", p.Topic, p.QoS, err)
	}
	if pr != nil && pr.ReasonCode >= 0x80 {
		c.t.Fatalf("publish %q QoS %d: reason code %#x", p.Topic, p.QoS, pr.ReasonCode)
	}
	return pr
}

func (c *client5) next(what string) *paho.Publish {
	c.t.Helper()
	return recv(c.t, c.msgs, waitTimeout, what)
}

func (c *client5) none(what string) {
	c.t.Helper()
	expectNothing(c.t, c.msgs, quietPeriod, what)
}

// kill drops the TCP connection without DISCONNECT, as a crashed client
// or a network failure would.
func (c *client5) kill() {
	c.TerminateConnectionForTest()
}

// quit sends DISCONNECT with reason code 0 (and optional properties).
func (c *client5) quit(props *paho.DisconnectProperties) {
	c.t.Helper()
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0, Properties: props}); err != nil {
		c.t.Fatalf("disconnect: %v", err)
	}
}
