package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/packets"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Durability{"durable": Durable, "": Durable, "100ms": Interval(100 * time.Millisecond)} {
		if got, err := ParseDurability(in); err != nil || got != want {
			t.Errorf("ParseDurability(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"0s", "-1s", "fast"} {
		if _, err := ParseDurability(bad); err == nil {
			t.Errorf("ParseDurability(%q) succeeded", bad)
		}
	}
	if d := Interval(0); d != Durable || d.String() != "durable" || Interval(time.Second).String() != "1s" {
		t.Error("Interval(0) is not Durable")
	}
	for _, p := range []Policy{DropOldest, RefuseNewest} {
		if got, err := ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParsePolicy("drop-newest"); err == nil {
		t.Error("ParsePolicy accepted drop-newest")
	}
}

func TestPending(t *testing.T) {
	var zero Pending
	called := false
	zero.OnDone(func(err error) { called = err == nil })
	if !called || zero.Err() != nil || zero.Wait(context.Background()) != nil {
		t.Fatal("the zero Pending is not complete")
	}

	g := NewGroup()
	p := g.Pending()
	got := make(chan error, 2)
	p.OnDone(func(err error) { got <- err })
	select {
	case <-p.Done():
		t.Fatal("done before Finish")
	default:
	}
	if p.Err() != nil {
		t.Fatal("an error before Finish")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait before Finish: %v", err)
	}
	boom := errors.New("boom")
	g.Finish(boom)
	p.OnDone(func(err error) { got <- err }) // after Finish: runs at once
	if a, b := <-got, <-got; a != boom || b != boom || p.Err() != boom || p.Wait(context.Background()) != boom {
		t.Fatalf("outcomes %v %v %v", a, b, p.Err())
	}
}

func TestSize(t *testing.T) {
	m := &Message{Topic: "abc", Payload: []byte("12345"), Props: &packets.Properties{
		ContentType: []byte("ct"), SubscriptionIDs: []uint32{1, 2},
		User: []packets.UserProperty{{Key: []byte("k"), Value: []byte("vv")}},
	}}
	if n := m.Size(); n != 3+5+2+8+3 {
		t.Fatalf("Size %d", n)
	}
	now := time.Now()
	if m.Expired(now) {
		t.Fatal("a message without expiry expired")
	}
	m.Expires = now
	if !m.Expired(now) || m.Expired(now.Add(-time.Nanosecond)) {
		t.Fatal("expiry is not at Expires")
	}
}
