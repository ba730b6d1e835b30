package pebble

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
)

// Keys. Every key starts with a byte naming its kind. Keys that belong to a
// client ID continue with prefix(kind, id) = kind | uvarint(len(id)) | id:
// the length makes one session's keys one contiguous range, however its ID
// relates to another's (uvarint is prefix-free), which is what lets a whole
// queue go with one range deletion. Numbers in keys are big-endian so that
// byte order is numeric order.
const (
	kindCounters = 'c' // c                      → counters (merge operands)
	kindInbound  = 'i' // i|id|pid16             → at
	kindOutbound = 'o' // o|id                   → last send-order number
	//                    o|id|pid16             → ord, released, message
	kindQueue = 'q' // q|id                   → queue meta
	//                 q|id|seq64             → at, size, message
	kindRetained = 'r' // r|topic                → at, message
	kindSession  = 's' // s|id                   → session record
	kindVersion  = 'v' // v                      → layout name and version
	kindWill     = 'w' // w|id                   → fireAt, message
)

// layout names this key layout; a store written under another refuses to
// open rather than be misread.
const layout = "coolpy7 store v1"

func prefix(kind byte, id string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen32+len(id)+8)
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}

// parsePrefix splits k into its client-ID prefix and what follows.
func parsePrefix(k []byte) (pre, rest []byte, ok bool) {
	n, w := binary.Uvarint(k[1:])
	end := 1 + w + int(n)
	if w <= 0 || n > uint64(len(k)) || end > len(k) {
		return nil, nil, false
	}
	return k[:end], k[end:], true
}

func idOf(pre []byte) string {
	_, w := binary.Uvarint(pre[1:])
	return string(pre[1+w:])
}

func queueKey(pre []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(pre[:len(pre):len(pre)], seq)
}

func pidKey(pre []byte, pid uint16) []byte {
	return binary.BigEndian.AppendUint16(pre[:len(pre):len(pre)], pid)
}

// end is the first key after every key that starts with p.
func end(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] != 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil // p is all 0xff: nothing follows; no key kind is 0xff
}

func simpleKey(kind byte, s string) []byte {
	return append([]byte{kind}, s...)
}

var errCorrupt = errors.New("record does not decode")

// reader walks a value. Errors stick: the caller checks err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func (r *reader) time() time.Time {
	if n := r.varint(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Message layout:
//
//	flags  byte: QoS (bits 0-1), retain (2), expires (3), properties (4)
//	expires varint Unix nanoseconds, if flagged
//	topic  uvarint length, bytes
//	props  uvarint length, property block, if flagged
//	payload to the end
//
// The property block is the kept properties as id byte and value; strings
// and binary data are uvarint-length-prefixed, subscription identifiers and
// user properties a uvarint count and the items. This is our own form, not
// MQTT's, so that a message costs a few bytes over its content and decodes
// without the packet codec's validation or its 700-byte Packet.
const (
	flagRetain  = 1 << 2
	flagExpires = 1 << 3
	flagProps   = 1 << 4
)

func appendMessage(b []byte, m *store.Message) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= flagRetain
	}
	if !m.Expires.IsZero() {
		flags |= flagExpires
	}
	p := m.Props
	if p != nil && p.Present&store.Kept != 0 {
		flags |= flagProps
	}
	b = append(b, flags)
	if flags&flagExpires != 0 {
		b = binary.AppendVarint(b, m.Expires.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(m.Topic)))
	b = append(b, m.Topic...)
	if flags&flagProps != 0 {
		// Leave one byte for the length and move the block if it needs more.
		at := len(b)
		b = append(b, 0)
		b = appendProps(b, p)
		n := len(b) - at - 1
		if n < 0x80 {
			b[at] = byte(n)
		} else {
			var l [binary.MaxVarintLen64]byte
			w := binary.PutUvarint(l[:], uint64(n))
			b = append(b, l[:w-1]...)
			copy(b[at+w:], b[at+1:at+1+n])
			copy(b[at:], l[:w])
		}
	}
	return append(b, m.Payload...)
}

func appendProps(b []byte, p *packets.Properties) []byte {
	if p.Has(packets.PropPayloadFormat) {
		b = append(b, packets.PropPayloadFormat, p.PayloadFormat)
	}
	for _, f := range [...]struct {
		id byte
		v  []byte
	}{
		{packets.PropContentType, p.ContentType},
		{packets.PropResponseTopic, p.ResponseTopic},
		{packets.PropCorrelationData, p.CorrelationData},
	} {
		if p.Has(f.id) {
			b = appendBytes(append(b, f.id), f.v)
		}
	}
	if p.Has(packets.PropSubscriptionID) {
		b = binary.AppendUvarint(append(b, packets.PropSubscriptionID), uint64(len(p.SubscriptionIDs)))
		for _, id := range p.SubscriptionIDs {
			b = binary.AppendUvarint(b, uint64(id))
		}
	}
	if p.Has(packets.PropUser) {
		b = binary.AppendUvarint(append(b, packets.PropUser), uint64(len(p.User)))
		for _, u := range p.User {
			b = appendBytes(appendBytes(b, u.Key), u.Value)
		}
	}
	return b
}

// decodeMessage decodes the message at the end of a value. It copies what
// it keeps, so b may be the engine's transient buffer.
func decodeMessage(b []byte) (*store.Message, error) {
	r := reader{b: b}
	flags := r.byte()
	if flags&^(3|flagRetain|flagExpires|flagProps) != 0 || flags&3 == 3 {
		return nil, errCorrupt
	}
	m := &store.Message{QoS: flags & 3, Retain: flags&flagRetain != 0}
	if flags&flagExpires != 0 {
		m.Expires = time.Unix(0, r.varint())
	}
	m.Topic = string(r.bytes())
	var props []byte
	if flags&flagProps != 0 {
		props = r.bytes()
	}
	if r.err != nil {
		return nil, r.err
	}
	// One copy holds the payload and every property value.
	buf := make([]byte, len(props)+len(r.b))
	copy(buf, props)
	copy(buf[len(props):], r.b)
	if len(r.b) > 0 {
		m.Payload = buf[len(props):]
	}
	if props != nil {
		p, err := decodeProps(buf[:len(props):len(props)])
		if err != nil {
			return nil, err
		}
		m.Props = p
	}
	return m, nil
}

func decodeProps(b []byte) (*packets.Properties, error) {
	p := &packets.Properties{}
	r := reader{b: b}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		if p.Has(id) {
			return nil, errCorrupt
		}
		p.Set(id)
		switch id {
		case packets.PropPayloadFormat:
			p.PayloadFormat = r.byte()
		case packets.PropContentType:
			p.ContentType = r.bytes()
		case packets.PropResponseTopic:
			p.ResponseTopic = r.bytes()
		case packets.PropCorrelationData:
			p.CorrelationData = r.bytes()
		case packets.PropSubscriptionID:
			n := r.uvarint()
			if n > uint64(len(r.b)) {
				return nil, errCorrupt
			}
			p.SubscriptionIDs = make([]uint32, n)
			for i := range p.SubscriptionIDs {
				p.SubscriptionIDs[i] = uint32(r.uvarint())
			}
		case packets.PropUser:
			n := r.uvarint()
			if n > uint64(len(r.b)) {
				return nil, errCorrupt
			}
			p.User = make([]packets.UserProperty, n)
			for i := range p.User {
				p.User[i] = packets.UserProperty{Key: r.bytes(), Value: r.bytes()}
			}
		default:
			return nil, errCorrupt
		}
	}
	return p, r.err
}

// expiresOf reads only a message's expiry, for the sweeper.
func expiresOf(b []byte) (time.Time, error) {
	r := reader{b: b}
	if r.byte()&flagExpires == 0 {
		return time.Time{}, r.err
	}
	t := time.Unix(0, r.varint())
	return t, r.err
}

// Session record: version byte 1, uvarint expiry, varint disconnected Unix
// nanoseconds (0 while connected), uvarint count of subscriptions and each
// as filter, options byte (QoS bits 0-1, no local 2, retain as published
// 3, retain handling 4-5) and uvarint identifier.
func appendSession(b []byte, rec *store.SessionRecord) []byte {
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(rec.Expiry))
	b = appendTime(b, rec.Disconnected)
	b = binary.AppendUvarint(b, uint64(len(rec.Subs)))
	for _, s := range rec.Subs {
		b = binary.AppendUvarint(b, uint64(len(s.Filter)))
		b = append(b, s.Filter...)
		o := s.QoS&3 | (s.RetainHandling&3)<<4
		if s.NoLocal {
			o |= 1 << 2
		}
		if s.RetainAsPublished {
			o |= 1 << 3
		}
		b = binary.AppendUvarint(append(b, o), uint64(s.ID))
	}
	return b
}

func decodeSession(b []byte) (*store.SessionRecord, error) {
	r := reader{b: b}
	if r.byte() != 1 {
		return nil, errCorrupt
	}
	rec := &store.SessionRecord{Expiry: uint32(r.uvarint()), Disconnected: r.time()}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, errCorrupt
	}
	if n > 0 {
		rec.Subs = make([]store.Sub, n)
	}
	for i := range rec.Subs {
		f := string(r.bytes())
		o := r.byte()
		rec.Subs[i] = store.Sub{Filter: f, QoS: o & 3, NoLocal: o&(1<<2) != 0,
			RetainAsPublished: o&(1<<3) != 0, RetainHandling: o >> 4 & 3, ID: uint32(r.uvarint())}
	}
	if r.err == nil && len(r.b) != 0 {
		return nil, errCorrupt
	}
	return rec, r.err
}

// queueMeta is the record at a queue's prefix. It sorts before the queue's
// messages and goes with them in one range deletion.
type queueMeta struct {
	head  uint64 // no message below head is left
	last  uint64 // the last sequence number given out
	count uint64
	bytes uint64
	// minExp is a lower bound, in Unix seconds, on the v5 expiry of the
	// queued messages, 0 when none has one: the sweeper skips a queue
	// until it is due instead of reading every message.
	minExp uint64
	// epoch tells a queue from a dropped one recreated under the same ID,
	// for a sweep that spans ticks.
	epoch uint64
}

func (q *queueMeta) append(b []byte) []byte {
	for _, v := range [...]uint64{q.head, q.last, q.count, q.bytes, q.minExp, q.epoch} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func decodeQueueMeta(b []byte) (queueMeta, error) {
	r := reader{b: b}
	q := queueMeta{head: r.uvarint(), last: r.uvarint(), count: r.uvarint(), bytes: r.uvarint(), minExp: r.uvarint(), epoch: r.uvarint()}
	return q, r.err
}

// expSeconds is the Unix second a v5 expiry falls in, as minExp keeps it.
func expSeconds(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(max(t.Unix(), 1))
}

// Queue value: uvarint at (Unix seconds), uvarint Size, message. The size
// is stored so that Remove can account bytes without decoding messages.
func appendQueued(b []byte, at int64, size int, m *store.Message) []byte {
	b = binary.AppendUvarint(b, uint64(at))
	b = binary.AppendUvarint(b, uint64(size))
	return appendMessage(b, m)
}

func queuedHeader(b []byte) (at int64, size uint64, msg []byte, err error) {
	r := reader{b: b}
	at, size = int64(r.uvarint()), r.uvarint()
	return at, size, r.b, r.err
}

// Outbound value: uvarint send-order number, released byte, and the
// message unless released.
func appendOutbound(b []byte, ord uint64, m *store.Message) []byte {
	b = binary.AppendUvarint(b, ord)
	if m == nil {
		return append(b, 1)
	}
	return appendMessage(append(b, 0), m)
}

func decodeOutbound(b []byte) (ord uint64, m *store.Message, released bool, err error) {
	r := reader{b: b}
	ord = r.uvarint()
	released = r.byte() == 1
	if r.err != nil {
		return 0, nil, false, r.err
	}
	if released {
		return ord, nil, true, nil
	}
	m, err = decodeMessage(r.b)
	return ord, m, false, err
}
