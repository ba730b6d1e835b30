package broker

import (
	"context"
	"errors"
	"testing"

	"github.com/coolpy7/coolpy7/packets"
)

// An observer receives what is published, retained first, costs no
// session, and receives nothing once closed.
func TestObserverAndPublish(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	if _, err := s.Publish(ctx, PublishRequest{Topic: "o/kept", Payload: []byte("r"), Retain: true}); err != nil {
		t.Fatal(err)
	}
	var got []ObservedMessage
	o, err := s.Observe("o/#", func(m ObservedMessage) bool {
		if len(got) == 3 {
			return false // full: the broker counts a drop
		}
		got = append(got, m)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"one", "two", "three"} {
		if n, err := s.Publish(ctx, PublishRequest{Topic: "o/x", Payload: []byte(p), QoS: 1}); err != nil || n != 1 {
			t.Fatalf("routed %d: %v", n, err)
		}
	}
	if len(got) != 3 || got[0].Topic != "o/kept" || !got[0].Retain || string(got[1].Payload) != "one" || string(got[2].Payload) != "two" {
		t.Fatalf("got %+v", got)
	}
	st := s.Stats()
	if st.Sessions != 0 || st.ObserverDrops != 1 || st.Subscriptions != 1 || st.MessagesIn[1] != 3 {
		t.Fatalf("stats %+v", st)
	}
	if tops := s.Topics(); len(tops) != 1 || tops[0].Filter != "o/#" {
		t.Fatalf("topics %+v", tops)
	}
	o.Close()
	o.Close()
	if n, _ := s.Publish(ctx, PublishRequest{Topic: "o/x", Payload: []byte("after")}); n != 0 || len(got) != 3 || s.Observers() != 0 {
		t.Fatalf("after close: routed %d, %d messages", n, len(got))
	}
	for _, c := range []struct {
		r    PublishRequest
		want error
	}{
		{PublishRequest{Topic: "a/+"}, ErrInvalidTopic},
		{PublishRequest{Topic: ""}, ErrInvalidTopic},
		{PublishRequest{Topic: "$SYS/x"}, ErrSysTopic},
		{PublishRequest{Topic: "a", QoS: 3}, ErrInvalidQoS},
	} {
		if _, err := s.Publish(ctx, c.r); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.r, err, c.want)
		}
	}
}

// Kick tells a v5 client why (0x98) and leaves a persistent session.
func TestKick(t *testing.T) {
	s := newTestServer(t)
	conn := &fakeConn{}
	st := open(s, conn)
	c := connectPkt("k")
	c.Connect.Level = packets.V5
	c.Connect.CleanStart = false
	c.Props.SessionExpiry = 60
	c.Props.Set(packets.PropSessionExpiry)
	s.Data(st, encode(packets.V5, c))
	if !s.Kick("k") {
		t.Fatal("not kicked")
	}
	out := conn.packetsOut(t, packets.V5)
	last := out[len(out)-1]
	if last.Type != packets.Disconnect || last.ReasonCode != packets.AdministrativeAction {
		t.Fatalf("last packet %v %#x", last.Type, last.ReasonCode)
	}
	if ci, ok := s.Client("k"); !ok || ci.Connected {
		t.Fatalf("session %+v %v", ci, ok)
	}
	if s.Kick("k") || s.Kick("nobody") {
		t.Fatal("kicked what is not connected")
	}
	if s.stats.protocolErrors.Load() != 0 {
		t.Fatal("a kick counted as a protocol error")
	}
}
