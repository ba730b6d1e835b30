package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
)

// heldStore completes no Commit until the test says so, standing in for a
// disk whose fsync has not returned.
type heldStore struct {
	store.Store
	g *store.Group
}

func (h *heldStore) Commit() store.Pending { return h.g.Pending() }

func acks(t *testing.T, c *fakeConn) (puback, pubrec []uint16) {
	for _, p := range c.packetsOut(t, packets.V311) {
		switch p.Type {
		case packets.Puback:
			puback = append(puback, p.PacketID)
		case packets.Pubrec:
			pubrec = append(pubrec, p.PacketID)
		}
	}
	return puback, pubrec
}

// A QoS 1/2 PUBLISH that had to be stored (for a persistent session, or
// retained) is acknowledged only once the store's commit completes; one
// for clean sessions only is acknowledged at once, and the store is not
// written for it.
func TestAckAfterCommit(t *testing.T) {
	s := newTestServer(t)
	held := &heldStore{Store: s.store, g: store.NewGroup()}
	s.store = held

	clean := connectPkt("clean-sub")
	s.Data(open(s, &fakeConn{discard: true}), encode(packets.V311, clean, subscribePkt(1, "clean/t", 1)))
	durable := connectPkt("durable-sub")
	durable.Connect.CleanStart = false
	durSt := open(s, &fakeConn{discard: true})
	s.Data(durSt, encode(packets.V311, durable, subscribePkt(1, "durable/t", 2)))
	s.Data(durSt, encode(packets.V311, &packets.Packet{Type: packets.Disconnect}))

	pubConn := &fakeConn{}
	pub := open(s, pubConn)
	s.Data(pub, encode(packets.V311, connectPkt("publisher"),
		&packets.Packet{Type: packets.Publish, QoS: 1, PacketID: 1, Topic: []byte("clean/t"), Payload: []byte("a")},
		&packets.Packet{Type: packets.Publish, QoS: 1, PacketID: 2, Topic: []byte("durable/t"), Payload: []byte("b")},
		&packets.Packet{Type: packets.Publish, QoS: 2, PacketID: 3, Topic: []byte("durable/t"), Payload: []byte("c")},
		&packets.Packet{Type: packets.Publish, QoS: 1, PacketID: 4, Topic: []byte("retained/t"), Payload: []byte("d"), Retain: true},
	))
	if puback, pubrec := acks(t, pubConn); len(puback) != 1 || puback[0] != 1 || len(pubrec) != 0 {
		t.Fatalf("before the commit: PUBACK %v PUBREC %v, want only PUBACK 1 (the clean-only message)", puback, pubrec)
	}
	if n, _, _ := s.store.Queues().Len("clean-sub"); n != 0 {
		t.Fatalf("a clean session's message reached the store (%d queued)", n)
	}
	if n, _, _ := s.store.Queues().Len("durable-sub"); n != 2 {
		t.Fatalf("persistent session has %d messages queued in the store, want 2", n)
	}
	held.g.Finish(nil)
	if puback, pubrec := acks(t, pubConn); len(puback) != 3 || puback[1] != 2 || puback[2] != 4 || len(pubrec) != 1 || pubrec[0] != 3 {
		t.Fatalf("after the commit: PUBACK %v PUBREC %v, want PUBACK 1 2 4 and PUBREC 3", puback, pubrec)
	}
}

// A failed commit leaves the message unacknowledged and closes the
// publisher's connection, so that it sends the message again.
func TestFailedCommitClosesUnacknowledged(t *testing.T) {
	s := newTestServer(t)
	held := &heldStore{Store: s.store, g: store.NewGroup()}
	s.store = held
	durable := connectPkt("durable-sub")
	durable.Connect.CleanStart = false
	s.Data(open(s, &fakeConn{discard: true}), encode(packets.V311, durable, subscribePkt(1, "durable/t", 1)))

	pubConn := &fakeConn{}
	pub := open(s, pubConn)
	s.Data(pub, encode(packets.V311, connectPkt("publisher"),
		&packets.Packet{Type: packets.Publish, QoS: 1, PacketID: 9, Topic: []byte("durable/t"), Payload: []byte("x")}))
	held.g.Finish(store.ErrClosed)
	if puback, _ := acks(t, pubConn); len(puback) != 0 {
		t.Fatalf("PUBACK %v after a failed commit", puback)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pubConn.mu.Lock()
		closed := pubConn.closed
		pubConn.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("publisher's connection left open after a failed commit")
		}
		time.Sleep(time.Millisecond)
	}
}

// failingQueues refuses every Append, as a full or broken disk would.
type failingQueues struct{ store.Queues }

func (failingQueues) Append(string, *store.Message) (uint64, int, error) {
	return 0, 0, errors.New("disk full")
}

type failingStore struct{ store.Store }

func (f failingStore) Queues() store.Queues { return failingQueues{f.Store.Queues()} }

// A PUBLISH whose store write failed is not acknowledged: the connection
// closes so that the publisher sends it again, and at QoS 2 its packet ID
// is forgotten so that the resent message is routed.
func TestFailedWriteNotAcknowledged(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprint("qos", qos), func(t *testing.T) {
			s := newTestServer(t)
			s.store = failingStore{s.store}
			durable := connectPkt("offline-sub")
			durable.Connect.CleanStart = false
			st := open(s, &fakeConn{discard: true})
			s.Data(st, encode(packets.V311, durable, subscribePkt(1, "durable/t", 2),
				&packets.Packet{Type: packets.Disconnect}))

			pubConn := &fakeConn{}
			pub := connectPkt("failing-pub")
			pub.Connect.CleanStart = false
			s.Data(open(s, pubConn), encode(packets.V311, pub,
				&packets.Packet{Type: packets.Publish, QoS: qos, PacketID: 5, Topic: []byte("durable/t"), Payload: []byte("x")}))
			if puback, pubrec := acks(t, pubConn); len(puback)+len(pubrec) != 0 {
				t.Fatalf("acknowledged a message the store failed to write: PUBACK %v PUBREC %v", puback, pubrec)
			}
			pubConn.mu.Lock()
			closed := pubConn.closed
			pubConn.mu.Unlock()
			if !closed {
				t.Fatal("connection left open after a failed write")
			}
			sess := s.sessions["failing-pub"]
			sess.mu.Lock()
			defer sess.mu.Unlock()
			if f := sess.flow; f != nil && len(f.inbound2) > 0 {
				t.Fatalf("packet ID still marked received: %v", f.inbound2)
			}
		})
	}
}
