package loadgen

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/packets"
)

// recordWire keeps what a client writes.
type recordWire struct {
	mu  sync.Mutex
	out []byte
}

func (r *recordWire) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out = append(r.out, b...)
	r.mu.Unlock()
	return len(b), nil
}

func (r *recordWire) Close() error { return nil }

// packets decodes everything written so far.
func (r *recordWire) packets(t *testing.T) []packets.Packet {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []packets.Packet
	b := r.out
	for len(b) > 0 {
		fh, n, err := packets.ReadFixedHeader(b)
		if err != nil || len(b) < n+fh.Remaining {
			t.Fatalf("client wrote a broken packet stream: %v", err)
		}
		var p packets.Packet
		if err := packets.Decode(&p, fh, b[n:n+fh.Remaining], packets.V311); err != nil {
			t.Fatalf("client wrote an invalid packet: %v", err)
		}
		out = append(out, p)
		b = b[n+fh.Remaining:]
	}
	return out
}

func testClient(role byte, qos byte) (*client, *recordWire) {
	o := DefaultOptions(ScenarioP2P)
	o.QoS = qos
	w := &Worker{
		opts:     o,
		version:  packets.V311,
		shards:   []*shard{{lat: NewHistogram(), connLat: NewHistogram()}},
		failures: make(map[string]int64),
	}
	rw := &recordWire{}
	c := &client{w: w, role: role, idx: 1, shard: w.shards[0], conn: rw}
	c.state.Store(stReady)
	return c, rw
}

// publishStream encodes n PUBLISHes stamped sent ago.
func publishStream(n int, qos byte, ago time.Duration) []byte {
	var b []byte
	payload := make([]byte, 64)
	binary.LittleEndian.PutUint64(payload, uint64(time.Now().Add(-ago).UnixNano()))
	for i := range n {
		p := packets.Packet{Type: packets.Publish, QoS: qos, Topic: []byte("t/1"), Payload: payload}
		if qos > 0 {
			p.PacketID = uint16(i + 1)
		}
		b = packets.Encode(b, &p, packets.V311)
	}
	return b
}

func TestFramingAcrossSplitReads(t *testing.T) {
	for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
		c, rw := testClient(roleSub, 1)
		stream := publishStream(50, 1, 3*time.Millisecond)
		// Reads arrive cut anywhere and several packets at once; the
		// client's read buffer is reused by the caller after each call.
		buf := make([]byte, 0, chunk)
		for off := 0; off < len(stream); off += chunk {
			buf = append(buf[:0], stream[off:min(off+chunk, len(stream))]...)
			c.onData(buf)
			clear(buf)
		}
		if got := c.shard.recv.Load(); got != 50 {
			t.Fatalf("chunk %d: received %d, want 50", chunk, got)
		}
		lat := c.shard.lat.Snapshot()
		if lat.Total != 50 || lat.Min < int64(3*time.Millisecond) || lat.Max > int64(time.Second) {
			t.Fatalf("chunk %d: latency n=%d min %v max %v", chunk, lat.Total, time.Duration(lat.Min), time.Duration(lat.Max))
		}
		acks := rw.packets(t)
		if len(acks) != 50 {
			t.Fatalf("chunk %d: %d PUBACKs, want 50", chunk, len(acks))
		}
		for i, a := range acks {
			if a.Type != packets.Puback || a.PacketID != uint16(i+1) {
				t.Fatalf("chunk %d: ack %d is type %d id %d", chunk, i, a.Type, a.PacketID)
			}
		}
		if len(c.rbuf) != 0 {
			t.Fatalf("chunk %d: %d bytes left over", chunk, len(c.rbuf))
		}
	}
}

func TestQoS2ExchangeAsReceiver(t *testing.T) {
	c, rw := testClient(roleSub, 2)
	c.onData(publishStream(3, 2, 0))
	var rel []byte
	for id := uint16(1); id <= 3; id++ {
		rel = packets.Encode(rel, &packets.Packet{Type: packets.Pubrel, PacketID: id}, packets.V311)
	}
	c.onData(rel)
	var types []packets.Type
	for _, p := range rw.packets(t) {
		types = append(types, p.Type)
	}
	want := []packets.Type{packets.Pubrec, packets.Pubrec, packets.Pubrec, packets.Pubcomp, packets.Pubcomp, packets.Pubcomp}
	if len(types) != len(want) {
		t.Fatalf("replies %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("replies %v, want %v", types, want)
		}
	}
}

func TestConnackThenSubscribe(t *testing.T) {
	c, rw := testClient(roleSub, 1)
	ph := &connectPhase{slot: make(chan struct{}, 1), done: make(chan struct{})}
	ph.slot <- struct{}{}
	ph.left.Store(1)
	c.phase = ph
	c.state.Store(stConnecting)
	c.dialAt.Store(time.Now().UnixNano())
	c.onData(packets.Encode(nil, &packets.Packet{Type: packets.Connack}, packets.V311))
	sent := rw.packets(t)
	if c.state.Load() != stSubscribing || len(sent) != 1 || sent[0].Type != packets.Subscribe {
		t.Fatalf("after CONNACK: state %d, sent %v", c.state.Load(), sent)
	}
	if f := sent[0].Filters; len(f) != 1 || string(f[0].Filter) != "bench/p2p/1" || f[0].QoS != 1 {
		t.Fatalf("SUBSCRIBE filters %+v", f)
	}
	c.onData(packets.Encode(nil, &packets.Packet{Type: packets.Suback, PacketID: 1, ReasonCodes: []byte{1}}, packets.V311))
	select {
	case <-ph.done:
	default:
		t.Fatal("phase not resolved after SUBACK")
	}
	if c.state.Load() != stReady || c.shard.connected.Load() != 1 || c.shard.subscribed.Load() != 1 {
		t.Fatalf("state %d connected %d subscribed %d", c.state.Load(), c.shard.connected.Load(), c.shard.subscribed.Load())
	}
}

func TestRefusedConnackIsAFailureByReason(t *testing.T) {
	c, _ := testClient(roleConn, 0)
	ph := &connectPhase{slot: make(chan struct{}, 1), done: make(chan struct{})}
	ph.slot <- struct{}{}
	ph.left.Store(1)
	c.phase = ph
	c.state.Store(stConnecting)
	c.onData(packets.Encode(nil, &packets.Packet{Type: packets.Connack, ReasonCode: packets.V3NotAuthorized}, packets.V311))
	if c.state.Load() != stFailed || c.shard.connFailed.Load() != 1 {
		t.Fatalf("state %d failed %d", c.state.Load(), c.shard.connFailed.Load())
	}
	if n := c.w.failures["CONNACK refused: not authorized (5)"]; n != 1 {
		t.Fatalf("failures %v", c.w.failures)
	}
	select {
	case <-ph.done:
	default:
		t.Fatal("phase not resolved")
	}
}

func TestStrayMessagesOfEarlierRuns(t *testing.T) {
	c, _ := testClient(roleSub, 0)
	c.w.tagged, c.w.opts.RunTag = true, 7
	mine := make([]byte, 16)
	binary.LittleEndian.PutUint64(mine[8:], 7)
	other := make([]byte, 16)
	binary.LittleEndian.PutUint64(other[8:], 8)
	var b []byte
	for _, pl := range [][]byte{mine, other, other, mine} {
		b = packets.Encode(b, &packets.Packet{Type: packets.Publish, Topic: []byte("t"), Payload: pl}, packets.V311)
	}
	c.onData(b)
	if c.shard.recv.Load() != 2 || c.shard.strays.Load() != 2 || c.shard.lat.Snapshot().Total != 2 {
		t.Fatalf("recv %d strays %d", c.shard.recv.Load(), c.shard.strays.Load())
	}
}

func TestPublisherWindow(t *testing.T) {
	c, rw := testClient(rolePub, 1)
	c.w.opts.Inflight = 5
	c.topic, c.payload = []byte("t/1"), make([]byte, 16)
	if n := c.publish(8); n != 5 {
		t.Fatalf("published %d into a window of 5", n)
	}
	if n := c.publish(1); n != 0 {
		t.Fatalf("published %d into a full window", n)
	}
	var acks []byte
	for id := uint16(1); id <= 2; id++ {
		acks = packets.Encode(acks, &packets.Packet{Type: packets.Puback, PacketID: id}, packets.V311)
	}
	c.onData(acks)
	if n := c.publish(8); n != 2 {
		t.Fatalf("published %d after 2 acks", n)
	}
	ids := map[uint16]bool{}
	for _, p := range rw.packets(t) {
		if ids[p.PacketID] {
			t.Fatalf("packet ID %d reused while in flight", p.PacketID)
		}
		ids[p.PacketID] = true
	}
	if c.shard.sent.Load() != 7 || c.shard.acked.Load() != 2 {
		t.Fatalf("sent %d acked %d", c.shard.sent.Load(), c.shard.acked.Load())
	}
}

func TestReceiveDoesNotAllocate(t *testing.T) {
	c, _ := testClient(roleSub, 0)
	stream := publishStream(32, 0, 0)
	if n := testing.AllocsPerRun(200, func() { c.onData(stream) }); n != 0 {
		t.Fatalf("receiving a batch of QoS 0 publishes allocates %v times", n)
	}
}
