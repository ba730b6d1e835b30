package e2e

// A deliberately tiny MQTT client: packets are hand-built byte slices and
// whatever the broker sends back is split into packets by the fixed header
// only, so the suite can send bytes no real client would and check the
// exact bytes that come back. It does not use the project's packets
// package on purpose.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// Control packet types (the high nibble of the first byte).
const (
	tCONNECT     = 1
	tCONNACK     = 2
	tPUBLISH     = 3
	tPUBACK      = 4
	tPUBREC      = 5
	tPUBREL      = 6
	tPUBCOMP     = 7
	tSUBSCRIBE   = 8
	tSUBACK      = 9
	tUNSUBSCRIBE = 10
	tUNSUBACK    = 11
	tPINGREQ     = 12
	tPINGRESP    = 13
	tDISCONNECT  = 14
	tAUTH        = 15
)

var typeNames = [...]string{"reserved(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

// ---------------------------------------------------------------------------
// Encoding

// vbi is the Variable Byte Integer encoding (remaining length, property
// lengths, subscription identifiers).
func vbi(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// str is a length-prefixed string (or binary data).
func str(s string) []byte {
	b := make([]byte, 2, 2+len(s))
	binary.BigEndian.PutUint16(b, uint16(len(s)))
	return append(b, s...)
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// pkt builds a packet from its first byte and its body, computing the
// remaining length.
func pkt(first byte, body ...[]byte) []byte {
	b := cat(body...)
	return cat([]byte{first}, vbi(len(b)), b)
}

// Property encoders (MQTT 5.0 section 2.2.2.2).
func pByte(id, v byte) []byte       { return []byte{id, v} }
func pU16(id byte, v uint16) []byte { return cat([]byte{id}, be16(v)) }
func pU32(id byte, v uint32) []byte { return cat([]byte{id}, be32(v)) }
func pVBI(id byte, v int) []byte    { return cat([]byte{id}, vbi(v)) }
func pStr(id byte, v string) []byte { return cat([]byte{id}, str(v)) }
func pPair(id byte, k, v string) []byte {
	return cat([]byte{id}, str(k), str(v))
}

// props prefixes encoded properties with their length.
func props(p ...[]byte) []byte {
	b := cat(p...)
	return cat(vbi(len(b)), b)
}

// Property identifiers.
const (
	propPayloadFormat     = 0x01
	propMessageExpiry     = 0x02
	propContentType       = 0x03
	propResponseTopic     = 0x08
	propCorrelationData   = 0x09
	propSubscriptionID    = 0x0B
	propSessionExpiry     = 0x11
	propAssignedClientID  = 0x12
	propServerKeepAlive   = 0x13
	propReasonString      = 0x1F
	propReceiveMaximum    = 0x21
	propTopicAliasMaximum = 0x22
	propTopicAlias        = 0x23
	propMaximumQoS        = 0x24
	propUserProperty      = 0x26
	propMaximumPacketSize = 0x27
	propWillDelay         = 0x18
)

// will describes a Will Message for the CONNECT encoders.
type will struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Props   []byte // v5 only: the will properties, already wrapped by props()
}

// connectPkt builds a CONNECT. level is 3 (MQIsdp), 4 (3.1.1) or 5;
// v5props is used only for level 5 and must be wrapped by props().
func connectPkt(level byte, id string, keepalive uint16, clean bool, w *will, v5props []byte) []byte {
	name := "MQTT"
	if level == 3 {
		name = "MQIsdp"
	}
	var flags byte
	if clean {
		flags |= 0x02
	}
	var payload []byte
	if level == 5 && v5props == nil {
		v5props = props()
	}
	payload = append(payload, str(id)...)
	if w != nil {
		flags |= 0x04 | w.QoS<<3
		if w.Retain {
			flags |= 0x20
		}
		if level == 5 {
			wp := w.Props
			if wp == nil {
				wp = props()
			}
			payload = append(payload, wp...)
		}
		payload = append(payload, str(w.Topic)...)
		payload = append(payload, str(w.Payload)...)
	}
	vh := cat(str(name), []byte{level, flags}, be16(keepalive))
	if level == 5 {
		vh = append(vh, v5props...)
	}
	return pkt(0x10, vh, payload)
}

func connect311(id string, keepalive uint16) []byte {
	return connectPkt(4, id, keepalive, true, nil, nil)
}

func connect50(id string, keepalive uint16) []byte {
	return connectPkt(5, id, keepalive, true, nil, nil)
}

// publishPkt builds a PUBLISH; pid is written only for QoS > 0 and
// v5props (wrapped by props()) only when v5 is set.
func publishPkt(v5 bool, topic string, qos byte, retain bool, pid uint16, v5props []byte, payload string) []byte {
	first := byte(0x30) | qos<<1
	if retain {
		first |= 0x01
	}
	vh := str(topic)
	if qos > 0 {
		vh = append(vh, be16(pid)...)
	}
	if v5 {
		if v5props == nil {
			v5props = props()
		}
		vh = append(vh, v5props...)
	}
	return pkt(first, vh, []byte(payload))
}

// subscribePkt builds a SUBSCRIBE for one filter; opts is the options byte
// (QoS plus, for v5, NL/RAP/RH bits).
func subscribePkt(v5 bool, pid uint16, filter string, opts byte, v5props []byte) []byte {
	vh := be16(pid)
	if v5 {
		if v5props == nil {
			v5props = props()
		}
		vh = append(vh, v5props...)
	}
	return pkt(0x82, vh, str(filter), []byte{opts})
}

var (
	pingreq     = []byte{0xC0, 0x00}
	pingresp    = []byte{0xD0, 0x00}
	disconnect0 = []byte{0xE0, 0x00}
	connackOK3  = []byte{0x20, 0x02, 0x00, 0x00}
)

// ---------------------------------------------------------------------------
// Decoding

// packet is one control packet as received: its first byte and its body.
type packet struct {
	First byte
	Body  []byte
}

func (p packet) Type() byte  { return p.First >> 4 }
func (p packet) Flags() byte { return p.First & 0x0F }

// Bytes is the packet as it was on the wire.
func (p packet) Bytes() []byte { return cat([]byte{p.First}, vbi(len(p.Body)), p.Body) }

func (p packet) String() string {
	if len(p.Body) > 48 {
		return fmt.Sprintf("%s(flags %#x) % x ... (%d bytes)", typeNames[p.Type()], p.Flags(), p.Body[:48], len(p.Body))
	}
	return fmt.Sprintf("%s(flags %#x) % x", typeNames[p.Type()], p.Flags(), p.Body)
}

// prop is one decoded v5 property. Numeric values are in N, strings and
// binary data in S, the value of a user property pair in V.
type prop struct {
	ID   byte
	N    uint32
	S, V string
}

// parseProps decodes a property block (length included) from b and returns
// the properties and what follows them.
func parseProps(b []byte) ([]prop, []byte, error) {
	n, l, err := readVBI(b)
	if err != nil {
		return nil, nil, err
	}
	b = b[l:]
	if n > len(b) {
		return nil, nil, fmt.Errorf("property length %d past end of packet (%d left)", n, len(b))
	}
	pb, rest := b[:n], b[n:]
	var out []prop
	for len(pb) > 0 {
		p := prop{ID: pb[0]}
		pb = pb[1:]
		need := func(k int) error {
			if len(pb) < k {
				return fmt.Errorf("property %#x truncated", p.ID)
			}
			return nil
		}
		readStr := func() (string, error) {
			if err := need(2); err != nil {
				return "", err
			}
			k := int(binary.BigEndian.Uint16(pb))
			if err := need(2 + k); err != nil {
				return "", err
			}
			s := string(pb[2 : 2+k])
			pb = pb[2+k:]
			return s, nil
		}
		switch p.ID {
		case 0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A:
			if err := need(1); err != nil {
				return nil, nil, err
			}
			p.N, pb = uint32(pb[0]), pb[1:]
		case 0x13, 0x21, 0x22, 0x23:
			if err := need(2); err != nil {
				return nil, nil, err
			}
			p.N, pb = uint32(binary.BigEndian.Uint16(pb)), pb[2:]
		case 0x02, 0x11, 0x18, 0x27:
			if err := need(4); err != nil {
				return nil, nil, err
			}
			p.N, pb = binary.BigEndian.Uint32(pb), pb[4:]
		case 0x0B:
			v, l, err := readVBI(pb)
			if err != nil {
				return nil, nil, err
			}
			p.N, pb = uint32(v), pb[l:]
		case 0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F:
			if p.S, err = readStr(); err != nil {
				return nil, nil, err
			}
		case 0x26:
			if p.S, err = readStr(); err != nil {
				return nil, nil, err
			}
			if p.V, err = readStr(); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("unknown property identifier %#x", p.ID)
		}
		out = append(out, p)
	}
	return out, rest, nil
}

func readVBI(b []byte) (n, length int, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("variable byte integer truncated")
		}
		n += int(b[i]&0x7F) * mult
		if b[i]&0x80 == 0 {
			return n, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, errors.New("variable byte integer longer than 4 bytes")
}

// propsWith returns every property with the given identifier.
func propsWith(ps []prop, id byte) []prop {
	var out []prop
	for _, p := range ps {
		if p.ID == id {
			out = append(out, p)
		}
	}
	return out
}

// rawPublish is a decoded PUBLISH.
type rawPublish struct {
	Topic   string
	QoS     byte
	Retain  bool
	Dup     bool
	PID     uint16
	Props   []prop
	Payload string
}

func decodePublish(p packet, v5 bool) (rawPublish, error) {
	if p.Type() != tPUBLISH {
		return rawPublish{}, fmt.Errorf("want PUBLISH, got %v", p)
	}
	m := rawPublish{QoS: p.Flags() >> 1 & 3, Retain: p.Flags()&1 == 1, Dup: p.Flags()&8 != 0}
	b := p.Body
	if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
		return m, fmt.Errorf("PUBLISH topic truncated: %v", p)
	}
	k := int(binary.BigEndian.Uint16(b))
	m.Topic, b = string(b[2:2+k]), b[2+k:]
	if m.QoS > 0 {
		if len(b) < 2 {
			return m, fmt.Errorf("PUBLISH packet identifier truncated: %v", p)
		}
		m.PID, b = binary.BigEndian.Uint16(b), b[2:]
	}
	if v5 {
		var err error
		if m.Props, b, err = parseProps(b); err != nil {
			return m, fmt.Errorf("PUBLISH properties: %w", err)
		}
	}
	m.Payload = string(b)
	return m, nil
}

// ---------------------------------------------------------------------------
// The connection

type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes the concatenation of parts in a single Write. Write errors
// are reported but not fatal: the broker may legitimately have closed the
// connection already.
func (r *rawConn) send(parts ...[]byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := r.c.Write(cat(parts...)); err != nil {
		r.t.Logf("write: %v", err)
	}
}

// sendBytewise writes b one byte per Write, pausing briefly so that the
// bytes travel in separate TCP segments.
func (r *rawConn) sendBytewise(b []byte) {
	r.t.Helper()
	for i := range b {
		_ = r.c.SetWriteDeadline(time.Now().Add(waitTimeout))
		if _, err := r.c.Write(b[i : i+1]); err != nil {
			r.t.Fatalf("write byte %d: %v", i, err)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// closeWrite half-closes the connection: the broker reads EOF.
func (r *rawConn) closeWrite() {
	r.t.Helper()
	if err := r.c.(*net.TCPConn).CloseWrite(); err != nil {
		r.t.Fatalf("CloseWrite: %v", err)
	}
}

// read reads one packet within d.
func (r *rawConn) read(d time.Duration) (packet, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	first, err := r.r.ReadByte()
	if err != nil {
		return packet{}, err
	}
	var n, mult int
	for i := 0; ; i++ {
		b, err := r.r.ReadByte()
		if err != nil {
			return packet{}, fmt.Errorf("remaining length: %w", err)
		}
		if i == 3 && b&0x80 != 0 {
			return packet{}, errors.New("broker sent a remaining length longer than 4 bytes")
		}
		n += int(b&0x7F) << (7 * mult)
		mult++
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return packet{}, fmt.Errorf("body of %d bytes: %w", n, err)
	}
	return packet{First: first, Body: body}, nil
}

// next reads one packet or fails the test.
func (r *rawConn) next(what string) packet {
	r.t.Helper()
	p, err := r.read(waitTimeout)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", what, err)
	}
	return p
}

// expect reads one packet and requires it to be exactly want.
func (r *rawConn) expect(want []byte, what string) {
	r.t.Helper()
	p := r.next(what)
	if !bytes.Equal(p.Bytes(), want) {
		if len(want) > 64 {
			r.t.Fatalf("%s: got %v, want a %d-byte packet starting % x", what, p, len(want), want[:16])
		}
		r.t.Fatalf("%s: got %v, want % x", what, p, want)
	}
}

// expectType reads one packet and requires its first byte to be first.
func (r *rawConn) expectType(first byte, what string) packet {
	r.t.Helper()
	p := r.next(what)
	if p.First != first {
		r.t.Fatalf("%s: got %v, want first byte %#x", what, p, first)
	}
	return p
}

// isClosed reports whether err means the peer closed the connection (EOF
// or reset), as opposed to a read timeout.
func isClosed(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return true
}

// expectClosed requires the broker to close the connection within d
// without sending anything more.
func (r *rawConn) expectClosed(d time.Duration) {
	r.t.Helper()
	p, err := r.read(d)
	switch {
	case err == nil:
		r.t.Fatalf("want the connection closed, got %v", p)
	case !isClosed(err):
		r.t.Fatalf("connection still open %v later: %v", d, err)
	}
}

// connack5 reads a v5 CONNACK and returns its flags, reason code and
// properties.
func (r *rawConn) connack5() (flags, rc byte, ps []prop) {
	r.t.Helper()
	p := r.expectType(0x20, "CONNACK")
	if len(p.Body) < 2 {
		r.t.Fatalf("CONNACK too short: %v", p)
	}
	flags, rc = p.Body[0], p.Body[1]
	if len(p.Body) > 2 {
		var err error
		if ps, _, err = parseProps(p.Body[2:]); err != nil {
			r.t.Fatalf("CONNACK properties: %v", err)
		}
	}
	return flags, rc, ps
}

// handshake connects as a v3.1.1 (v5 false) or v5 client with clean
// session/start and checks the broker accepts.
func (r *rawConn) handshake(v5 bool, id string) {
	r.t.Helper()
	if !v5 {
		r.send(connect311(id, 30))
		r.expect(connackOK3, "CONNACK")
		return
	}
	r.send(connect50(id, 30))
	if flags, rc, _ := r.connack5(); flags != 0 || rc != 0 {
		r.t.Fatalf("CONNACK flags %#x reason %#x, want 0 and 0", flags, rc)
	}
}

// dialHandshake dials and connects in one go.
func dialHandshake(t *testing.T, addr string, v5 bool, id string) *rawConn {
	t.Helper()
	r := dialRaw(t, addr)
	r.handshake(v5, id)
	return r
}

// assertServes checks that the broker still accepts a new client that can
// subscribe, publish and receive its own message and ping: the bad input
// in a previous step must not have broken it.
func assertServes(t *testing.T, addr string) {
	t.Helper()
	r := dialRaw(t, addr)
	r.send(connect311(uniqueID("alive"), 30))
	r.expect(connackOK3, "CONNACK to a healthy client after the bad input")
	r.send(subscribePkt(false, 1, "alive/check", 1, nil))
	r.expect([]byte{0x90, 0x03, 0x00, 0x01, 0x01}, "SUBACK")
	pub := publishPkt(false, "alive/check", 0, false, 0, nil, "still alive")
	r.send(pub)
	r.expect(pub, "own QoS 0 message back")
	r.send(pingreq)
	r.expect(pingresp, "PINGRESP")
	r.send(disconnect0)
	_ = r.c.Close()
}
