package persist

import (
	"fmt"
	"testing"
	"time"
)

// A persistent session's queue is bounded by count (-mq) and bytes (-mqb);
// when full, the policy (-qp) drops the oldest or refuses the newest, and
// the drops show in $SYS.
func TestQueueBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []int // message numbers the subscriber gets, of 0..9
	}{
		{"refuse-newest", []string{"-mq", "4"}, []int{0, 1, 2, 3}},
		{"drop-oldest", []string{"-mq", "4", "-qp", "drop-oldest"}, []int{6, 7, 8, 9}},
		// Each message is 3 (topic) + 5 (payload) = 8 bytes.
		{"bytes", []string{"-mqb", "24", "-qp", "drop-oldest"}, []int{7, 8, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := start(t, t.TempDir(), tc.args...)
			sub, _ := connect3(t, b.addr, "bounded", false)
			sub.subscribe(t, "b/q", 1)
			sub.Disconnect(100)
			// The DISCONNECT may be handled on another event loop than
			// the publisher's first PUBLISH; a message that finds the
			// subscriber still connected goes into flight, not the queue.
			waitConnected(t, b.addr, 0)
			pub, _ := connect3(t, b.addr, "bounds-pub", true)
			for i := range 10 {
				pub.publish(t, "b/q", 1, false, fmt.Sprintf("m%04d", i))
			}
			if d := sysValue(t, b.addr, "$SYS/broker/store/dropped"); d != int64(10-len(tc.want)) {
				t.Errorf("$SYS/broker/store/dropped = %d, want %d", d, 10-len(tc.want))
			}
			if d := sysValue(t, b.addr, "$SYS/broker/messages/dropped"); d != int64(10-len(tc.want)) {
				t.Errorf("$SYS/broker/messages/dropped = %d, want %d", d, 10-len(tc.want))
			}
			sub, _ = connect3(t, b.addr, "bounded", false)
			for _, w := range tc.want {
				if m := sub.next(t, fmt.Sprintf("m%04d", w)); string(m.Payload()) != fmt.Sprintf("m%04d", w) {
					t.Fatalf("got %s, want m%04d", m.Payload(), w)
				}
			}
			sub.none(t, 500*time.Millisecond, "a message past the bound")
		})
	}
}
