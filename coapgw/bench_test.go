package coapgw

import (
	"context"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
)

// BenchmarkCoAPPublish measures confirmable POST /pub round trips at QoS 0
// with password authentication (cached after the first bcrypt), from 64
// clients over loopback; client and gateway share the process. Many peers,
// because RFC 7252 lets one endpoint use a message ID once per
// EXCHANGE_LIFETIME (247 s), about 265 confirmable requests a second, and
// go-coap's server scans each peer's cache of those exchanges on every
// datagram (docs/design.md).
func BenchmarkCoAPPublish(b *testing.B) {
	e := newEnv(b)
	opts := []message.Option{creds(basic("alice", "secret")), query("clientid=bench&topic=alice/bench&qos=0")}
	b.SetParallelism(32) // 32 × GOMAXPROCS clients
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cc, err := udp.Dial(e.udp)
		if err != nil {
			b.Error(err)
			return
		}
		defer cc.Close()
		for pb.Next() {
			res, err := cc.Post(context.Background(), "/pub", message.TextPlain, strings.NewReader("payload"), opts...)
			if err != nil || res.Code() != codes.Changed {
				b.Errorf("%v %v", err, res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
