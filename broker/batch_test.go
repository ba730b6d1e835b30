package broker

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/transport"
)

// directConn hides the transport's Batcher, as TLS and WebSocket do, so
// that every PUBLISH is written at once.
type directConn struct{ transport.Conn }

type directHandler struct{ *Server }

func (h directHandler) Open(c transport.Conn) any { return h.Server.Open(directConn{c}) }

// writeSyscalls is this process's count of write system calls so far.
func writeSyscalls(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io:", err)
	}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no syscw in /proc/self/io")
	return 0
}

// BenchmarkPublishBurst sends k QoS 0 PUBLISHes to one subscriber in one
// write over real loopback sockets and waits for all k to arrive. With
// staging (the TCP transport) the broker writes them with one write(2);
// direct, as over TLS or WebSocket, with k. write-syscalls/op counts the
// process's write system calls per burst, less the publisher's own one.
func BenchmarkPublishBurst(b *testing.B) {
	for _, mode := range []string{"staged", "direct"} {
		for _, k := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/k=%d", mode, k), func(b *testing.B) {
				s := newTestServer(b)
				var h transport.Handler = s
				if mode == "direct" {
					h = directHandler{s}
				}
				l := transport.NewTCP("127.0.0.1:0", h)
				if err := l.Start(); err != nil {
					b.Fatal(err)
				}
				defer l.Stop()
				sub := dialBench(b, l.Addr(), encode(packets.V311, connectPkt("sub"), subscribePkt(1, "bench/+", 0)), 4+5)
				defer sub.Close()
				pub := dialBench(b, l.Addr(), encode(packets.V311, connectPkt("pub")), 4)
				defer pub.Close()
				msg := &packets.Packet{Type: packets.Publish, Topic: []byte("bench/x"), Payload: make([]byte, 64)}
				var burst []byte
				for range k {
					burst = packets.Encode(burst, msg, packets.V311)
				}
				got := make([]byte, len(burst))
				b.ReportAllocs()
				b.SetBytes(int64(len(burst)))
				w0 := writeSyscalls(b)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := pub.Write(burst); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(sub, got); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(writeSyscalls(b)-w0)/float64(b.N)-1, "write-syscalls/op")
				b.ReportMetric(float64(b.N*k)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}

// dialBench connects, sends hello and reads the n bytes of its answer.
func dialBench(b *testing.B, addr string, hello []byte, n int) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Write(hello); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		b.Fatal(err)
	}
	return c
}
