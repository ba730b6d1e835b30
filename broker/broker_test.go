package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/packets"
)

// fakeConn stands in for a socket so the broker's packet handling can be
// driven and measured without the event loop.
type fakeConn struct {
	mu      sync.Mutex
	out     bytes.Buffer
	discard bool
	closed  bool
	// taken reports bytes as accepted by the kernel, as the transport does.
	taken func(n int)
}

func (f *fakeConn) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.discard {
		f.out.Write(b)
	}
	if f.taken != nil {
		f.taken(len(b))
	}
	return len(b), nil
}

// open connects a fakeConn that reports every write as taken.
func open(s *Server, conn *fakeConn) any {
	st := s.Open(conn)
	conn.taken = func(n int) { s.Written(st, n) }
	return st
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

func (f *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// packetsOut decodes everything written so far.
func (f *fakeConn) packetsOut(t testing.TB, version byte) []packets.Packet {
	t.Helper()
	f.mu.Lock()
	b := append([]byte(nil), f.out.Bytes()...)
	f.mu.Unlock()
	var out []packets.Packet
	for len(b) > 0 {
		fh, n, err := packets.ReadFixedHeader(b)
		if err != nil {
			t.Fatalf("broker wrote a bad fixed header: %v", err)
		}
		var p packets.Packet
		if err := packets.Decode(&p, fh, b[n:n+fh.Remaining], version); err != nil {
			t.Fatalf("broker wrote a bad %v packet: %v", fh.Type, err)
		}
		out = append(out, p)
		b = b[n+fh.Remaining:]
	}
	return out
}

func newTestServer(t testing.TB) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = ""
	cfg.SysInterval = 0
	cfg.DataDir = ""
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(version byte, pks ...*packets.Packet) []byte {
	var b []byte
	for _, p := range pks {
		b = packets.Encode(b, p, version)
	}
	return b
}

func connectPkt(id string) *packets.Packet {
	p := &packets.Packet{Type: packets.Connect}
	p.Connect.ClientID = []byte(id)
	p.Connect.CleanStart = true
	p.Connect.KeepAlive = 60
	return p
}

func subscribePkt(pid uint16, filter string, qos byte) *packets.Packet {
	return &packets.Packet{Type: packets.Subscribe, PacketID: pid,
		Filters: []packets.Subscription{{Filter: []byte(filter), QoS: qos}}}
}

// Several packets in one read and one packet over many reads are both
// handled; the community edition lost the former.
func TestFraming(t *testing.T) {
	in := encode(packets.V311, connectPkt("framing"), subscribePkt(7, "a/#", 1), &packets.Packet{Type: packets.Pingreq})
	for name, chunk := range map[string]int{"one read": len(in), "byte by byte": 1, "threes": 3} {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t)
			conn := &fakeConn{}
			st := s.Open(conn)
			for b := in; len(b) > 0; {
				n := min(chunk, len(b))
				s.Data(st, b[:n])
				b = b[n:]
			}
			got := conn.packetsOut(t, packets.V311)
			if len(got) != 3 || got[0].Type != packets.Connack || got[1].Type != packets.Suback ||
				got[1].PacketID != 7 || got[2].Type != packets.Pingresp {
				t.Fatalf("got %d packets %+v", len(got), got)
			}
			if c := st.(*client); c.buf != nil {
				t.Fatalf("idle connection still holds a %d-byte read buffer", cap(c.buf))
			}
		})
	}
}

// benchServer connects n subscribers to topic and one publisher, and
// returns the publisher's state and a QoS 0 PUBLISH to send.
func benchServer(b *testing.B, n int, qos byte) (*Server, any, []byte) {
	s := newTestServer(b)
	for i := 0; i < n; i++ {
		conn := &fakeConn{discard: true}
		st := open(s, conn)
		s.Data(st, encode(packets.V311, connectPkt(fmt.Sprintf("sub%d", i)), subscribePkt(1, "bench/+", qos)))
	}
	pubConn := &fakeConn{discard: true}
	pub := open(s, pubConn)
	s.Data(pub, encode(packets.V311, connectPkt("publisher")))
	msg := encode(packets.V311, &packets.Packet{Type: packets.Publish, Topic: []byte("bench/x"), Payload: make([]byte, 64)})
	return s, pub, msg
}

// BenchmarkPublishQoS0 measures one inbound QoS 0 PUBLISH from read
// buffer to the subscribers' writes: framing, decode, trie match, encode.
func BenchmarkPublishQoS0(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s, pub, msg := benchServer(b, n, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Data(pub, msg)
			}
			if d := sumDrops(&s.stats.dropped); d > 0 {
				b.Fatalf("%d deliveries dropped: the benchmark would measure drops", d)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// Shutdown publishes the wills of connected clients before it disconnects
// anyone, and tells v5 clients why it closes (0x8B).
func TestShutdownPublishesWills(t *testing.T) {
	s := newTestServer(t)
	sub := &fakeConn{}
	subSt := open(s, sub)
	c := connectPkt("watcher")
	s.Data(subSt, encode(packets.V5, c, subscribePkt(1, "wills/#", 1)))

	dying := &fakeConn{}
	w := connectPkt("dying")
	w.Connect.WillFlag = true
	w.Connect.WillTopic = []byte("wills/dying")
	w.Connect.WillPayload = []byte("gone")
	w.Connect.WillQoS = 1
	s.Data(open(s, dying), encode(packets.V311, w))

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var gotWill, gotDisconnect bool
	for _, p := range sub.packetsOut(t, packets.V5) {
		switch {
		case p.Type == packets.Publish && string(p.Topic) == "wills/dying" && string(p.Payload) == "gone" && p.QoS == 1:
			gotWill = true
		case p.Type == packets.Disconnect && p.ReasonCode == packets.ServerShuttingDown:
			gotDisconnect = gotWill // the will must come first
		}
	}
	if !gotWill || !gotDisconnect {
		t.Fatalf("watcher got will=%v, then DISCONNECT 0x8B=%v", gotWill, gotDisconnect)
	}
}
