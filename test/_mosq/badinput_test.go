package e2e

// Bad input over a raw socket: each case sends hand-written bytes, checks
// the broker's exact answer (CONNACK or DISCONNECT where the spec calls for
// one, otherwise a plain close), then checks the broker still serves a new
// client.
//
// MQTT 3.1.1 [MQTT-4.8.0-1]: on a protocol violation the server closes the
// connection; it has no DISCONNECT to send. MQTT 5.0 section 4.13: on a
// Malformed Packet or Protocol Error after CONNECT the server SHOULD send
// DISCONNECT with the reason code (0x81 malformed, 0x82 protocol error, or
// a more specific one) and MUST close; for an error in CONNECT it MAY send
// CONNACK with a reason code >= 0x80 and MUST close.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coolpy7/coolpy7/config"
)

// expectation checks what the broker does after a case's input.
type expectation func(t *testing.T, r *rawConn)

// closed: nothing more is sent and the connection is closed.
func closed() expectation {
	return func(t *testing.T, r *rawConn) {
		t.Helper()
		r.expectClosed(closeWithin)
	}
}

// exactThenClosed: exactly want, then the close.
func exactThenClosed(want []byte) expectation {
	return func(t *testing.T, r *rawConn) {
		t.Helper()
		r.expect(want, "response before close")
		r.expectClosed(closeWithin)
	}
}

// checkDisconnect requires p to be a v5 DISCONNECT whose reason code is one
// of codes (its properties, if any, must be well formed).
func checkDisconnect(t *testing.T, p packet, codes []byte) {
	t.Helper()
	if p.First != 0xE0 || len(p.Body) < 1 || bytes.IndexByte(codes, p.Body[0]) < 0 {
		t.Fatalf("got %v, want DISCONNECT (e0) with reason code in % x", p, codes)
	}
	if len(p.Body) > 1 {
		if _, rest, err := parseProps(p.Body[1:]); err != nil || len(rest) > 0 {
			t.Fatalf("DISCONNECT properties malformed: %v (% x)", err, p.Body)
		}
	}
}

// disconnectThenClosed: a v5 DISCONNECT with one of codes, then the close.
func disconnectThenClosed(codes ...byte) expectation {
	return func(t *testing.T, r *rawConn) {
		t.Helper()
		p, err := r.read(closeWithin)
		if err != nil {
			t.Fatalf("want DISCONNECT with reason code in % x before the close, got %v", codes, err)
		}
		checkDisconnect(t, p, codes)
		r.expectClosed(closeWithin)
	}
}

// maybeDisconnectThenClosed: optionally a v5 DISCONNECT with one of codes,
// then the close (for input after which the broker cannot be expected to
// write, like EOF in the middle of a packet).
func maybeDisconnectThenClosed(codes ...byte) expectation {
	return func(t *testing.T, r *rawConn) {
		t.Helper()
		p, err := r.read(closeWithin)
		if err != nil {
			if !isClosed(err) {
				t.Fatalf("connection not closed within %v", closeWithin)
			}
			return
		}
		checkDisconnect(t, p, codes)
		r.expectClosed(closeWithin)
	}
}

// connackThenClosed: a CONNACK refusing the connection, then the close. A
// 3.1.1-format CONNACK (20 02 00 rc) must have rc in v3codes, a 5.0-format
// one (20 len 00 rc properties) rc in v5codes. With required false the
// broker may also just close.
func connackThenClosed(required bool, v3codes, v5codes []byte) expectation {
	return func(t *testing.T, r *rawConn) {
		t.Helper()
		p, err := r.read(closeWithin)
		if err != nil {
			if !isClosed(err) {
				t.Fatalf("connection not closed within %v", closeWithin)
			}
			if required {
				t.Fatalf("connection closed without CONNACK: %v", err)
			}
			return
		}
		switch {
		case p.First != 0x20 || len(p.Body) < 2 || p.Body[0] != 0:
			t.Fatalf("got %v, want a CONNACK refusing the connection", p)
		case len(p.Body) == 2:
			if bytes.IndexByte(v3codes, p.Body[1]) < 0 {
				t.Fatalf("3.1.1-format CONNACK % x, want return code in % x", p.Bytes(), v3codes)
			}
		default:
			if bytes.IndexByte(v5codes, p.Body[1]) < 0 {
				t.Fatalf("5.0-format CONNACK % x, want reason code in % x", p.Bytes(), v5codes)
			}
			if _, rest, err := parseProps(p.Body[2:]); err != nil || len(rest) > 0 {
				t.Fatalf("CONNACK properties malformed: %v", err)
			}
		}
		r.expectClosed(closeWithin)
	}
}

type badCase struct {
	name string
	// handshake: 0 sends the input as the first bytes on the connection;
	// 4 or 5 first connects as a 3.1.1 or 5.0 client.
	handshake byte
	mod       func(*config.Config)
	send      []byte
	halfClose bool // CloseWrite after sending: the broker reads EOF
	expect    expectation
}

// pair makes the 3.1.1 and 5.0 variants of a post-CONNECT case; v5send nil
// means the same bytes.
func pair(name string, v3send, v5send []byte, v3, v5 expectation) []badCase {
	if v5send == nil {
		v5send = v3send
	}
	return []badCase{
		{name: "v3/" + name, handshake: 4, send: v3send, expect: v3},
		{name: "v5/" + name, handshake: 5, send: v5send, expect: v5},
	}
}

func badCases() []badCase {
	max1024 := func(c *config.Config) { c.MaxPacketSize = 1024 }
	// bigPublish declares a remaining length of 2000 but sends only the
	// start of the body: the header alone shows the packet is too large.
	bigPublish := func(v5 bool) []byte {
		b := cat([]byte{0x30}, vbi(2000), str("big/t"))
		if v5 {
			b = append(b, 0)
		}
		return append(b, bytes.Repeat([]byte("x"), 50)...)
	}
	v3pub := func(topic string) []byte { return publishPkt(false, topic, 0, false, 0, nil, "p") }
	v5pub := func(topic string) []byte { return publishPkt(true, topic, 0, false, 0, nil, "p") }
	v5pubProps := func(topic string, p []byte) []byte { return publishPkt(true, topic, 0, false, 0, p, "p") }
	noProps := []byte{0}

	cases := []badCase{
		// Before or in CONNECT.
		{name: "truncated CONNECT then EOF", send: connect311("trunc", 30)[:8], halfClose: true, expect: closed()},
		{name: "first packet PINGREQ", send: pingreq, expect: closed()},
		{name: "first packet SUBSCRIBE", send: subscribePkt(false, 1, "a/b", 0, nil), expect: closed()},
		{name: "first packet PUBLISH", send: v3pub("a/b"), expect: closed()},
		{name: "first packet CONNACK", send: connackOK3, expect: closed()},
		{name: "CONNECT remaining length of 5 bytes", send: []byte{0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, expect: closed()},
		// [MQTT-3.1.2-2]: unsupported level gets return code 0x01.
		{name: "v3/protocol level 2", send: pkt(0x10, str("MQTT"), []byte{2, 0x02}, be16(30), str("lvl2")),
			expect: exactThenClosed([]byte{0x20, 0x02, 0x00, 0x01})},
		// A 5.0-style CONNECT with a level the server does not know: the
		// server cannot know which CONNACK format the client reads, so
		// either 3.1.1's 0x01 or 5.0's 0x84 (Unsupported Protocol Version).
		{name: "protocol level 6", send: pkt(0x10, str("MQTT"), []byte{6, 0x02}, be16(30), noProps, str("lvl6")),
			expect: connackThenClosed(true, []byte{0x01}, []byte{0x84})},
		// [MQTT-3.1.2-1]: wrong protocol name; the server MAY answer.
		{name: "protocol name MQTX", send: pkt(0x10, str("MQTX"), []byte{4, 0x02}, be16(30), str("name")),
			expect: connackThenClosed(false, []byte{0x01}, []byte{0x84})},
		// [MQTT-3.1.2-3]: reserved connect flag.
		{name: "v3/CONNECT reserved flag", send: pkt(0x10, str("MQTT"), []byte{4, 0x03}, be16(30), str("rsv")), expect: closed()},
		{name: "v5/CONNECT reserved flag", send: pkt(0x10, str("MQTT"), []byte{5, 0x03}, be16(30), noProps, str("rsv")),
			expect: connackThenClosed(false, nil, []byte{0x81})},
		// [MQTT-3.1.3-8]: empty client ID with clean session 0.
		{name: "v3/empty client ID without clean session", send: connectPkt(4, "", 30, false, nil, nil),
			expect: exactThenClosed([]byte{0x20, 0x02, 0x00, 0x02})},
		// [MQTT-3.1.2-13], [MQTT-3.1.2-14], [MQTT-3.1.2-22].
		{name: "v3/will QoS without will flag", send: pkt(0x10, str("MQTT"), []byte{4, 0x0A}, be16(30), str("wq")), expect: closed()},
		{name: "v3/will QoS 3", send: pkt(0x10, str("MQTT"), []byte{4, 0x1E}, be16(30), str("wq3"), str("w/t"), str("w")), expect: closed()},
		{name: "v5/will QoS 3", send: pkt(0x10, str("MQTT"), []byte{5, 0x1E}, be16(30), noProps, str("wq3"), noProps, str("w/t"), str("w")),
			expect: connackThenClosed(false, nil, []byte{0x81, 0x82, 0x9B})},
		{name: "v3/password without user name", send: pkt(0x10, str("MQTT"), []byte{4, 0x42}, be16(30), str("pw"), str("secret")), expect: closed()},
		// [MQTT-1.5.3-1]: ill-formed UTF-8 in the client ID.
		{name: "v3/client ID invalid UTF-8", send: connectPkt(4, "bad\xff\xfeid", 30, true, nil, nil),
			expect: connackThenClosed(false, []byte{0x02}, nil)},
		// 5.0 CONNECT properties: Receive Maximum 0 and Maximum Packet Size
		// 0 are Protocol Errors (3.1.2.11.3, 3.1.2.11.4); a property
		// length past the end is malformed.
		{name: "v5/CONNECT Receive Maximum 0", send: connectPkt(5, "rm0", 30, true, nil, props(pU16(propReceiveMaximum, 0))),
			expect: connackThenClosed(false, nil, []byte{0x81, 0x82})},
		{name: "v5/CONNECT Maximum Packet Size 0", send: connectPkt(5, "mps0", 30, true, nil, props(pU32(propMaximumPacketSize, 0))),
			expect: connackThenClosed(false, nil, []byte{0x81, 0x82})},
		{name: "v5/CONNECT property length past end", send: pkt(0x10, str("MQTT"), []byte{5, 0x02}, be16(30), []byte{0x20, 0x11}, be32(5)),
			expect: connackThenClosed(false, nil, []byte{0x81})},
	}

	// After a successful CONNECT, 3.1.1 and 5.0 variants.
	disc := disconnectThenClosed
	cases = append(cases, pair("remaining length of 5 bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, nil, closed(), disc(0x81))...)
	for _, c := range pair("truncated PUBLISH then EOF", v3pub("some/topic")[:6], v5pub("some/topic")[:6], closed(), maybeDisconnectThenClosed(0x81)) {
		c.halfClose = true
		cases = append(cases, c)
	}
	for _, c := range pair("packet over Maximum Packet Size", bigPublish(false), bigPublish(true), closed(), disc(0x95)) {
		c.mod = max1024
		cases = append(cases, c)
	}
	cases = append(cases, pair("second CONNECT", connect311("again", 30), connect50("again", 30), closed(), disc(0x82))...)
	cases = append(cases, pair("invalid UTF-8 in topic", v3pub("a/\xff\xfe"), v5pub("a/\xff\xfe"), closed(), disc(0x81))...)
	cases = append(cases, pair("U+0000 in topic", v3pub("a\x00b"), v5pub("a\x00b"), closed(), disc(0x81))...)
	cases = append(cases, pair("UTF-16 surrogate in topic", v3pub("a/\xed\xa0\x80"), v5pub("a/\xed\xa0\x80"), closed(), disc(0x81))...)
	cases = append(cases, pair("# in PUBLISH topic", v3pub("a/#"), v5pub("a/#"), closed(), disc(0x90, 0x82))...)
	cases = append(cases, pair("+ in PUBLISH topic", v3pub("a/+/b"), v5pub("a/+/b"), closed(), disc(0x90, 0x82))...)
	cases = append(cases, pair("empty PUBLISH topic", v3pub(""), v5pub(""), closed(), disc(0x82, 0x90))...)
	cases = append(cases, pair("PUBLISH QoS 3",
		[]byte{0x36, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 'p'},
		[]byte{0x36, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 0x00, 'p'}, closed(), disc(0x81))...)
	cases = append(cases, pair("QoS 1 PUBLISH with packet ID 0",
		publishPkt(false, "a/b", 1, false, 0, nil, "p"),
		publishPkt(true, "a/b", 1, false, 0, nil, "p"), closed(), disc(0x81, 0x82))...)
	cases = append(cases, pair("SUBSCRIBE with packet ID 0",
		subscribePkt(false, 0, "a/b", 0, nil), subscribePkt(true, 0, "a/b", 0, nil), closed(), disc(0x81, 0x82))...)
	cases = append(cases, pair("UNSUBSCRIBE with packet ID 0",
		pkt(0xA2, be16(0), str("a/b")), pkt(0xA2, be16(0), noProps, str("a/b")), closed(), disc(0x81, 0x82))...)
	// [MQTT-2.2.2-2]: reserved fixed-header flags.
	cases = append(cases, pair("SUBSCRIBE with flags 0",
		pkt(0x80, be16(1), str("a/b"), []byte{0}), pkt(0x80, be16(1), noProps, str("a/b"), []byte{0}), closed(), disc(0x81))...)
	cases = append(cases, pair("UNSUBSCRIBE with flags 0",
		pkt(0xA0, be16(1), str("a/b")), pkt(0xA0, be16(1), noProps, str("a/b")), closed(), disc(0x81))...)
	cases = append(cases, pair("PUBREL with flags 0", []byte{0x60, 0x02, 0x00, 0x01}, nil, closed(), disc(0x81))...)
	cases = append(cases, pair("PINGREQ with flags", []byte{0xC1, 0x00}, nil, closed(), disc(0x81))...)
	cases = append(cases, pair("PINGREQ with a body", []byte{0xC0, 0x01, 0x00}, nil, closed(), disc(0x81))...)
	// [MQTT-3.8.3-3]: SUBSCRIBE needs at least one filter.
	cases = append(cases, pair("SUBSCRIBE without filters",
		pkt(0x82, be16(1)), pkt(0x82, be16(1), noProps), closed(), disc(0x81, 0x82))...)
	// [MQTT-3.8.3-4] (3.1.1) / 3.8.3.1 (5.0): requested QoS 3.
	cases = append(cases, pair("SUBSCRIBE requested QoS 3",
		subscribePkt(false, 1, "a/b", 3, nil), subscribePkt(true, 1, "a/b", 3, nil), closed(), disc(0x81))...)
	cases = append(cases, pair("reserved packet type 0", []byte{0x00, 0x00}, nil, closed(), disc(0x81, 0x82))...)
	cases = append(cases, pair("CONNACK from the client", connackOK3, []byte{0x20, 0x03, 0x00, 0x00, 0x00}, closed(), disc(0x81, 0x82))...)
	cases = append(cases, pair("SUBSCRIBE with invalid filter a/#/b",
		subscribePkt(false, 1, "a/#/b", 0, nil), subscribePkt(true, 1, "a/#/b", 0, nil),
		subackOrClosed(false), subackOrClosed(true))...)

	cases = append(cases,
		badCase{name: "v3/SUBSCRIBE option bits reserved in 3.1.1", handshake: 4, send: subscribePkt(false, 1, "a/b", 0x04, nil), expect: closed()},
		badCase{name: "v3/AUTH packet", handshake: 4, send: []byte{0xF0, 0x00}, expect: closed()},
		// 5.0 only.
		badCase{name: "v5/SUBSCRIBE reserved option bits", handshake: 5, send: subscribePkt(true, 1, "a/b", 0xC1, nil), expect: disc(0x81)},
		badCase{name: "v5/SUBSCRIBE retain handling 3", handshake: 5, send: subscribePkt(true, 1, "a/b", 0x31, nil), expect: disc(0x81, 0x82)},
		// 3.3.2.3.4: alias 0 [MQTT-3.3.2-8] and aliases above the Topic
		// Alias Maximum [MQTT-3.2.2-17] are refused with 0x94 (Topic Alias
		// invalid); 0x82 is accepted for alias 0.
		badCase{name: "v5/topic alias 0", handshake: 5, send: v5pubProps("a/b", props(pU16(propTopicAlias, 0))), expect: disc(0x94, 0x82)},
		badCase{name: "v5/topic alias above maximum", handshake: 5, mod: func(c *config.Config) { c.TopicAliasMaximum = 5 },
			send: v5pubProps("a/b", props(pU16(propTopicAlias, 6))), expect: disc(0x94)},
		badCase{name: "v5/topic alias when maximum is 0", handshake: 5, mod: func(c *config.Config) { c.TopicAliasMaximum = 0 },
			send: v5pubProps("a/b", props(pU16(propTopicAlias, 1))), expect: disc(0x94)},
		badCase{name: "v5/unknown topic alias with empty topic", handshake: 5, send: v5pubProps("", props(pU16(propTopicAlias, 3))), expect: disc(0x82, 0x94)},
		// [MQTT-3.3.4-6]: a client must not send a Subscription Identifier.
		badCase{name: "v5/PUBLISH with Subscription Identifier", handshake: 5, send: v5pubProps("a/b", props(pVBI(propSubscriptionID, 1))), expect: disc(0x82)},
		badCase{name: "v5/PUBLISH with duplicate Message Expiry", handshake: 5,
			send: v5pubProps("a/b", props(pU32(propMessageExpiry, 10), pU32(propMessageExpiry, 20))), expect: disc(0x81, 0x82)},
		badCase{name: "v5/PUBLISH property length past end", handshake: 5, send: pkt(0x30, str("a/b"), []byte{0x0A, propPayloadFormat, 1}), expect: disc(0x81)},
		badCase{name: "v5/PUBLISH with unknown property", handshake: 5, send: pkt(0x30, str("a/b"), []byte{0x02, 0x7F, 0x00}, []byte("p")), expect: disc(0x81, 0x82)},
		badCase{name: "v5/PUBLISH with a CONNECT-only property", handshake: 5, send: v5pubProps("a/b", props(pU16(propReceiveMaximum, 5))), expect: disc(0x81, 0x82)},
		// 4.12: AUTH without an Authentication Method in CONNECT.
		badCase{name: "v5/AUTH without authentication method", handshake: 5, send: []byte{0xF0, 0x00}, expect: disc(0x82, 0x81)},
		// [MQTT-3.14.2-2]: session expiry 0 in CONNECT, non-zero in DISCONNECT.
		badCase{name: "v5/DISCONNECT raising a zero session expiry", handshake: 5,
			send: pkt(0xE0, []byte{0x00}, props(pU32(propSessionExpiry, 30))), expect: maybeDisconnectThenClosed(0x82)},
		// 3.3.4: more unacknowledged QoS 2 PUBLISHes than Receive Maximum.
		badCase{name: "v5/Receive Maximum exceeded", handshake: 5, mod: func(c *config.Config) { c.ReceiveMaximum = 2 },
			send: cat(
				publishPkt(true, "rm/x", 2, false, 1, nil, "1"),
				publishPkt(true, "rm/x", 2, false, 2, nil, "2"),
				publishPkt(true, "rm/x", 2, false, 3, nil, "3")),
			expect: receiveMaximumExceeded},
	)
	return cases
}

// subackOrClosed: an invalid topic filter may be refused in the SUBACK
// (0x80 in 3.1.1, 0x8F Topic Filter invalid in 5.0) or treated as a
// malformed packet (close, 5.0 with DISCONNECT 0x8F/0x81/0x82).
func subackOrClosed(v5 bool) expectation {
	return func(t *testing.T, r *rawConn) {
		t.Helper()
		p, err := r.read(closeWithin)
		if err != nil {
			if !isClosed(err) {
				t.Fatalf("neither SUBACK nor close within %v", closeWithin)
			}
			return
		}
		switch {
		case p.First == 0x90 && !v5:
			if !bytes.Equal(p.Bytes(), []byte{0x90, 0x03, 0x00, 0x01, 0x80}) {
				t.Fatalf("SUBACK % x, want 90 03 00 01 80", p.Bytes())
			}
		case p.First == 0x90 && v5:
			if len(p.Body) < 4 || p.Body[len(p.Body)-1] != 0x8F && p.Body[len(p.Body)-1] != 0x80 {
				t.Fatalf("SUBACK %v, want reason code 0x8F (or 0x80)", p)
			}
		case v5:
			checkDisconnect(t, p, []byte{0x8F, 0x81, 0x82})
			r.expectClosed(closeWithin)
		default:
			t.Fatalf("got %v, want SUBACK 0x80 or close", p)
		}
	}
}

// receiveMaximumExceeded: PUBRECs for what fits, then DISCONNECT 0x93.
func receiveMaximumExceeded(t *testing.T, r *rawConn) {
	t.Helper()
	for {
		p, err := r.read(closeWithin)
		if err != nil {
			t.Fatalf("want DISCONNECT 0x93 (Receive Maximum exceeded), got %v", err)
		}
		if p.First == 0x50 {
			continue
		}
		checkDisconnect(t, p, []byte{0x93})
		r.expectClosed(closeWithin)
		return
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range badCases() {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, tc.mod)
			r := dialRaw(t, addr)
			switch tc.handshake {
			case 4:
				r.handshake(false, uniqueID("bad"))
			case 5:
				r.handshake(true, uniqueID("bad"))
			}
			r.send(tc.send)
			if tc.halfClose {
				r.closeWrite()
			}
			tc.expect(t, r)
			assertServes(t, addr)
		})
	}
}
