package broker

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/packets"
)

// sharedServer connects members to "$share/g/bench/+" under strategy, and
// a publisher; it returns the members' connections, the publisher and a
// QoS qos PUBLISH to bench/x.
func sharedServer(tb testing.TB, strategy string, members int, qos byte, mod func(*config.Config)) (*Server, []*fakeConn, any, []byte) {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = "" // in memory: parallel tests must not share ./data
	cfg.Listen = ""
	cfg.SysInterval = 0
	cfg.SharedStrategy = strategy
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	var conns []*fakeConn
	for i := range members {
		conn := &fakeConn{discard: true}
		st := open(s, conn)
		s.Data(st, encode(packets.V311, connectPkt(fmt.Sprintf("m%d", i)), subscribePkt(1, "$share/g/bench/+", qos)))
		conns = append(conns, conn)
	}
	pub := open(s, &fakeConn{discard: true})
	s.Data(pub, encode(packets.V311, connectPkt("publisher")))
	msg := encode(packets.V311, &packets.Packet{Type: packets.Publish, Topic: []byte("bench/x"), Payload: make([]byte, 64)})
	return s, conns, pub, msg
}

// Choosing a member allocates nothing, whatever the strategy.
func TestSharedPickAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, strategy := range config.Strategies {
		s, _, pub, msg := sharedServer(t, strategy, 5, 0, nil)
		if n := testing.AllocsPerRun(1000, func() { s.Data(pub, msg) }); n != 0 {
			t.Errorf("%s: %.1f allocations per shared QoS 0 publish", strategy, n)
		}
	}
}

// A member whose window and queue are full is skipped; the others get the
// rest, and no message is dropped.
func TestSharedSkipsFull(t *testing.T) {
	s, conns, pub, _ := sharedServer(t, "round_robin", 2, 1, func(c *config.Config) {
		c.MaxInflight, c.MaxQueued = 1, 1
	})
	for _, c := range conns {
		c.discard = false
	}
	for i := range 10 {
		// Only member 1 acknowledges (a PUBACK for every packet ID it may
		// hold), so member 0 fills after one in flight and one queued.
		s.Data(pub, encode(packets.V311, &packets.Packet{Type: packets.Publish, QoS: 1, PacketID: uint16(i + 1), Topic: []byte("bench/x"), Payload: []byte("m")}))
		for _, p := range conns[1].packetsOut(t, packets.V311) {
			if p.Type == packets.Publish {
				s.sessions["m1"].acked(p.PacketID, 1)
			}
		}
	}
	count := func(c *fakeConn) int {
		n := 0
		for _, p := range c.packetsOut(t, packets.V311) {
			if p.Type == packets.Publish {
				n++
			}
		}
		return n
	}
	s.sessions["m0"].mu.Lock()
	held := len(s.sessions["m0"].flow.inflight) + len(s.sessions["m0"].flow.queue)
	s.sessions["m0"].mu.Unlock()
	if held != 2 || count(conns[1]) != 8 || sumDrops(&s.stats.dropped) != 0 {
		t.Fatalf("member 0 holds %d, member 1 got %d, %d dropped; want 2, 8, 0", held, count(conns[1]), sumDrops(&s.stats.dropped))
	}
}

// BenchmarkPublishShared is BenchmarkPublishQoS0 through a shared group of
// five members, per strategy.
func BenchmarkPublishShared(b *testing.B) {
	for _, strategy := range config.Strategies {
		b.Run(strategy, func(b *testing.B) {
			s, _, pub, msg := sharedServer(b, strategy, 5, 0, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.Data(pub, msg)
			}
			if d := sumDrops(&s.stats.dropped); d > 0 {
				b.Fatalf("%d deliveries dropped", d)
			}
		})
	}
}
