package packets

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes through ReadFixedHeader and Decode at
// every protocol level. Nothing may panic, and whatever decodes must
// re-encode to bytes of the length Size predicts that decode to an equal
// packet and re-encode to themselves.
func FuzzDecode(f *testing.F) {
	for _, tt := range validPackets {
		f.Add(tt.Bytes)
	}
	for _, tt := range invalidPackets {
		f.Add(tt.Bytes)
	}
	var p, q Packet
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, version := range []byte{V31, V311, V5} {
			fh, n, err := ReadFixedHeader(data)
			if err != nil || len(data)-n < fh.Remaining {
				return
			}
			// Reusing p and q across inputs also checks that Reset leaves
			// nothing behind.
			if Decode(&p, fh, data[n:n+fh.Remaining], version) != nil {
				continue
			}
			v := encodeVersion(&p, version)
			enc := Encode(nil, &p, v)
			if len(enc) != Size(&p, v) {
				t.Fatalf("v%d: Size %d, encoded %d bytes", version, Size(&p, v), len(enc))
			}
			if err := decodeAll(&q, enc, version); err != nil {
				t.Fatalf("v%d: re-encoded packet % x does not decode: %v", version, enc, err)
			}
			if !equalPackets(p, q) {
				t.Fatalf("v%d: decoded\n%+v\nre-decoded\n%+v", version, p, q)
			}
			if again := Encode(nil, &q, v); !bytes.Equal(again, enc) {
				t.Fatalf("v%d: encoding not stable:\n% x\n% x", version, enc, again)
			}
		}
	})
}
