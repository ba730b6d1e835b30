package broker

import (
	"testing"
	"unsafe"
)

// TestClientSize keeps an eye on what every connection pays: the client
// fits the allocator's 128-byte size class (authentication's guard pointer
// took it to 136, so 144 allocated, until the two clock ticks shrank to 32
// bits). Growing past 128 costs 16 bytes per connection.
func TestClientSize(t *testing.T) {
	if n := unsafe.Sizeof(client{}); n > 128 {
		t.Errorf("client is %d bytes, past the 128-byte size class", n)
	}
}

func TestSince(t *testing.T) {
	for _, tc := range []struct{ now, tick int64 }{
		{0, 0}, {100, 40}, {1<<32 + 5, 1<<32 - 3}, {3<<32 + 7, 3<<32 + 7}, {5 << 32, 5<<32 - 1<<31},
	} {
		if got := since(tc.now, uint32(tc.tick)); got != tc.tick {
			t.Errorf("since(%d, low bits of %d) = %d", tc.now, tc.tick, got)
		}
	}
}
