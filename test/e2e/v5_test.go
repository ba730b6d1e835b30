package e2e

// MQTT 5.0 behaviour through github.com/eclipse/paho.golang/paho (over a
// plain net.Conn); the raw client is used where paho keeps only part of
// what arrived (several Subscription Identifiers, topic aliases, flow
// control).

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/config"
	"github.com/eclipse/paho.golang/paho"
)

// A zero-length client ID is given a unique Assigned Client Identifier
// [MQTT-3.1.3-6, 3.1.3-7, 3.2.2-16]; a client that chose its ID gets none.
func TestV5AssignedClientID(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	a := connect5(t, addr, &paho.Connect{CleanStart: true, KeepAlive: 30})
	b := connect5(t, addr, &paho.Connect{CleanStart: false, KeepAlive: 30})
	ida, idb := a.connack.Properties.AssignedClientID, b.connack.Properties.AssignedClientID
	if ida == "" || idb == "" {
		t.Fatalf("Assigned Client Identifiers %q and %q, want both non-empty", ida, idb)
	}
	if ida == idb {
		t.Fatalf("both anonymous clients were assigned %q", ida)
	}
	named := connect5(t, addr, cp5(uniqueID("named")))
	if id := named.connack.Properties.AssignedClientID; id != "" {
		t.Errorf("client with its own ID was assigned %q", id)
	}
	// Both anonymous clients are live, separate sessions.
	a.mustSub(paho.SubscribeOptions{Topic: "anon/t", QoS: 1})
	b.mustSub(paho.SubscribeOptions{Topic: "anon/t", QoS: 1})
	named.publish(&paho.Publish{Topic: "anon/t", QoS: 1, Payload: []byte("both")})
	for _, c := range []*client5{a, b} {
		if m := c.next("message to an anonymous client"); string(m.Payload) != "both" {
			t.Fatalf("got %v", m)
		}
	}
}

// Session Expiry Interval (3.1.2.11.2, 3.14.2.2.2): 0 ends the session with
// the connection; N keeps it N seconds; DISCONNECT may change it; Clean
// Start discards it [MQTT-3.1.2-4, 3.1.2-23, 3.2.2-2, 3.2.2-3].
func TestV5SessionExpiry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		expiry      uint32  // in CONNECT
		discExpiry  *uint32 // in DISCONNECT; nil leaves it
		kill        bool    // drop the connection instead of DISCONNECT
		wait        time.Duration
		cleanStart  bool // on reconnect
		wantPresent bool
	}{
		{name: "expiry 0", expiry: 0, wantPresent: false},
		{name: "expiry 30", expiry: 30, wantPresent: true},
		{name: "expiry 30 connection dropped", expiry: 30, kill: true, wantPresent: true},
		{name: "expiry 1 elapsed", expiry: 1, wait: 2500 * time.Millisecond, wantPresent: false},
		{name: "expiry 1 raised to 30 by DISCONNECT", expiry: 1, discExpiry: u32(30), wait: 2500 * time.Millisecond, wantPresent: true},
		{name: "expiry 30 cut to 0 by DISCONNECT", expiry: 30, discExpiry: u32(0), wantPresent: false},
		{name: "expiry 30 then clean start", expiry: 30, cleanStart: true, wantPresent: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, nil)
			id := uniqueID("sess")
			cp := cp5(id)
			cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32(tc.expiry)}
			c := connect5(t, addr, cp)
			if c.connack.SessionPresent {
				t.Fatal("new session: Session Present = 1")
			}
			c.mustSub(paho.SubscribeOptions{Topic: "sess/t", QoS: 1})
			if tc.kill {
				c.kill()
			} else {
				var dp *paho.DisconnectProperties
				if tc.discExpiry != nil {
					dp = &paho.DisconnectProperties{SessionExpiryInterval: tc.discExpiry}
				}
				c.quit(dp)
			}
			settle()
			p := connect5(t, addr, cp5(uniqueID("pub")))
			p.publish(&paho.Publish{Topic: "sess/t", QoS: 1, Payload: []byte("while away")})
			time.Sleep(tc.wait)

			rc := cp5(id)
			rc.CleanStart = tc.cleanStart
			c = connect5(t, addr, rc)
			if c.connack.SessionPresent != tc.wantPresent {
				t.Fatalf("reconnect: Session Present = %v, want %v", c.connack.SessionPresent, tc.wantPresent)
			}
			if !tc.wantPresent {
				c.none("a message for a subscription of an ended session")
				return
			}
			m := c.next("the message queued while away")
			if m.Topic != "sess/t" || string(m.Payload) != "while away" || m.QoS != 1 {
				t.Fatalf("got %v, want sess/t 'while away' at QoS 1", m)
			}
		})
	}
}

// No Local: a subscriber does not get its own publications on that
// subscription [MQTT-3.8.3-3].
func TestV5NoLocal(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	a := connect5(t, addr, cp5(uniqueID("a")))
	b := connect5(t, addr, cp5(uniqueID("b")))
	a.mustSub(paho.SubscribeOptions{Topic: "nl/t", QoS: 1, NoLocal: true}, paho.SubscribeOptions{Topic: "nl/local", QoS: 1})
	b.mustSub(paho.SubscribeOptions{Topic: "nl/t", QoS: 1, NoLocal: true})

	a.publish(&paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("from a")})
	if m := b.next("a's message at b"); string(m.Payload) != "from a" {
		t.Fatalf("b got %v", m)
	}
	a.publish(&paho.Publish{Topic: "nl/local", QoS: 1, Payload: []byte("loopback")})
	if m := a.next("own message on a subscription without No Local"); m.Topic != "nl/local" {
		t.Fatalf("a got %v, want its nl/local message (and not its nl/t one)", m)
	}
	a.none("own message on a No Local subscription")
}

// Retain As Published: with 1 the RETAIN flag is forwarded as published,
// with 0 it is cleared [MQTT-3.3.1-12, 3.3.1-13]; retained messages sent
// because of a new subscription always have RETAIN=1.
func TestV5RetainAsPublished(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	rap := connect5(t, addr, cp5(uniqueID("rap")))
	plain := connect5(t, addr, cp5(uniqueID("plain")))
	rap.mustSub(paho.SubscribeOptions{Topic: "rap/t", QoS: 1, RetainAsPublished: true})
	plain.mustSub(paho.SubscribeOptions{Topic: "rap/t", QoS: 1})
	p := connect5(t, addr, cp5(uniqueID("pub")))

	p.publish(&paho.Publish{Topic: "rap/t", QoS: 1, Retain: true, Payload: []byte("retained")})
	p.publish(&paho.Publish{Topic: "rap/t", QoS: 1, Payload: []byte("not retained")})
	for _, tc := range []struct {
		c    *client5
		name string
		want []bool
	}{{rap, "RAP=1", []bool{true, false}}, {plain, "RAP=0", []bool{false, false}}} {
		for i, payload := range []string{"retained", "not retained"} {
			m := tc.c.next(tc.name + " message")
			if string(m.Payload) != payload || m.Retain != tc.want[i] {
				t.Errorf("%s: got %q retain=%v, want %q retain=%v", tc.name, m.Payload, m.Retain, payload, tc.want[i])
			}
		}
	}
	late := connect5(t, addr, cp5(uniqueID("late")))
	late.mustSub(paho.SubscribeOptions{Topic: "rap/t", QoS: 1})
	if m := late.next("retained message on subscribe"); string(m.Payload) != "retained" || !m.Retain {
		t.Fatalf("new subscription: got %q retain=%v, want the retained message with RETAIN=1", m.Payload, m.Retain)
	}
}

// Retain Handling [MQTT-3.3.1-9, 3.3.1-10, 3.3.1-11]: 0 sends retained
// messages on every subscribe, 1 only when the subscription is new, 2
// never.
func TestV5RetainHandling(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rh           byte
		first, again bool // retained message expected on first subscribe, on re-subscribe
	}{{0, true, true}, {1, true, false}, {2, false, false}}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("RH=%d", tc.rh), func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, nil)
			p := connect5(t, addr, cp5(uniqueID("pub")))
			p.publish(&paho.Publish{Topic: "rh/x", QoS: 1, Retain: true, Payload: []byte("kept")})
			c := connect5(t, addr, cp5(uniqueID("rh")))
			for i, want := range []bool{tc.first, tc.again} {
				c.mustSub(paho.SubscribeOptions{Topic: "rh/+", QoS: 1, RetainHandling: tc.rh})
				if !want {
					c.none(fmt.Sprintf("retained message on subscribe #%d", i+1))
					continue
				}
				if m := c.next(fmt.Sprintf("retained message on subscribe #%d", i+1)); string(m.Payload) != "kept" || !m.Retain || m.Topic != "rh/x" {
					t.Fatalf("subscribe #%d: got %v", i+1, m)
				}
				c.none("a duplicate retained message")
			}
		})
	}
}

// Subscription Identifiers are returned on matching messages
// [MQTT-3.3.4-3]; a single copy matching several subscriptions carries all
// their identifiers [MQTT-3.3.4-4]; none is sent for a subscription made
// without one.
func TestV5SubscriptionIdentifiers(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	a := connect5(t, addr, cp5(uniqueID("sida")))
	if !a.connack.Properties.SubIDAvailable {
		t.Fatal("CONNACK says Subscription Identifiers are not available")
	}
	sa := a.subscribe(&paho.Subscribe{
		Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: intp(456789)},
		Subscriptions: []paho.SubscribeOptions{{Topic: "sid/t", QoS: 1}},
	})
	if !bytes.Equal(sa.Reasons, []byte{1}) {
		t.Fatalf("SUBACK %#x", sa.Reasons)
	}
	none := connect5(t, addr, cp5(uniqueID("sidnone")))
	none.mustSub(paho.SubscribeOptions{Topic: "sid/t", QoS: 1})

	// Raw subscriber with two overlapping subscriptions, ids 2 and 3.
	r := dialHandshake(t, addr, true, uniqueID("sidraw"))
	r.send(subscribePkt(true, 1, "sid/t", 1, props(pVBI(propSubscriptionID, 2))))
	r.expectType(0x90, "SUBACK")
	r.send(subscribePkt(true, 2, "sid/#", 0, props(pVBI(propSubscriptionID, 3))))
	r.expectType(0x90, "SUBACK")

	p := connect5(t, addr, cp5(uniqueID("pub")))
	p.publish(&paho.Publish{Topic: "sid/t", QoS: 1, Payload: []byte("tagged")})

	m := a.next("message on the subscription with id 456789")
	if m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 456789 {
		t.Errorf("got Subscription Identifier %v, want 456789", m.Properties.SubscriptionIdentifier)
	}
	if m := none.next("message on the subscription without id"); m.Properties != nil && m.Properties.SubscriptionIdentifier != nil {
		t.Errorf("subscription made without an identifier received identifier %d", *m.Properties.SubscriptionIdentifier)
	}
	rm := mustDecode(t, r.next("message on the overlapping subscriptions"), true)
	var ids []int
	for _, p := range propsWith(rm.Props, propSubscriptionID) {
		ids = append(ids, int(p.N))
	}
	sort.Ints(ids)
	if fmt.Sprint(ids) != "[2 3]" || rm.QoS != 1 || rm.Payload != "tagged" {
		t.Errorf("overlapping subscriptions: got ids %v QoS %d payload %q, want ids [2 3] QoS 1 'tagged'", ids, rm.QoS, rm.Payload)
	}
	if rm.QoS > 0 {
		r.send([]byte{0x40, 0x02, byte(rm.PID >> 8), byte(rm.PID)})
	}
	r.send(pingreq)
	if p := r.next("PINGRESP"); p.First != 0xD0 {
		t.Errorf("got %v, want PINGRESP (one copy only for overlapping subscriptions)", p)
	}

	// Retained messages sent on subscribe carry the identifier too.
	p.publish(&paho.Publish{Topic: "sid/r", QoS: 0, Retain: true, Payload: []byte("old")})
	late := connect5(t, addr, cp5(uniqueID("sidlate")))
	late.subscribe(&paho.Subscribe{
		Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: intp(77)},
		Subscriptions: []paho.SubscribeOptions{{Topic: "sid/r", QoS: 0}},
	})
	m = late.next("retained message")
	if m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 77 {
		t.Errorf("retained message: Subscription Identifier %v, want 77", m.Properties.SubscriptionIdentifier)
	}
}

func intp(v int) *int { return &v }

// Topic aliases from the client (3.3.2.3.4): a PUBLISH with topic and
// alias sets the mapping, one with an empty topic and the alias uses it, a
// later topic with the same alias replaces it. Subscribers that did not
// ask for aliases get the full topic and no alias [MQTT-3.3.2-8].
func TestV5TopicAliasFromClient(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.TopicAliasMaximum = 10 })
	sub := connect5(t, addr, cp5(uniqueID("sub")))
	sub.mustSub(paho.SubscribeOptions{Topic: "alias/#", QoS: 1})
	p := connect5(t, addr, cp5(uniqueID("aliaser")))
	if tam := p.connack.Properties.TopicAliasMaximum; tam == nil || *tam != 10 {
		t.Fatalf("CONNACK Topic Alias Maximum %v, want 10", tam)
	}
	steps := []struct {
		topic, want, payload string
		alias                uint16
	}{
		{"alias/t", "alias/t", "one", 1},
		{"", "alias/t", "two", 1},
		{"alias/u", "alias/u", "three", 1},
		{"", "alias/u", "four", 1},
		{"alias/v", "alias/v", "five", 10},
		{"", "alias/v", "six", 10},
		{"", "alias/u", "seven", 1},
	}
	for _, s := range steps {
		p.publish(&paho.Publish{Topic: s.topic, QoS: 1, Payload: []byte(s.payload), Properties: &paho.PublishProperties{TopicAlias: u16(s.alias)}})
	}
	for _, s := range steps {
		m := sub.next("aliased message " + s.payload)
		if m.Topic != s.want || string(m.Payload) != s.payload {
			t.Errorf("got %q on %q, want %q on %q", m.Payload, m.Topic, s.payload, s.want)
		}
		if m.Properties != nil && m.Properties.TopicAlias != nil {
			t.Errorf("subscriber without Topic Alias Maximum got Topic Alias %d", *m.Properties.TopicAlias)
		}
	}
}

// Topic aliases towards a client that allows them: never above its Topic
// Alias Maximum, and every PUBLISH resolves to the right topic
// [MQTT-3.3.2-10, 3.3.2-11, 3.3.2-12]. (Using aliases at all is the
// broker's choice.)
func TestV5TopicAliasToClient(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	r := dialRaw(t, addr)
	r.send(connectPkt(5, uniqueID("tam"), 30, true, nil, props(pU16(propTopicAliasMaximum, 2))))
	if _, rc, _ := r.connack5(); rc != 0 {
		t.Fatalf("CONNACK reason %#x", rc)
	}
	r.send(subscribePkt(true, 1, "ta/#", 0, nil))
	r.expectType(0x90, "SUBACK")
	p := connect5(t, addr, cp5(uniqueID("pub")))
	topics := []string{"ta/1", "ta/1", "ta/2", "ta/1", "ta/3", "ta/3", "ta/2", "ta/1"}
	for i, tp := range topics {
		p.publish(&paho.Publish{Topic: tp, QoS: 0, Payload: []byte(fmt.Sprint(i))})
	}
	aliases := map[uint32]string{}
	for i, want := range topics {
		m := mustDecode(t, r.next("aliased PUBLISH"), true)
		topic := m.Topic
		if a := propsWith(m.Props, propTopicAlias); len(a) > 0 {
			n := a[0].N
			if n < 1 || n > 2 {
				t.Fatalf("message %d: Topic Alias %d outside 1..2", i, n)
			}
			if topic != "" {
				aliases[n] = topic
			} else if topic = aliases[n]; topic == "" {
				t.Fatalf("message %d: empty topic with unknown alias %d", i, n)
			}
		} else if topic == "" {
			t.Fatalf("message %d: empty topic and no alias", i)
		}
		if topic != want || m.Payload != fmt.Sprint(i) {
			t.Fatalf("message %d: resolves to %q payload %q, want %q payload %q", i, topic, m.Payload, want, fmt.Sprint(i))
		}
	}
}

// Message Expiry Interval (3.3.2.3.3): a queued message whose interval
// passes is not delivered [MQTT-3.3.2-5]; a delivered one carries the
// interval minus the time it waited [MQTT-3.3.2-6]; retained messages
// expire too.
func TestV5MessageExpiry(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	id := uniqueID("exp")
	cp := cp5(id)
	cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32(60)}
	s := connect5(t, addr, cp)
	s.mustSub(paho.SubscribeOptions{Topic: "exp/t", QoS: 1})
	s.quit(nil)
	settle()

	p := connect5(t, addr, cp5(uniqueID("pub")))
	pp := func(exp *uint32) *paho.PublishProperties { return &paho.PublishProperties{MessageExpiry: exp} }
	p.publish(&paho.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("short"), Properties: pp(u32(1))})
	p.publish(&paho.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("long"), Properties: pp(u32(30))})
	p.publish(&paho.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("forever")})
	p.publish(&paho.Publish{Topic: "exp/r", QoS: 1, Retain: true, Payload: []byte("short retained"), Properties: pp(u32(1))})
	time.Sleep(2200 * time.Millisecond)

	cp.CleanStart = false
	s = connect5(t, addr, cp)
	if !s.connack.SessionPresent {
		t.Fatal("Session Present = 0, want 1")
	}
	m := s.next("the unexpired queued message")
	if string(m.Payload) != "long" {
		t.Fatalf("first delivered message %q, want 'long' ('short' expired)", m.Payload)
	}
	if m.Properties == nil || m.Properties.MessageExpiry == nil {
		t.Fatal("'long' arrived without Message Expiry Interval")
	}
	if e := *m.Properties.MessageExpiry; e < 1 || e > 28 {
		t.Errorf("'long' Message Expiry Interval %d after waiting >2 s, want 1..28 (30 minus the wait)", e)
	}
	m = s.next("the message without expiry")
	if string(m.Payload) != "forever" {
		t.Fatalf("second delivered message %q, want 'forever'", m.Payload)
	}
	if m.Properties != nil && m.Properties.MessageExpiry != nil {
		t.Errorf("'forever' gained Message Expiry Interval %d", *m.Properties.MessageExpiry)
	}
	s.none("the expired message")

	s.mustSub(paho.SubscribeOptions{Topic: "exp/r", QoS: 1})
	s.none("an expired retained message")

	// Live delivery: the interval is forwarded (less at most a second).
	p.publish(&paho.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("live"), Properties: pp(u32(100))})
	m = s.next("live message with expiry")
	if m.Properties == nil || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry < 98 || *m.Properties.MessageExpiry > 100 {
		t.Errorf("live message Message Expiry Interval %v, want 98..100", m.Properties.MessageExpiry)
	}
}

// The broker forwards Payload Format Indicator, Content Type, Response
// Topic, Correlation Data and User Properties unaltered, user properties
// in order [MQTT-3.3.2-4, 3.3.2-15, 3.3.2-16, 3.3.2-17, 3.3.2-18, 3.3.2-20],
// live and in retained messages.
func TestV5PropertiesPassThrough(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	sub := connect5(t, addr, cp5(uniqueID("sub")))
	sub.mustSub(paho.SubscribeOptions{Topic: "props/#", QoS: 2})
	p := connect5(t, addr, cp5(uniqueID("pub")))
	want := paho.PublishProperties{
		PayloadFormat:   u8(1),
		ContentType:     "application/json",
		ResponseTopic:   "props/reply/42",
		CorrelationData: []byte{0x00, 0x01, 0xFE, 0xFF},
		User: paho.UserProperties{
			{Key: "k", Value: "v1"},
			{Key: "a", Value: "b"},
			{Key: "k", Value: "v2"},
			{Key: "unicode", Value: "héllo ✓"},
		},
	}
	check := func(what string, m *paho.Publish) {
		t.Helper()
		g := m.Properties
		if g == nil {
			t.Fatalf("%s: no properties", what)
		}
		if g.PayloadFormat == nil || *g.PayloadFormat != 1 || g.ContentType != want.ContentType ||
			g.ResponseTopic != want.ResponseTopic || !bytes.Equal(g.CorrelationData, want.CorrelationData) ||
			fmt.Sprint(g.User) != fmt.Sprint(want.User) {
			t.Errorf("%s: got %s", what, m)
		}
	}
	for q := byte(0); q <= 2; q++ {
		pp := want
		p.publish(&paho.Publish{Topic: fmt.Sprintf("props/%d", q), QoS: q, Payload: []byte("{}"), Properties: &pp})
		m := sub.next(fmt.Sprintf("QoS %d message", q))
		if m.QoS != q || string(m.Payload) != "{}" {
			t.Errorf("QoS %d: got QoS %d payload %q", q, m.QoS, m.Payload)
		}
		check(fmt.Sprintf("QoS %d", q), m)
	}

	// Request/response: the responder answers on the Response Topic with
	// the Correlation Data and the requester receives it.
	pp := want
	p.publish(&paho.Publish{Topic: "props/r", QoS: 1, Retain: true, Payload: []byte("{}"), Properties: &pp})
	req := sub.next("request")
	check("request", req)
	p.mustSub(paho.SubscribeOptions{Topic: req.Properties.ResponseTopic, QoS: 1})
	sub.publish(&paho.Publish{Topic: req.Properties.ResponseTopic, QoS: 1, Payload: []byte("answer"),
		Properties: &paho.PublishProperties{CorrelationData: req.Properties.CorrelationData}})
	resp := p.next("response")
	if string(resp.Payload) != "answer" || !bytes.Equal(resp.Properties.CorrelationData, want.CorrelationData) {
		t.Errorf("response: got %s", resp)
	}
	sub.next("response echoed to props/# subscriber")

	late := connect5(t, addr, cp5(uniqueID("late")))
	late.mustSub(paho.SubscribeOptions{Topic: "props/r", QoS: 1})
	m := late.next("retained message with properties")
	if !m.Retain {
		t.Error("retained message sent on subscribe without RETAIN")
	}
	check("retained", m)
}

// CONNACK advertises the broker's limits (3.2.2.3): Receive Maximum,
// Maximum Packet Size, Topic Alias Maximum.
func TestV5ConnackProperties(t *testing.T) {
	t.Parallel()
	t.Run("configured", func(t *testing.T) {
		t.Parallel()
		addr := startBroker(t, func(c *config.Config) {
			c.ReceiveMaximum = 17
			c.MaxPacketSize = 4096
			c.TopicAliasMaximum = 9
		})
		c := connect5(t, addr, cp5(uniqueID("ca")))
		p := c.connack.Properties
		if c.connack.ReasonCode != 0 || c.connack.SessionPresent {
			t.Errorf("reason %#x session present %v, want 0 and false", c.connack.ReasonCode, c.connack.SessionPresent)
		}
		if p.ReceiveMaximum == nil || *p.ReceiveMaximum != 17 {
			t.Errorf("Receive Maximum %v, want 17", p.ReceiveMaximum)
		}
		if p.MaximumPacketSize == nil || *p.MaximumPacketSize != 4096 {
			t.Errorf("Maximum Packet Size %v, want 4096", p.MaximumPacketSize)
		}
		if p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 9 {
			t.Errorf("Topic Alias Maximum %v, want 9", p.TopicAliasMaximum)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		addr := startBroker(t, nil)
		c := connect5(t, addr, cp5(uniqueID("cd")))
		p := c.connack.Properties
		if p.ReceiveMaximum == nil || *p.ReceiveMaximum != uint16(config.Default().ReceiveMaximum) {
			t.Errorf("Receive Maximum %v, want %d", p.ReceiveMaximum, config.Default().ReceiveMaximum)
		}
		// Absent means no limit; a value, if sent, must allow any packet.
		if p.MaximumPacketSize != nil && *p.MaximumPacketSize < 268435455 {
			t.Errorf("Maximum Packet Size %d with no limit configured", *p.MaximumPacketSize)
		}
	})
}

// Server Keep Alive [MQTT-3.2.2-21, 3.1.2-21]: a client asking for more
// than cfg.MaxKeepAlive (or, per config.Config, for 0) is told the cap.
func TestV5ServerKeepAlive(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.MaxKeepAlive = 60 })
	cases := []struct {
		ask  uint16
		want *uint16 // nil: absent or equal to ask
	}{{120, u16(60)}, {65535, u16(60)}, {0, u16(60)}, {30, nil}, {60, nil}}
	for _, tc := range cases {
		cp := cp5(uniqueID("ka"))
		cp.KeepAlive = tc.ask
		c := connect5(t, addr, cp)
		got := c.connack.Properties.ServerKeepAlive
		switch {
		case tc.want != nil && (got == nil || *got != *tc.want):
			t.Errorf("keepalive %d: Server Keep Alive %v, want %d", tc.ask, got, *tc.want)
		case tc.want == nil && got != nil && *got != tc.ask:
			t.Errorf("keepalive %d: Server Keep Alive %d, want absent or %d", tc.ask, *got, tc.ask)
		}
		c.quit(nil)
	}
}

// Will Delay Interval (3.1.3.2.2): the will is published when the delay
// passes or the session ends, whichever is first, and not at all if the
// client reconnects to the session within the delay [MQTT-3.1.3-9].
func TestV5WillDelay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		delay, expiry  uint32
		reconnectAfter time.Duration // 0: no reconnect
		lo, hi         time.Duration // when the will must arrive; hi 0: never
	}{
		{name: "no delay", delay: 0, expiry: 10, lo: 0, hi: 1500 * time.Millisecond},
		{name: "delay 2", delay: 2, expiry: 10, lo: 1500 * time.Millisecond, hi: 4 * time.Second},
		{name: "session ends first", delay: 10, expiry: 1, lo: 500 * time.Millisecond, hi: 3 * time.Second},
		{name: "reconnect within delay", delay: 2, expiry: 10, reconnectAfter: 500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, nil)
			watch := connect5(t, addr, cp5(uniqueID("watch")))
			watch.mustSub(paho.SubscribeOptions{Topic: "will5/#", QoS: 1})

			id := uniqueID("willer")
			cp := cp5(id)
			cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32(tc.expiry)}
			cp.WillMessage = &paho.WillMessage{Topic: "will5/" + id, QoS: 1, Payload: []byte("delayed goodbye")}
			cp.WillProperties = &paho.WillProperties{WillDelayInterval: u32(tc.delay), User: paho.UserProperties{{Key: "why", Value: "test"}}}
			c := connect5(t, addr, cp)
			start := time.Now()
			c.kill()
			if tc.reconnectAfter > 0 {
				time.Sleep(tc.reconnectAfter)
				rc := cp5(id)
				rc.CleanStart = false
				rc.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32(tc.expiry)}
				connect5(t, addr, rc)
			}
			if tc.hi == 0 {
				expectNothing(t, watch.msgs, time.Duration(tc.delay)*time.Second+time.Second, "will after reconnecting within the delay")
				return
			}
			m := recv(t, watch.msgs, tc.hi+time.Second, "will message")
			el := time.Since(start)
			if el < tc.lo || el > tc.hi {
				t.Errorf("will arrived after %v, want between %v and %v", el.Round(time.Millisecond), tc.lo, tc.hi)
			}
			if m.Topic != cp.WillMessage.Topic || string(m.Payload) != "delayed goodbye" || m.QoS != 1 {
				t.Errorf("will: got %v", m)
			}
			if m.Properties == nil || fmt.Sprint(m.Properties.User) != fmt.Sprint(cp.WillProperties.User) {
				t.Errorf("will user properties not forwarded: %v", m.Properties)
			}
		})
	}
}

// Session takeover in v5: the old connection gets DISCONNECT 0x8E
// [MQTT-3.1.4-3] and its will (no delay) is published.
func TestV5SessionTakeover(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	watch := connect5(t, addr, cp5(uniqueID("watch")))
	watch.mustSub(paho.SubscribeOptions{Topic: "take5/#", QoS: 1})
	id := uniqueID("twin")
	cp := cp5(id)
	cp.WillMessage = &paho.WillMessage{Topic: "take5/will", QoS: 1, Payload: []byte("taken over")}
	old := connect5(t, addr, cp)
	connect5(t, addr, cp5(id))
	select {
	case d := <-old.disc:
		if d.ReasonCode != 0x8E {
			t.Errorf("DISCONNECT reason %#x, want 0x8E (Session taken over)", d.ReasonCode)
		}
	case err := <-old.lost:
		t.Errorf("old connection closed without DISCONNECT 0x8E: %v", err)
	case <-time.After(waitTimeout):
		t.Errorf("old connection neither got DISCONNECT nor was closed within %v", waitTimeout)
	}
	if m := watch.next("the old connection's will"); string(m.Payload) != "taken over" {
		t.Errorf("got %v, want the will", m)
	}
}

// A refused filter gets reason code 0x87 (Not authorized) in its position
// of the SUBACK; the others are granted.
func TestV5DeniedSubscribe(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	c := connect5(t, addr, cp5(uniqueID("denied")))
	sa := c.subscribe(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "test/ok", QoS: 2},
		{Topic: "test/nosubscribe", QoS: 1},
	}})
	if !bytes.Equal(sa.Reasons, []byte{0x02, 0x87}) {
		t.Fatalf("SUBACK reason codes % x, want 02 87", sa.Reasons)
	}
	c.publish(&paho.Publish{Topic: "test/nosubscribe", QoS: 1, Payload: []byte("no")})
	c.publish(&paho.Publish{Topic: "test/ok", QoS: 1, Payload: []byte("yes")})
	if m := c.next("message on the granted filter"); m.Topic != "test/ok" {
		t.Fatalf("got %v", m)
	}
	c.none("message on the denied filter")
}

// The broker respects the client's Receive Maximum: no more than that many
// unacknowledged QoS 1/2 PUBLISHes in flight to it [MQTT-3.3.4-9].
func TestV5ClientReceiveMaximum(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	r := dialRaw(t, addr)
	r.send(connectPkt(5, uniqueID("slow"), 30, true, nil, props(pU16(propReceiveMaximum, 1))))
	if _, rc, _ := r.connack5(); rc != 0 {
		t.Fatalf("CONNACK reason %#x", rc)
	}
	r.send(subscribePkt(true, 1, "rm/t", 1, nil))
	r.expectType(0x90, "SUBACK")
	p := connect5(t, addr, cp5(uniqueID("pub")))
	for i := 1; i <= 3; i++ {
		p.publish(&paho.Publish{Topic: "rm/t", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	for i := 1; i <= 3; i++ {
		m := mustDecode(t, r.next(fmt.Sprintf("message %d", i)), true)
		if m.Payload != fmt.Sprint(i) || m.QoS != 1 {
			t.Fatalf("got %+v, want payload %d at QoS 1", m, i)
		}
		if p, err := r.read(quietPeriod); err == nil {
			t.Fatalf("with Receive Maximum 1 and one PUBLISH unacknowledged the broker sent %v", p)
		} else if isClosed(err) {
			t.Fatalf("connection closed: %v", err)
		}
		r.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})
	}
}

// A v5 subscriber gets v3 publications and the other way round.
func TestMixedVersions(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	v3, _ := connect3(t, addr, uniqueID("v3"), true)
	v5 := connect5(t, addr, cp5(uniqueID("v5")))
	v3.mustSub("mix/from5", 2)
	v5.mustSub(paho.SubscribeOptions{Topic: "mix/from3", QoS: 2})
	v5.publish(&paho.Publish{Topic: "mix/from5", QoS: 2, Payload: []byte("hello v3"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "x", Value: "y"}}, MessageExpiry: u32(60)}})
	if m, want := v3.next("v5 message at v3"), (msg3{Topic: "mix/from5", Payload: "hello v3", QoS: 2}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	v3.pub("mix/from3", 1, false, "hello v5")
	m := v5.next("v3 message at v5")
	if m.Topic != "mix/from3" || string(m.Payload) != "hello v5" || m.QoS != 1 {
		t.Errorf("got %v", m)
	}
	if m.Properties != nil && (len(m.Properties.User) > 0 || m.Properties.MessageExpiry != nil) {
		t.Errorf("v3 message gained properties: %v", m)
	}
}
