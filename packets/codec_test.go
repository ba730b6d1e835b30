package packets

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// decodeAll runs bytes through ReadFixedHeader and Decode the way a
// connection does, requiring exactly one packet.
func decodeAll(p *Packet, b []byte, version byte) error {
	fh, n, err := ReadFixedHeader(b)
	if err != nil {
		return err
	}
	if len(b)-n != fh.Remaining {
		return errors.New("test: buffer is not exactly one packet")
	}
	return Decode(p, fh, b[n:], version)
}

// normalize makes the slices that Reset keeps (empty but non-nil after
// reuse) compare equal to those of a fresh Packet.
func normalize(p Packet) Packet {
	if len(p.Filters) == 0 {
		p.Filters = nil
	}
	if len(p.ReasonCodes) == 0 {
		p.ReasonCodes = nil
	}
	for _, pp := range []*Properties{&p.Props, &p.Connect.WillProps} {
		if len(pp.User) == 0 {
			pp.User = nil
		}
		if len(pp.SubscriptionIDs) == 0 {
			pp.SubscriptionIDs = nil
		}
	}
	return p
}

func equalPackets(a, b Packet) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

// encodeVersion is the version to write p back at: a CONNECT carries its own.
func encodeVersion(p *Packet, version byte) byte {
	if p.Type == Connect {
		return p.Connect.Level
	}
	return version
}

func TestDecodeValid(t *testing.T) {
	for _, tt := range validPackets {
		t.Run(tt.Name, func(t *testing.T) {
			var p Packet
			if err := decodeAll(&p, tt.Bytes, tt.Version); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !equalPackets(p, tt.Packet) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", p, tt.Packet)
			}
		})
	}
}

func TestEncodeValid(t *testing.T) {
	for _, tt := range validPackets {
		t.Run(tt.Name, func(t *testing.T) {
			want := tt.Encoded
			if want == nil {
				want = tt.Bytes
			}
			p := tt.Packet
			got := Encode(nil, &p, tt.Version)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n% x\nwant\n% x", got, want)
			}
			if n := Size(&p, tt.Version); n != len(want) {
				t.Fatalf("Size = %d, want %d", n, len(want))
			}
		})
	}
}

// TestRoundTrip checks Encode(Decode(b)) == b, and that encoding appends
// rather than overwrites.
func TestRoundTrip(t *testing.T) {
	for _, tt := range validPackets {
		t.Run(tt.Name, func(t *testing.T) {
			var p Packet
			if err := decodeAll(&p, tt.Bytes, tt.Version); err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := tt.Encoded
			if want == nil {
				want = tt.Bytes
			}
			prefix := []byte("prefix")
			got := Encode(append([]byte(nil), prefix...), &p, tt.Version)
			if !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("encoded\n% x\nwant\n% x", got[len(prefix):], want)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, tt := range invalidPackets {
		t.Run(tt.Name, func(t *testing.T) {
			var p Packet
			err := decodeAll(&p, tt.Bytes, tt.Version)
			if err != tt.Err {
				t.Fatalf("err = %v, want %v", err, tt.Err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.Err.Code {
				t.Fatalf("err %v does not carry code %#x", err, tt.Err.Code)
			}
		})
	}
}

// TestCoverage makes sure the table exercises every packet type at both
// v3 and v5, and every property.
func TestCoverage(t *testing.T) {
	types := map[byte]map[Type]bool{V311: {}, V5: {}}
	var props uint64
	for _, tt := range validPackets {
		v := tt.Version
		if v == V31 {
			v = V311
		}
		types[v][tt.Packet.Type] = true
		props |= tt.Packet.Props.Present | tt.Packet.Connect.WillProps.Present
	}
	for typ := Connect; typ <= Auth; typ++ {
		if !types[V5][typ] {
			t.Errorf("no v5 packet of type %d", typ)
		}
		if typ != Auth && !types[V311][typ] {
			t.Errorf("no v3 packet of type %d", typ)
		}
	}
	for id, s := range propSpecs {
		if s.kind != propNone && props&(1<<id) == 0 {
			t.Errorf("no packet with property %#x", id)
		}
	}
}

// TestPropertyPlacement encodes every property in every packet type and
// checks that exactly the allowed ones survive, which holds propSpecs to
// the decoder's view of the same table.
func TestPropertyPlacement(t *testing.T) {
	var all Properties
	for _, tt := range validPackets {
		if tt.Version == V5 {
			mergeProps(&all, &tt.Packet.Props)
			mergeProps(&all, &tt.Packet.Connect.WillProps)
		}
	}
	for _, tt := range validPackets {
		if tt.Version != V5 {
			continue
		}
		p := tt.Packet
		p.Props = all
		var q Packet
		if err := decodeAll(&q, Encode(nil, &p, V5), V5); err != nil {
			t.Fatalf("%s: %v", tt.Name, err)
		}
		if q.Props.Present != all.Present&propMask[p.Type] {
			t.Errorf("%s: properties %b, want %b", tt.Name, q.Props.Present, all.Present&propMask[p.Type])
		}
	}
}

// mergeProps copies into dst every property src has and dst lacks.
func mergeProps(dst, src *Properties) {
	for id := range propSpecs {
		if !src.Has(byte(id)) || dst.Has(byte(id)) {
			continue
		}
		dst.Set(byte(id))
		switch id := byte(id); propSpecs[id].kind {
		case propByte:
			*dst.byteField(id) = *src.byteField(id)
		case propUint16:
			*dst.uint16Field(id) = *src.uint16Field(id)
		case propUint32:
			*dst.uint32Field(id) = *src.uint32Field(id)
		case propVarint:
			dst.SubscriptionIDs = src.SubscriptionIDs[:1]
		case propString, propBinary:
			*dst.bytesField(id) = *src.bytesField(id)
		case propPair:
			dst.User = src.User
		}
	}
}

// TestIncomplete feeds every prefix of every valid packet: the header reader
// must either ask for more or report a length the prefix does not reach.
func TestIncomplete(t *testing.T) {
	for _, tt := range validPackets {
		for i := 0; i < len(tt.Bytes); i++ {
			fh, n, err := ReadFixedHeader(tt.Bytes[:i])
			if err == ErrIncomplete {
				continue
			}
			if err != nil {
				t.Fatalf("%s[:%d]: %v", tt.Name, i, err)
			}
			if i-n >= fh.Remaining {
				t.Fatalf("%s[:%d]: header claims the prefix is whole", tt.Name, i)
			}
		}
	}
}

func TestReadFixedHeader(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		fh   FixedHeader
		n    int
		err  error
	}{
		{"empty", nil, FixedHeader{}, 0, ErrIncomplete},
		{"type only", []byte{0x30}, FixedHeader{}, 0, ErrIncomplete},
		{"length cut", []byte{0x30, 0x80}, FixedHeader{}, 0, ErrIncomplete},
		{"length cut at 3 bytes", []byte{0x30, 0xFF, 0xFF, 0xFF}, FixedHeader{}, 0, ErrIncomplete},
		{"bad flags decided by first byte", []byte{0x61}, FixedHeader{}, 0, ErrFixedHeaderFlags},
		{"one byte length", []byte{0x32, 127}, FixedHeader{Publish, 0x02, 127}, 2, nil},
		{"two byte length", []byte{0x30, 0x80, 0x01}, FixedHeader{Publish, 0, 128}, 3, nil},
		{"maximum length", []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, FixedHeader{Publish, 0, MaxRemainingLength}, 5, nil},
		{"five byte length", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, FixedHeader{}, 0, ErrVarint},
		{"auth accepted before level is known", []byte{0xF0, 0}, FixedHeader{Auth, 0, 0}, 2, nil},
	}
	for _, tt := range tests {
		fh, n, err := ReadFixedHeader(tt.in)
		if fh != tt.fh || n != tt.n || err != tt.err {
			t.Errorf("%s: got %+v, %d, %v; want %+v, %d, %v", tt.name, fh, n, err, tt.fh, tt.n, tt.err)
		}
	}
}

// TestDecodeHeaderChecks covers headers a caller built itself rather than
// got from ReadFixedHeader: Decode must not trust them.
func TestDecodeHeaderChecks(t *testing.T) {
	tests := []struct {
		name string
		fh   FixedHeader
		body []byte
		err  error
	}{
		{"length mismatch", FixedHeader{Type: Puback, Remaining: 3}, []byte{0, 1}, ErrMalformed},
		{"bad flags", FixedHeader{Type: Subscribe, Remaining: 6}, []byte{0, 1, 0, 1, '#', 0}, ErrFixedHeaderFlags},
		{"type beyond 4 bits", FixedHeader{Type: 16}, nil, ErrReservedType},
	}
	for _, tt := range tests {
		var p Packet
		if err := Decode(&p, tt.fh, tt.body, V5); err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
}

// TestUnsupportedProtocolLevel checks that a refused CONNECT still tells the
// broker which CONNACK to send.
func TestUnsupportedProtocolLevel(t *testing.T) {
	var p Packet
	err := decodeAll(&p, []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 0, 0, 0, 0}, V5)
	if err != ErrUnsupportedProtocol || p.Connect.Level != 6 || string(p.Connect.ProtocolName) != "MQTT" {
		t.Fatalf("err = %v, level %d, name %q", err, p.Connect.Level, p.Connect.ProtocolName)
	}
}

func TestAppendVarint(t *testing.T) {
	for _, v := range []int{0, 1, 127, 128, 16383, 16384, 2097151, 2097152, MaxRemainingLength} {
		b := AppendVarint(nil, v)
		if len(b) != varintLen(v) {
			t.Errorf("%d: %d bytes, varintLen says %d", v, len(b), varintLen(v))
		}
		got, n := readVarint(b)
		if got != v || n != len(b) {
			t.Errorf("%d: read back %d in %d bytes", v, got, n)
		}
	}
	if b := AppendVarint(nil, 321); !bytes.Equal(b, []byte{0xC1, 0x02}) {
		t.Errorf("321 encoded as % x", b)
	}
}

func TestValidUTF8(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"a/b/c", true},
		{"\u00e9t\u00e9/\u20ac/\U0001F600", true},
		{"\ufeff", true},        // BOM is data, not stripped (§1.5.4)
		{"\x01\x7f", true},      // control characters: SHOULD NOT, not MUST NOT
		{"\uffff", true},        // non-character: likewise
		{"a\x00b", false},       // U+0000
		{"é\x00", false},        // U+0000 after a multi-byte rune
		{"\xed\xa0\x80", false}, // surrogate U+D800
		{"\xc0\x80", false},     // overlong U+0000
		{"\xff", false},
		{"\xe2\x82", false}, // cut sequence
	}
	for _, tt := range tests {
		if got := ValidUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("ValidUTF8(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestReuse decodes the whole table into one Packet so that leftovers from
// one packet type showing up in the next fail the comparison.
func TestReuse(t *testing.T) {
	var p Packet
	for _, tt := range validPackets {
		if err := decodeAll(&p, tt.Bytes, tt.Version); err != nil {
			t.Fatalf("%s: %v", tt.Name, err)
		}
		if !equalPackets(p, tt.Packet) {
			t.Fatalf("%s: decoded\n%+v\nwant\n%+v", tt.Name, p, tt.Packet)
		}
	}
}

// TestDecodedSlicesAreCapped makes sure appending to a decoded field cannot
// overwrite the bytes after it in the read buffer.
func TestDecodedSlicesAreCapped(t *testing.T) {
	var p Packet
	in := []byte{0x30, 10, 0, 3, 'a', '/', 'b', 'h', 'e', 'l', 'l', 'o'}
	if err := decodeAll(&p, in, V311); err != nil {
		t.Fatal(err)
	}
	_ = append(p.Topic, 'X')
	if string(p.Payload) != "hello" {
		t.Fatalf("payload overwritten: %q", p.Payload)
	}
}

func TestNoAllocs(t *testing.T) {
	var p Packet
	buf := make([]byte, 0, 1024)
	for _, tt := range validPackets {
		// Warm up the reused slices once; later decodes must not allocate.
		if err := decodeAll(&p, tt.Bytes, tt.Version); err != nil {
			t.Fatalf("%s: %v", tt.Name, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = decodeAll(&p, tt.Bytes, tt.Version) }); n != 0 {
			t.Errorf("%s: decode allocates %v times", tt.Name, n)
		}
		v := encodeVersion(&p, tt.Version)
		if n := testing.AllocsPerRun(100, func() { buf = Encode(buf[:0], &p, v) }); n != 0 {
			t.Errorf("%s: encode allocates %v times", tt.Name, n)
		}
	}
}
