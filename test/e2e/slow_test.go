package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/config"
)

// A subscriber that stops reading must not stall the publisher or the
// other subscribers, and after io_timeout it is disconnected. The write
// budget is set above the whole flood so that a reader slowed by the race
// detector loses nothing to the QoS 0 drop policy, which is not what this
// test is about.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, func(c *config.Config) {
		c.MaxWriteBuffer = 32 << 20
		c.IOTimeout = 1
	})
	slow := dialHandshake(t, addr, false, uniqueID("slow"))
	slow.send(subscribePkt(false, 1, "flood/#", 0, nil))
	slow.expectType(0x90, "SUBACK")

	fast := dialHandshake(t, addr, false, uniqueID("fast"))
	fast.send(subscribePkt(false, 1, "flood/#", 0, nil))
	fast.expectType(0x90, "SUBACK")

	const n = 3000
	payload := strings.Repeat("x", 4096) // 12 MB in all: far past any socket buffer
	got := make(chan int, 1)
	go func() {
		count := 0
		for count < n {
			p, err := fast.read(5 * time.Second)
			if err != nil {
				break
			}
			if p.Type() == 3 {
				count++
			}
		}
		got <- count
	}()

	pub := dialHandshake(t, addr, false, uniqueID("pub"))
	start := time.Now()
	for i := 0; i < n; i++ {
		pub.send(publishPkt(false, "flood/x", 0, false, 0, nil, payload))
	}
	pub.send(pingreq)
	pub.expect(pingresp, "PINGRESP after the flood")
	if c := recv(t, got, 15*time.Second, "fast subscriber's count"); c != n {
		t.Fatalf("fast subscriber got %d of %d messages while another subscriber stalled", c, n)
	}
	t.Logf("%d messages of 4 KB to the fast subscriber in %v", n, time.Since(start).Round(time.Millisecond))
	// The stalled subscriber is dropped after io_timeout (1 s). Reading
	// before then would unstall it, so wait, then drain what fitted in the
	// socket buffers: the stream must end in a close.
	time.Sleep(2500 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := slow.read(time.Until(deadline))
		if err == nil {
			continue
		}
		if !isClosed(err) {
			t.Fatalf("stalled subscriber still connected after io_timeout: %v", err)
		}
		break
	}
}
