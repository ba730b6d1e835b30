package e2e

// MQTT 3.1.1 behaviour, mostly through github.com/eclipse/paho.mqtt.golang;
// the raw client is used where paho hides the wire (will on a dropped
// connection, redelivery, exact ack bytes).

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Publishing at QoS p to a subscription of QoS s delivers at min(p, s)
// [MQTT-3.8.4-6 / 4.3]; every QoS flow completes in both directions.
func TestV3PubSubQoS(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	sub, _ := connect3(t, addr, uniqueID("sub"), true)
	pub, _ := connect3(t, addr, uniqueID("pub"), true)
	for s := byte(0); s <= 2; s++ {
		sub.mustSub(fmt.Sprintf("qos/sub%d", s), s)
	}
	want := map[string]msg3{}
	for p := byte(0); p <= 2; p++ {
		for s := byte(0); s <= 2; s++ {
			m := msg3{Topic: fmt.Sprintf("qos/sub%d", s), Payload: fmt.Sprintf("pub%d->sub%d", p, s), QoS: min(p, s)}
			want[m.Payload] = m
			pub.pub(m.Topic, p, false, m.Payload)
		}
	}
	for _, got := range recvN(t, sub.msgs, len(want), waitTimeout, "the 9 QoS combinations") {
		w, ok := want[got.Payload]
		if !ok {
			t.Errorf("unexpected or duplicate message %+v", got)
			continue
		}
		delete(want, got.Payload)
		if got != w {
			t.Errorf("got %+v, want %+v", got, w)
		}
	}
	sub.none("message after the 9 expected ones")

	// The other direction: the former subscriber publishes, the former
	// publisher receives, at every QoS.
	pub.mustSub("back/#", 2)
	for q := byte(0); q <= 2; q++ {
		sub.pub(fmt.Sprintf("back/%d", q), q, false, fmt.Sprintf("back at %d", q))
	}
	got := recvN(t, pub.msgs, 3, waitTimeout, "messages published back")
	sort.Slice(got, func(i, j int) bool { return got[i].Topic < got[j].Topic })
	for q := byte(0); q <= 2; q++ {
		want := msg3{Topic: fmt.Sprintf("back/%d", q), Payload: fmt.Sprintf("back at %d", q), QoS: q}
		if got[q] != want {
			t.Errorf("got %+v, want %+v", got[q], want)
		}
	}
	pub.none("a duplicate of a message published back")
}

// The exact acknowledgement packets of each QoS flow, both directions
// (sections 4.3.2 and 4.3.3): PUBACK 40 02 id, PUBREC 50 02 id, PUBREL
// 62 02 id, PUBCOMP 70 02 id, with the packet identifier of the PUBLISH
// they answer [MQTT-2.3.1-6].
func TestV3QoSFlowBytes(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	sub := dialHandshake(t, addr, false, uniqueID("flowsub"))
	sub.send(subscribePkt(false, 7, "flow/#", 2, nil))
	sub.expect([]byte{0x90, 0x03, 0x00, 0x07, 0x02}, "SUBACK granting QoS 2")

	pub := dialHandshake(t, addr, false, uniqueID("flowpub"))

	// QoS 1 in.
	pub.send(publishPkt(false, "flow/1", 1, false, 0x0101, nil, "q1"))
	pub.expect([]byte{0x40, 0x02, 0x01, 0x01}, "PUBACK")
	// QoS 1 out.
	m := mustDecode(t, sub.next("QoS 1 PUBLISH"), false)
	if m.Topic != "flow/1" || m.Payload != "q1" || m.QoS != 1 || m.Dup || m.Retain || m.PID == 0 {
		t.Fatalf("got %+v, want flow/1 q1 at QoS 1, non-zero packet id", m)
	}
	sub.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})

	// QoS 2 in.
	pub.send(publishPkt(false, "flow/2", 2, false, 0x0202, nil, "q2"))
	pub.expect([]byte{0x50, 0x02, 0x02, 0x02}, "PUBREC")
	pub.send([]byte{0x62, 0x02, 0x02, 0x02})
	pub.expect([]byte{0x70, 0x02, 0x02, 0x02}, "PUBCOMP")
	// QoS 2 out.
	m = mustDecode(t, sub.next("QoS 2 PUBLISH"), false)
	if m.Topic != "flow/2" || m.Payload != "q2" || m.QoS != 2 || m.Dup || m.PID == 0 {
		t.Fatalf("got %+v, want flow/2 q2 at QoS 2", m)
	}
	id := []byte{byte(m.PID >> 8), byte(m.PID)}
	sub.send(cat([]byte{0x50, 0x02}, id))
	sub.expect(cat([]byte{0x62, 0x02}, id), "PUBREL")
	sub.send(cat([]byte{0x70, 0x02}, id))

	// A QoS 2 message is delivered once even if the publisher resends the
	// PUBLISH (DUP) before PUBREL [MQTT-4.3.3-2, method B of 4.3.3].
	pub.send(publishPkt(false, "flow/2", 2, false, 0x0303, nil, "once"))
	pub.expect([]byte{0x50, 0x02, 0x03, 0x03}, "PUBREC")
	dup := publishPkt(false, "flow/2", 2, false, 0x0303, nil, "once")
	dup[0] |= 0x08
	pub.send(dup)
	pub.expect([]byte{0x50, 0x02, 0x03, 0x03}, "PUBREC for the duplicate")
	pub.send([]byte{0x62, 0x02, 0x03, 0x03})
	pub.expect([]byte{0x70, 0x02, 0x03, 0x03}, "PUBCOMP")
	m = mustDecode(t, sub.next("the QoS 2 message"), false)
	if m.Payload != "once" {
		t.Fatalf("got %+v, want payload once", m)
	}
	id = []byte{byte(m.PID >> 8), byte(m.PID)}
	sub.send(cat([]byte{0x50, 0x02}, id))
	sub.expect(cat([]byte{0x62, 0x02}, id), "PUBREL")
	sub.send(cat([]byte{0x70, 0x02}, id))
	sub.send(pingreq)
	sub.expect(pingresp, "PINGRESP (and not a second copy of the QoS 2 message)")
}

func mustDecode(t *testing.T, p packet, v5 bool) rawPublish {
	t.Helper()
	m, err := decodePublish(p, v5)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Retained messages: stored per topic, replaced, sent to new matching
// subscriptions with RETAIN=1 [MQTT-3.3.1-6], forwarded to existing
// subscriptions with RETAIN=0 [MQTT-3.3.1-9], deleted by an empty
// retained payload which is still forwarded [MQTT-3.3.1-10, 3.3.1-11].
func TestV3Retained(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	pub, _ := connect3(t, addr, uniqueID("pub"), true)
	pub.pub("ret/a", 1, true, "first")
	pub.pub("ret/a", 1, true, "second")
	pub.pub("ret/b", 0, true, "b0")
	pub.pub("ret/c", 2, false, "not retained")

	s1, _ := connect3(t, addr, uniqueID("s1"), true)
	s1.mustSub("ret/#", 2)
	got := recvN(t, s1.msgs, 2, waitTimeout, "two retained messages")
	sort.Slice(got, func(i, j int) bool { return got[i].Topic < got[j].Topic })
	want := []msg3{
		{Topic: "ret/a", Payload: "second", QoS: 1, Retain: true},
		{Topic: "ret/b", Payload: "b0", QoS: 0, Retain: true},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("retained message %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	s1.none("a third retained message")

	// Live delivery of a retained publish: RETAIN=0 for an established
	// subscription.
	pub.pub("ret/a", 2, true, "third")
	if m, w := s1.next("live retained publish"), (msg3{Topic: "ret/a", Payload: "third", QoS: 2}); m != w {
		t.Errorf("live retained publish: got %+v, want %+v", m, w)
	}
	// Delete it: the empty message is forwarded as normal...
	pub.pub("ret/a", 1, true, "")
	if m, w := s1.next("empty retained publish"), (msg3{Topic: "ret/a", Payload: "", QoS: 1}); m != w {
		t.Errorf("empty retained publish: got %+v, want %+v", m, w)
	}
	// ...and a new subscriber gets only ret/b, at the lower of the two QoS.
	s2, _ := connect3(t, addr, uniqueID("s2"), true)
	s2.mustSub("ret/+", 0)
	if m, w := s2.next("retained ret/b"), (msg3{Topic: "ret/b", Payload: "b0", QoS: 0, Retain: true}); m != w {
		t.Errorf("after delete: got %+v, want %+v", m, w)
	}
	s2.none("the deleted retained message")
	// An exact-topic subscription to the deleted topic gets nothing.
	s3, _ := connect3(t, addr, uniqueID("s3"), true)
	s3.mustSub("ret/a", 2)
	s3.none("deleted retained message on exact subscribe")
}

// Will messages (3.1.2.5): published when the network connection closes
// without DISCONNECT or on a protocol error, never after DISCONNECT
// [MQTT-3.1.2-8, 3.1.2-10, 3.14.4-3]; Will Retain makes it retained
// [MQTT-3.1.2-17].
func TestV3Will(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		retain bool
		end    func(r *rawConn)
		want   bool
	}{
		{"close without DISCONNECT", false, func(r *rawConn) { _ = r.c.Close() }, true},
		{"half-close without DISCONNECT", false, func(r *rawConn) { r.closeWrite() }, true},
		{"protocol error", false, func(r *rawConn) { r.send([]byte{0x36, 0x03, 0x00, 0x01, 'x'}) }, true},
		{"retained will", true, func(r *rawConn) { _ = r.c.Close() }, true},
		{"DISCONNECT discards the will", false, func(r *rawConn) { r.send(disconnect0); _ = r.c.Close() }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, nil)
			sub, _ := connect3(t, addr, uniqueID("watch"), true)
			sub.mustSub("will/#", 2)

			r := dialRaw(t, addr)
			w := &will{Topic: "will/" + strings.ReplaceAll(tc.name, " ", "_"), Payload: "client gone", QoS: 1, Retain: tc.retain}
			r.send(connectPkt(4, uniqueID("dying"), 30, true, w, nil))
			r.expect(connackOK3, "CONNACK")
			tc.end(r)

			if !tc.want {
				sub.none("will message after DISCONNECT")
				return
			}
			// A subscription that exists when the will is published
			// receives it with RETAIN=0 [MQTT-3.3.1-9].
			if m, want := sub.next("will message"), (msg3{Topic: w.Topic, Payload: w.Payload, QoS: 1}); m != want {
				t.Fatalf("will: got %+v, want %+v", m, want)
			}
			sub.none("a second will message")
			if tc.retain {
				late, _ := connect3(t, addr, uniqueID("late"), true)
				late.mustSub(w.Topic, 1)
				if m, want := late.next("retained will"), (msg3{Topic: w.Topic, Payload: w.Payload, QoS: 1, Retain: true}); m != want {
					t.Fatalf("retained will: got %+v, want %+v", m, want)
				}
			}
		})
	}
}

// A paho client that disconnects normally leaves no will either.
func TestV3WillNotSentAfterDisconnect(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	sub, _ := connect3(t, addr, uniqueID("watch"), true)
	sub.mustSub("will/paho", 1)
	c, _ := connect3(t, addr, uniqueID("polite"), true, func(o *mqtt.ClientOptions) {
		o.SetWill("will/paho", "should not be sent", 1, false)
	})
	c.Disconnect(100)
	sub.none("will after a normal DISCONNECT")
}

// Persistent sessions (clean session 0): subscriptions and QoS 1/2
// messages published while the client was away survive the disconnect and
// are delivered in order on reconnect, with Session Present set
// [MQTT-3.1.2-4, 3.1.2-5, 3.2.2-2]; clean session 1 discards it
// [MQTT-3.1.2-6, 3.2.2-1].
func TestV3PersistentSession(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	id := uniqueID("persist")
	s, present := connect3(t, addr, id, false)
	if present {
		t.Fatal("first connect of a new client ID: Session Present = 1, want 0")
	}
	s.mustSub("persist/t", 1)
	s.Disconnect(100)

	pub, _ := connect3(t, addr, uniqueID("pub"), true)
	for i := 1; i <= 3; i++ {
		pub.pub("persist/t", 1, false, fmt.Sprintf("offline %d", i))
	}
	pub.pub("persist/t", 2, false, "offline 4 at QoS 2")

	s, present = connect3(t, addr, id, false)
	if !present {
		t.Fatal("reconnect with clean session 0: Session Present = 0, want 1")
	}
	got := recvN(t, s.msgs, 4, waitTimeout, "messages queued while offline")
	for i, m := range got {
		want := msg3{Topic: "persist/t", Payload: fmt.Sprintf("offline %d", i+1), QoS: 1}
		if i == 3 {
			want.Payload = "offline 4 at QoS 2"
		}
		if m != want {
			t.Errorf("queued message %d: got %+v, want %+v", i, m, want)
		}
	}
	s.none("more queued messages")
	s.Disconnect(100)
	settle()

	s, present = connect3(t, addr, id, true)
	if present {
		t.Fatal("connect with clean session 1: Session Present = 1, want 0")
	}
	s.Disconnect(100)
	settle()
	s, present = connect3(t, addr, id, false)
	if present {
		t.Fatal("clean session 0 after a clean session 1 connection: Session Present = 1, want 0 (the session was discarded)")
	}
	pub.pub("persist/t", 1, false, "to a discarded subscription")
	s.none("message for a subscription of a discarded session")
}

// Unacknowledged QoS 1 PUBLISH and QoS 2 PUBREL are resent, with their
// original packet identifiers and DUP=1 on the PUBLISH, when the client
// reconnects with clean session 0 [MQTT-4.4.0-1, 3.3.1-1].
func TestV3RedeliveryOnReconnect(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	id := uniqueID("redeliver")
	r := dialRaw(t, addr)
	r.send(connectPkt(4, id, 30, false, nil, nil))
	r.expect(connackOK3, "CONNACK")
	r.send(subscribePkt(false, 1, "redo/#", 2, nil))
	r.expect([]byte{0x90, 0x03, 0x00, 0x01, 0x02}, "SUBACK")

	pub, _ := connect3(t, addr, uniqueID("pub"), true)
	pub.pub("redo/1", 1, false, "unacked qos1")
	first := mustDecode(t, r.next("QoS 1 PUBLISH"), false)
	if first.QoS != 1 || first.Dup || first.Payload != "unacked qos1" {
		t.Fatalf("got %+v, want the QoS 1 message without DUP", first)
	}
	pub.pub("redo/2", 2, false, "unreleased qos2")
	second := mustDecode(t, r.next("QoS 2 PUBLISH"), false)
	if second.QoS != 2 || second.Payload != "unreleased qos2" {
		t.Fatalf("got %+v, want the QoS 2 message", second)
	}
	id2 := []byte{byte(second.PID >> 8), byte(second.PID)}
	r.send(cat([]byte{0x50, 0x02}, id2)) // PUBREC
	r.expect(cat([]byte{0x62, 0x02}, id2), "PUBREL")
	_ = r.c.Close() // no PUBACK, no PUBCOMP

	r = dialRaw(t, addr)
	r.send(connectPkt(4, id, 30, false, nil, nil))
	r.expect([]byte{0x20, 0x02, 0x01, 0x00}, "CONNACK with Session Present")
	// The resent PUBLISH and PUBREL may come in either order relative to
	// each other, but both must come.
	var gotPub, gotRel bool
	for !(gotPub && gotRel) {
		p := r.next("resent PUBLISH and PUBREL")
		switch p.Type() {
		case tPUBLISH:
			m := mustDecode(t, p, false)
			if !m.Dup || m.PID != first.PID || m.QoS != 1 || m.Topic != "redo/1" || m.Payload != "unacked qos1" {
				t.Fatalf("resent PUBLISH %+v, want DUP=1, packet id %d, QoS 1, same topic and payload", m, first.PID)
			}
			r.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})
			gotPub = true
		case tPUBREL:
			if want := cat([]byte{0x62, 0x02}, id2); string(p.Bytes()) != string(want) {
				t.Fatalf("resent PUBREL % x, want % x", p.Bytes(), want)
			}
			r.send(cat([]byte{0x70, 0x02}, id2))
			gotRel = true
		default:
			t.Fatalf("unexpected %v", p)
		}
	}
	r.send(pingreq)
	r.expect(pingresp, "PINGRESP and no further redelivery")
}

// A second connection with a client ID in use disconnects the first
// [MQTT-3.1.4-2]; with clean session 0 the new connection resumes its
// session.
func TestV3SessionTakeover(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	id := uniqueID("twin")
	a, _ := connect3(t, addr, id, false)
	a.mustSub("take/t", 1)
	b, present := connect3(t, addr, id, false)
	if !present {
		t.Error("takeover with clean session 0: Session Present = 0, want 1")
	}
	recv(t, a.lost, waitTimeout, "the first connection to be closed")

	pub, _ := connect3(t, addr, uniqueID("pub"), true)
	pub.pub("take/t", 1, false, "after takeover")
	if m, want := b.next("message on the resumed subscription"), (msg3{Topic: "take/t", Payload: "after takeover", QoS: 1}); m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	a.none("message on the kicked connection")
	b.mustSub("take/u", 0)
	b.pub("take/u", 0, false, "b works")
	if m := b.next("own message"); m.Payload != "b works" {
		t.Fatalf("got %+v", m)
	}
}

// Taking over a clean session 1 connection with clean session 0 does not
// resume anything: that session lasted only as long as its connection
// [MQTT-3.1.2-6].
func TestV3TakeoverOfCleanSession(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	id := uniqueID("twin")
	a, _ := connect3(t, addr, id, true)
	a.mustSub("takec/t", 1)
	b, present := connect3(t, addr, id, false)
	if present {
		t.Fatal("clean session 0 taking over a clean session 1 connection: Session Present = 1, want 0")
	}
	recv(t, a.lost, waitTimeout, "the first connection to be closed")
	pub, _ := connect3(t, addr, uniqueID("pub"), true)
	pub.pub("takec/t", 1, false, "to the old clean session")
	b.none("message on a subscription of the discarded clean session")
}

// Overlapping subscriptions deliver one copy at the highest granted QoS of
// the matching subscriptions [MQTT-3.3.5-1].
func TestV3OverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		subs    []map[string]byte // one SUBSCRIBE per map
		topic   string
		pubQoS  byte
		wantQoS byte
	}{
		{"one SUBSCRIBE, # higher", []map[string]byte{{"ov/#": 2, "ov/+": 1}}, "ov/x", 2, 2},
		{"one SUBSCRIBE, publish QoS 1", []map[string]byte{{"ov/#": 2, "ov/+": 1}}, "ov/x", 1, 1},
		{"two SUBSCRIBEs, + higher", []map[string]byte{{"ov/+": 2}, {"ov/#": 0}}, "ov/x", 2, 2},
		{"exact and wildcard", []map[string]byte{{"ov/x": 0}, {"#": 1}, {"+/x": 0}}, "ov/x", 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, nil)
			c, _ := connect3(t, addr, uniqueID("ov"), true)
			for _, s := range tc.subs {
				got := c.sub(s)
				for f, q := range s {
					if got[f] != q {
						t.Fatalf("SUBACK for %q: %#x, want %d", f, got[f], q)
					}
				}
			}
			c.pub(tc.topic, tc.pubQoS, false, "overlap")
			if m, want := c.next("the message"), (msg3{Topic: tc.topic, Payload: "overlap", QoS: tc.wantQoS}); m != want {
				t.Fatalf("got %+v, want %+v", m, want)
			}
			c.none("a second copy")
		})
	}
}

// Wildcards at the first level do not match topics starting with $
// [MQTT-4.7.2-1]; $SYS/# does, and the broker publishes its statistics
// under $SYS/broker/ every SysInterval.
func TestV3SysTopics(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil) // SysInterval = 1
	all, _ := connect3(t, addr, uniqueID("all"), true)
	all.sub(map[string]byte{"#": 0, "+/broker/#": 0, "+/broker/uptime": 0})
	sys, _ := connect3(t, addr, uniqueID("sys"), true)
	sys.mustSub("$SYS/#", 0)

	need := map[string]bool{"$SYS/broker/clients/": false, "$SYS/broker/messages/": false, "$SYS/broker/bytes/": false}
	var uptimes []int
	digits := regexp.MustCompile(`^\d+`)
	deadline := time.After(4500 * time.Millisecond)
	for len(uptimes) < 2 || !need["$SYS/broker/clients/"] || !need["$SYS/broker/messages/"] || !need["$SYS/broker/bytes/"] {
		select {
		case m := <-sys.msgs:
			if !strings.HasPrefix(m.Topic, "$SYS/") {
				t.Fatalf("$SYS/# delivered %q", m.Topic)
			}
			if m.Topic == "$SYS/broker/uptime" {
				s := digits.FindString(m.Payload)
				n, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("$SYS/broker/uptime payload %q does not start with a number of seconds", m.Payload)
				}
				uptimes = append(uptimes, n)
			}
			for p := range need {
				if strings.HasPrefix(m.Topic, p) {
					need[p] = true
				}
			}
		case <-deadline:
			t.Fatalf("after 4.5 s with SysInterval=1: %d uptime messages (want 2), counters seen %v", len(uptimes), need)
		}
	}
	if uptimes[1] < uptimes[0] {
		t.Errorf("uptime went backwards: %v", uptimes)
	}

	// Nothing under $ reached the wildcard subscriber; ordinary topics do.
	sys.pub("normal/topic", 0, false, "hello")
	for {
		m := all.next("the ordinary message on #")
		if strings.HasPrefix(m.Topic, "$") {
			t.Fatalf("wildcard subscription received %q", m.Topic)
		}
		if m.Topic == "normal/topic" {
			break
		}
	}
	select {
	case m := <-all.msgs:
		t.Fatalf("wildcard subscription received %+v", m)
	default:
	}
}

// A filter the server refuses gets SUBACK return code 0x80 in its
// position; the others in the same SUBSCRIBE are granted [MQTT-3.9.3-1].
func TestV3DeniedSubscribe(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil) // DenySubscribe = test/nosubscribe
	c, _ := connect3(t, addr, uniqueID("denied"), true)
	got := c.sub(map[string]byte{"test/nosubscribe": 1, "test/ok": 1})
	if got["test/nosubscribe"] != 0x80 || got["test/ok"] != 1 {
		t.Fatalf("SUBACK %v, want test/nosubscribe: 0x80, test/ok: 1", got)
	}
	c.pub("test/nosubscribe", 1, false, "must not arrive")
	c.pub("test/ok", 1, false, "arrives")
	if m := c.next("message on the granted filter"); m.Topic != "test/ok" || m.Payload != "arrives" {
		t.Fatalf("got %+v, want test/ok", m)
	}
	c.none("message on the denied filter")
}

// UNSUBSCRIBE stops delivery for that filter only [MQTT-3.10.4-2].
func TestV3Unsubscribe(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	c, _ := connect3(t, addr, uniqueID("unsub"), true)
	c.mustSub("un/a", 1)
	c.mustSub("un/b", 1)
	c.unsub("un/a")
	c.pub("un/a", 1, false, "a")
	c.pub("un/b", 1, false, "b")
	if m := c.next("message on the remaining subscription"); m.Topic != "un/b" {
		t.Fatalf("got %+v, want un/b", m)
	}
	c.none("message on the removed subscription")
}

// A zero-length client ID with clean session 1 is accepted and gets a
// unique identity [MQTT-3.1.3-6]: two such clients do not take each other
// over. (With clean session 0 it is rejected: see the raw table.)
func TestV3EmptyClientID(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	a, _ := connect3(t, addr, "", true)
	b, _ := connect3(t, addr, "", true)
	a.mustSub("anon/t", 0)
	b.mustSub("anon/t", 0)
	a.pub("anon/t", 0, false, "to both")
	for _, c := range []*client3{a, b} {
		if m := c.next("message to both anonymous clients"); m.Payload != "to both" {
			t.Fatalf("got %+v", m)
		}
	}
	select {
	case err := <-a.lost:
		t.Fatalf("first anonymous client lost its connection: %v", err)
	case err := <-b.lost:
		t.Fatalf("second anonymous client lost its connection: %v", err)
	default:
	}
}

// MQTT 3.1 (protocol name MQIsdp, level 3) clients are served too.
func TestV31Client(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	r := dialRaw(t, addr)
	r.send(connectPkt(3, uniqueID("mqisdp"), 30, true, nil, nil))
	r.expect(connackOK3, "CONNACK to an MQTT 3.1 CONNECT")
	r.send(subscribePkt(false, 1, "v31/t", 1, nil))
	r.expect([]byte{0x90, 0x03, 0x00, 0x01, 0x01}, "SUBACK")
	p := publishPkt(false, "v31/t", 0, false, 0, nil, "3.1 works")
	r.send(p)
	r.expect(p, "own message")
}
