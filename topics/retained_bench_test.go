package topics

import (
	"fmt"
	"testing"
)

// BenchmarkRetainedMatch matches filters against 100,000 retained topics
// "building/{0-9}/floor/{0-99}/room/{0-99}".
func BenchmarkRetainedMatch(b *testing.B) {
	r := NewRetained[int]()
	for i := range 100_000 {
		r.Set(fmt.Sprintf("building/%d/floor/%d/room/%d", i/10_000, i/100%100, i%100), i)
	}
	for _, bc := range []struct {
		filter string
		want   int
	}{
		{"building/3/floor/5/room/17", 1},
		{"building/3/floor/+/room/42", 100},
		{"building/+/floor/7/#", 1000},
		{"+/+/+/+/room/5", 1000},
		{"building/3/#", 10_000},
	} {
		b.Run(bc.filter, func(b *testing.B) {
			n := 0
			visit := func(string, int) bool { n++; return true }
			b.ReportAllocs()
			for b.Loop() {
				n = 0
				r.Match(bc.filter, visit)
			}
			if n != bc.want {
				b.Fatalf("matched %d, want %d", n, bc.want)
			}
			b.ReportMetric(float64(n), "matches/op")
		})
	}
}
