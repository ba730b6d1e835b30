package broker

import (
	"testing"
	"unsafe"
)

// TestClientSize keeps an eye on what every connection pays: the client
// was 128 bytes before authentication's guard pointer made it 136, which
// the allocator rounds to 144 (BENCHMARKS.md, issue 6). Growing past 144
// costs another 16 bytes per connection.
func TestClientSize(t *testing.T) {
	if n := unsafe.Sizeof(client{}); n > 144 {
		t.Errorf("client is %d bytes, past the 144-byte size class", n)
	}
}
