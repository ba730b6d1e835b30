package e2e

import (
	"fmt"
	"testing"
)

// Deliveries made while one read is handled are staged and flushed once
// at its end, and direct writes (the publisher's PUBACKs) go behind staged
// bytes: a publisher subscribed to its own topic that sends a burst of QoS
// 1 messages in one write sees each PUBLISH before its PUBACK, in order,
// and another subscriber gets the whole burst in order.
func TestBurstKeepsWireOrder(t *testing.T) {
	t.Parallel()
	addr := startBroker(t, nil)
	other := dialHandshake(t, addr, false, uniqueID("burstsub"))
	other.send(subscribePkt(false, 1, "burst/#", 1, nil))
	other.expect([]byte{0x90, 0x03, 0x00, 0x01, 0x01}, "SUBACK")
	self := dialHandshake(t, addr, false, uniqueID("burstself"))
	self.send(subscribePkt(false, 1, "burst/#", 1, nil))
	self.expect([]byte{0x90, 0x03, 0x00, 0x01, 0x01}, "SUBACK")

	const n = 50
	var burst [][]byte
	for i := 1; i <= n; i++ {
		burst = append(burst, publishPkt(false, "burst/x", 1, false, uint16(i), nil, fmt.Sprint(i)))
	}
	self.send(burst...)
	for i := 1; i <= n; i++ {
		m := mustDecode(t, self.next("own PUBLISH"), false)
		if m.Payload != fmt.Sprint(i) {
			t.Fatalf("publisher got message %q, want %d", m.Payload, i)
		}
		self.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})
		self.expect([]byte{0x40, 0x02, 0x00, byte(i)}, fmt.Sprintf("PUBACK %d right after its own delivery", i))
	}
	for i := 1; i <= n; i++ {
		m := mustDecode(t, other.next("PUBLISH"), false)
		if m.Payload != fmt.Sprint(i) {
			t.Fatalf("subscriber got message %q, want %d", m.Payload, i)
		}
		other.send([]byte{0x40, 0x02, byte(m.PID >> 8), byte(m.PID)})
	}
	other.send(pingreq)
	other.expect(pingresp, "PINGRESP and no duplicate")
}
