package coapgw

import (
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// FuzzParseRequest runs datagrams through go-coap's decoder and then the
// gateway's option parsing, which is ours.
func FuzzParseRequest(f *testing.F) {
	for _, d := range [][]byte{
		{0x40, 0x02, 0x00, 0x01, 0xb3, 'p', 'u', 'b', 0x4b, 't', 'o', 'p', 'i', 'c', '=', 'a', '/', 'b', 0x00, 0x00, 0x00},
		{0x40, 0x01, 0x00, 0x01, 0x60, 0x02, 'p', 's'},
		{0x40, 0x01, 0x00, 0x01, 0x63, 0x01, 0x02, 0x03},
		{0x40, 0x01, 0x00, 0x01, 0xff, 'x'},
	} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		m := pool.NewMessage(t.Context())
		if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, d); err != nil {
			return
		}
		req, err := ParseRequest(m.Options())
		if err != nil {
			return
		}
		if req.Observe > 1<<24-1 || req.Query == nil {
			t.Fatalf("%+v", req)
		}
	})
}
