package e2e

// Timeouts and the byte stream: connect timeout, keepalive enforcement,
// several packets in one write, one packet over many writes, the Maximum
// Packet Size boundary.

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/config"
	"github.com/eclipse/paho.golang/paho"
)

// A connection that does not complete CONNECT within cfg.ConnectTimeout is
// closed (3.1.1 section 3.1: the server SHOULD close a connection that
// sends no CONNECT within a reasonable time).
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"partial CONNECT", connect311("slow", 30)[:5]},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, func(c *config.Config) { c.ConnectTimeout = 1 })
			r := dialRaw(t, addr)
			start := time.Now()
			if tc.send != nil {
				r.send(tc.send)
			}
			p, err := r.read(3 * time.Second)
			el := time.Since(start)
			switch {
			case err == nil:
				t.Fatalf("got %v, want the connection closed", p)
			case !isClosed(err):
				t.Fatalf("connection still open after %v with ConnectTimeout 1 s", el.Round(time.Millisecond))
			case el < 500*time.Millisecond:
				t.Fatalf("connection closed after %v, before ConnectTimeout (1 s)", el.Round(time.Millisecond))
			}
			assertServes(t, addr)
		})
	}
}

// Keepalive: with Keep Alive 1 s and no packets, the server closes the
// connection after one and a half times the keepalive [MQTT-3.1.2-24
// (3.1.1), MQTT-3.1.2-22 (5.0)] and publishes the will; a client that
// pings stays connected.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	for _, level := range []byte{4, 5} {
		t.Run(fmt.Sprintf("timeout_level_%d", level), func(t *testing.T) {
			t.Parallel()
			addr := startBroker(t, nil)
			watch, _ := connect3(t, addr, uniqueID("watch"), true)
			watch.mustSub("ka/#", 1)

			r := dialRaw(t, addr)
			w := &will{Topic: fmt.Sprintf("ka/will%d", level), Payload: "keepalive expired", QoS: 1}
			r.send(connectPkt(level, uniqueID("idle"), 1, true, w, nil))
			if level == 5 {
				if _, rc, ps := r.connack5(); rc != 0 {
					t.Fatalf("CONNACK reason %#x", rc)
				} else if ska := propsWith(ps, propServerKeepAlive); len(ska) > 0 && ska[0].N != 1 {
					t.Fatalf("Server Keep Alive %d, the test needs 1", ska[0].N)
				}
			} else {
				r.expect(connackOK3, "CONNACK")
			}
			start := time.Now()
			p, err := r.read(4 * time.Second)
			if err == nil {
				// 5.0 lets the server say why (4.13, 0x8D Keep Alive timeout).
				if level != 5 {
					t.Fatalf("got %v, want the connection closed", p)
				}
				checkDisconnect(t, p, []byte{0x8D})
				_, err = r.read(closeWithin)
			}
			el := time.Since(start)
			switch {
			case !isClosed(err):
				t.Fatalf("connection still open after %v with Keep Alive 1 s", el.Round(time.Millisecond))
			case el < time.Second:
				t.Fatalf("closed after %v, before the keepalive (1 s) even passed", el.Round(time.Millisecond))
			case el > 3*time.Second:
				t.Fatalf("closed after %v, want about 1.5 s", el.Round(time.Millisecond))
			}
			if m, want := watch.next("will after keepalive timeout"), (msg3{Topic: w.Topic, Payload: w.Payload, QoS: 1}); m != want {
				t.Fatalf("will: got %+v, want %+v", m, want)
			}
		})
	}
	t.Run("pinging_client_stays", func(t *testing.T) {
		t.Parallel()
		addr := startBroker(t, nil)
		r := dialRaw(t, addr)
		r.send(connectPkt(4, uniqueID("pinger"), 1, true, nil, nil))
		r.expect(connackOK3, "CONNACK")
		for i := 0; i < 10; i++ { // 3 s, twice the 1.5 s limit
			time.Sleep(300 * time.Millisecond)
			r.send(pingreq)
			r.expect(pingresp, fmt.Sprintf("PINGRESP %d", i+1))
		}
	})
}

// Several packets in one TCP write are all processed, in order.
func TestCoalescedPackets(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	t.Run("v3", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send(connect311(uniqueID("co"), 30), subscribePkt(false, 1, "co3/t", 1, nil), pingreq)
		r.expect(connackOK3, "CONNACK")
		r.expect([]byte{0x90, 0x03, 0x00, 0x01, 0x01}, "SUBACK")
		r.expect(pingresp, "PINGRESP")
		// Two QoS 1 PUBLISHes and a PINGREQ in one write: PUBACKs in order
		// [MQTT-4.6.0-2], the forwarded messages in order [MQTT-4.6.0-6].
		r.send(publishPkt(false, "co3/t", 1, false, 5, nil, "x"), publishPkt(false, "co3/t", 1, false, 6, nil, "y"), pingreq)
		checkCoalesced(t, r, false)
	})
	t.Run("v5", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send(connect50(uniqueID("co"), 30), subscribePkt(true, 1, "co5/t", 1, nil), pingreq)
		if _, rc, _ := r.connack5(); rc != 0 {
			t.Fatalf("CONNACK reason %#x", rc)
		}
		if rcs := suback5(t, r, 1); !bytes.Equal(rcs, []byte{1}) {
			t.Fatalf("SUBACK reason codes % x", rcs)
		}
		r.expect(pingresp, "PINGRESP")
		r.send(publishPkt(true, "co5/t", 1, false, 5, nil, "x"), publishPkt(true, "co5/t", 1, false, 6, nil, "y"), pingreq)
		checkCoalesced(t, r, true)
	})
}

func checkCoalesced(t *testing.T, r *rawConn, v5 bool) {
	t.Helper()
	var acks, msgs []string
	gotPing := false
	for len(acks) < 2 || len(msgs) < 2 || !gotPing {
		p := r.next("PUBACKs, PUBLISHes and PINGRESP")
		switch p.Type() {
		case tPUBACK:
			if len(p.Body) < 2 || (len(p.Body) > 2 && p.Body[2] != 0) {
				t.Fatalf("PUBACK %v", p)
			}
			acks = append(acks, fmt.Sprint(p.Body[1]))
		case tPUBLISH:
			m := mustDecode(t, p, v5)
			msgs = append(msgs, m.Payload)
			r.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})
		case tPINGRESP:
			gotPing = true
		default:
			t.Fatalf("unexpected %v", p)
		}
	}
	if strings.Join(acks, ",") != "5,6" || strings.Join(msgs, ",") != "x,y" {
		t.Fatalf("PUBACKs for %v and messages %v, want 5,6 and x,y", acks, msgs)
	}
}

// suback5 reads a 5.0 SUBACK for pid and returns its reason codes.
func suback5(t *testing.T, r *rawConn, pid uint16) []byte {
	t.Helper()
	p := r.expectType(0x90, "SUBACK")
	if len(p.Body) < 3 || p.Body[0] != byte(pid>>8) || p.Body[1] != byte(pid) {
		t.Fatalf("SUBACK %v for packet id %d", p, pid)
	}
	_, rest, err := parseProps(p.Body[2:])
	if err != nil {
		t.Fatalf("SUBACK properties: %v", err)
	}
	return rest
}

// A packet split over many one-byte writes is reassembled; that includes
// a two-byte remaining length split between writes.
func TestSplitPackets(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	payload := strings.Repeat("s", 200)
	t.Run("v3", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, addr)
		r.sendBytewise(connect311(uniqueID("split"), 30))
		r.expect(connackOK3, "CONNACK")
		r.sendBytewise(subscribePkt(false, 9, "split3/t", 0, nil))
		r.expect([]byte{0x90, 0x03, 0x00, 0x09, 0x00}, "SUBACK")
		pub := publishPkt(false, "split3/t", 0, false, 0, nil, payload)
		r.sendBytewise(pub)
		r.expect(pub, "own message")
		r.sendBytewise(pingreq)
		r.expect(pingresp, "PINGRESP")
	})
	t.Run("v5", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, addr)
		r.sendBytewise(connectPkt(5, uniqueID("split"), 30, true, nil, props(pPair(propUserProperty, "k", "v"))))
		if _, rc, _ := r.connack5(); rc != 0 {
			t.Fatalf("CONNACK reason %#x", rc)
		}
		r.sendBytewise(subscribePkt(true, 9, "split5/t", 0, nil))
		if rcs := suback5(t, r, 9); !bytes.Equal(rcs, []byte{0}) {
			t.Fatalf("SUBACK reason codes % x", rcs)
		}
		r.sendBytewise(publishPkt(true, "split5/t", 0, false, 0, props(pStr(propContentType, "text/plain")), payload))
		m := mustDecode(t, r.next("own message"), true)
		if m.Topic != "split5/t" || m.Payload != payload {
			t.Fatalf("got %q %d bytes", m.Topic, len(m.Payload))
		}
		if ct := propsWith(m.Props, propContentType); len(ct) != 1 || ct[0].S != "text/plain" {
			t.Fatalf("Content Type %v", ct)
		}
	})
}

// Maximum Packet Size counts the whole packet: one of exactly the limit is
// accepted, one byte more is not (3.1.2.11.4 / 3.2.2.3.6).
func TestMaxPacketSizeBoundary(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) { c.MaxPacketSize = 1024 })
	for _, v5 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v5=%v", v5), func(t *testing.T) {
			t.Parallel()
			// Each subtest has its own topic of the same length: they run
			// in parallel on one broker and must not see each other's
			// messages.
			topic := "mps/3"
			if v5 {
				topic = "mps/5"
			}
			r := dialHandshake(t, addr, v5, uniqueID("mps"))
			r.send(subscribePkt(v5, 1, topic, 0, nil))
			r.expectType(0x90, "SUBACK")
			// 1 byte header + 2 bytes remaining length + topic (2+5)
			// [+ 1 property length] + payload = 1024.
			n := 1024 - 3 - 7
			if v5 {
				n--
			}
			exact := publishPkt(v5, topic, 0, false, 0, nil, strings.Repeat("m", n))
			if len(exact) != 1024 {
				t.Fatalf("test bug: packet is %d bytes", len(exact))
			}
			r.send(exact)
			r.expect(exact, "own 1024-byte message")
			r.send(publishPkt(v5, topic, 0, false, 0, nil, strings.Repeat("m", n+1)))
			if v5 {
				disconnectThenClosed(0x95)(t, r)
			} else {
				r.expectClosed(closeWithin)
			}
		})
	}
}

// The broker never sends a client a packet larger than the Maximum Packet
// Size the client set; it drops that message for that client and carries
// on [MQTT-3.1.2-24, 3.1.2-25].
func TestV5ClientMaximumPacketSize(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	r := dialRaw(t, addr)
	r.send(connectPkt(5, uniqueID("small"), 30, true, nil, props(pU32(propMaximumPacketSize, 64))))
	if _, rc, _ := r.connack5(); rc != 0 {
		t.Fatalf("CONNACK reason %#x", rc)
	}
	r.send(subscribePkt(true, 1, "cmps/t", 1, nil))
	r.expectType(0x90, "SUBACK")
	p := connect5(t, addr, cp5(uniqueID("pub")))
	for _, s := range []string{"small 1", strings.Repeat("L", 100), "small 2"} {
		p.publish(&paho.Publish{Topic: "cmps/t", QoS: 1, Payload: []byte(s)})
	}
	for _, want := range []string{"small 1", "small 2"} {
		pk := r.next(want)
		if len(pk.Bytes()) > 64 {
			t.Fatalf("broker sent a %d-byte packet to a client with Maximum Packet Size 64", len(pk.Bytes()))
		}
		m := mustDecode(t, pk, true)
		if m.Payload != want {
			t.Fatalf("got %q, want %q", m.Payload, want)
		}
		r.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})
	}
	r.send(pingreq)
	r.expect(pingresp, "PINGRESP (connection still up)")
}
