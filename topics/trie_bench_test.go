package topics

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	bigTrieDevices = 1_000_000
	benchTopics    = 1 << 12
)

// bigTrie holds one "device/{n}/+/state" subscription for each of a
// million devices, plus wildcard subscriptions matching every device
// topic: 10 on "device/+/+/state", 5 on "device/#" and 2 on "#".
var bigTrie = sync.OnceValues(func() (*Trie[*sess], []string) {
	tr := NewTrie[*sess]()
	subs := newSessions(bigTrieDevices)
	for i, s := range subs {
		tr.Subscribe(fmt.Sprintf("device/%d/+/state", i), s, Options{QoS: 1})
	}
	for i, s := range subs[:10] {
		tr.Subscribe("device/+/+/state", s, Options{QoS: 0, ID: uint32(i + 1)})
	}
	for _, s := range subs[10:15] {
		tr.Subscribe("device/#", s, Options{QoS: 2})
	}
	for _, s := range subs[15:17] {
		tr.Subscribe("#", s, Options{})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	topics := make([]string, benchTopics)
	for i := range topics {
		topics[i] = fmt.Sprintf("device/%d/sensor/state", rng.IntN(bigTrieDevices))
	}
	// Finish the collections the build started, which would otherwise run
	// on the benchmarks' time.
	runtime.GC()
	return tr, topics
})

// BenchmarkMatch1M matches random device topics against bigTrie; each
// topic matches 18 subscriptions of 18 subscribers, some merged.
func BenchmarkMatch1M(b *testing.B) {
	tr, topics := bigTrie()
	var r Result[*sess]
	tr.Match(topics[0], nil, &r) // grow r before measuring
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tr.Match(topics[i&(benchTopics-1)], nil, &r)
		i++
	}
	if len(r.Subs) != 18 {
		b.Fatalf("matched %d subscribers, want 18", len(r.Subs))
	}
}

// BenchmarkMatch1MParallel is BenchmarkMatch1M on every CPU at once.
func BenchmarkMatch1MParallel(b *testing.B) {
	tr, topics := bigTrie()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var r Result[*sess]
		i := rand.IntN(benchTopics)
		for pb.Next() {
			tr.Match(topics[i&(benchTopics-1)], nil, &r)
			i++
		}
	})
}

// BenchmarkMatch1MWhileWriting is BenchmarkMatch1MParallel while another
// goroutine subscribes and unsubscribes devices as fast as it can.
func BenchmarkMatch1MWhileWriting(b *testing.B) {
	tr, topics := bigTrie()
	subs := newSessions(1024)
	filters := make([]string, len(subs))
	for i := range filters {
		filters[i] = fmt.Sprintf("device/%d/+/state", bigTrieDevices+i)
	}
	var stop atomic.Bool
	var writes atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			for i, s := range subs {
				tr.Subscribe(filters[i], s, Options{})
			}
			for i, s := range subs {
				tr.Unsubscribe(filters[i], s)
			}
			writes.Add(int64(2 * len(subs)))
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var r Result[*sess]
		i := rand.IntN(benchTopics)
		for pb.Next() {
			tr.Match(topics[i&(benchTopics-1)], nil, &r)
			i++
		}
	})
	b.StopTimer()
	stop.Store(true)
	<-done
	b.ReportMetric(float64(writes.Load())/b.Elapsed().Seconds(), "writes/s")
}

func fanoutTrie(overlap bool) *Trie[*sess] {
	tr := NewTrie[*sess]()
	for i, s := range newSessions(1000) {
		tr.Subscribe("hot/topic", s, Options{QoS: 1})
		if overlap {
			tr.Subscribe("hot/#", s, Options{QoS: 2, ID: uint32(i + 1)})
		}
	}
	return tr
}

// BenchmarkMatchFanout1000 matches a topic with 1,000 subscribers.
func BenchmarkMatchFanout1000(b *testing.B) {
	tr := fanoutTrie(false)
	var r Result[*sess]
	tr.Match("hot/topic", nil, &r) // grow r before measuring
	b.ReportAllocs()
	for b.Loop() {
		tr.Match("hot/topic", nil, &r)
	}
	if len(r.Subs) != 1000 {
		b.Fatalf("matched %d subscribers", len(r.Subs))
	}
}

// BenchmarkMatchFanout1000Overlap is BenchmarkMatchFanout1000 with every
// subscriber also on "hot/#" with an identifier, so all 1,000 merge.
func BenchmarkMatchFanout1000Overlap(b *testing.B) {
	tr := fanoutTrie(true)
	var r Result[*sess]
	tr.Match("hot/topic", nil, &r) // grow r before measuring
	b.ReportAllocs()
	for b.Loop() {
		tr.Match("hot/topic", nil, &r)
	}
	if len(r.Subs) != 1000 || len(r.Subs[999].IDs) != 1 {
		b.Fatalf("matched %d subscribers", len(r.Subs))
	}
}

// benchFilters returns n unique "bench/{i}" filters and n subscribers.
func benchFilters(n int) ([]string, []*sess) {
	filters := make([]string, n)
	for i := range filters {
		filters[i] = fmt.Sprintf("bench/%d", i)
	}
	return filters, newSessions(n)
}

// BenchmarkSubscribe adds unique subscriptions, each client on its own
// topic, to one node that grows to up to a million children.
func BenchmarkSubscribe(b *testing.B) {
	filters, subs := benchFilters(1 << 20)
	tr := NewTrie[*sess]()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(filters) {
			b.StopTimer()
			tr, i = NewTrie[*sess](), 0
			b.StartTimer()
		}
		tr.Subscribe(filters[i], subs[i], Options{QoS: 1})
		i++
	}
}

// BenchmarkSubscribeOneFilter adds subscribers to one filter, which grows
// to up to a million of them.
func BenchmarkSubscribeOneFilter(b *testing.B) {
	subs := newSessions(1 << 20)
	tr := NewTrie[*sess]()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(subs) {
			b.StopTimer()
			tr, i = NewTrie[*sess](), 0
			b.StartTimer()
		}
		tr.Subscribe("broadcast/all", subs[i], Options{QoS: 1})
		i++
	}
}

// BenchmarkUnsubscribe removes the subscriptions BenchmarkSubscribe adds,
// pruning each leaf and shrinking the wide node as it empties.
func BenchmarkUnsubscribe(b *testing.B) {
	filters, subs := benchFilters(1 << 20)
	tr := NewTrie[*sess]()
	b.ReportAllocs()
	i := len(filters)
	for b.Loop() {
		if i == len(filters) {
			b.StopTimer()
			for j, f := range filters {
				tr.Subscribe(f, subs[j], Options{})
			}
			i = 0
			b.StartTimer()
		}
		tr.Unsubscribe(filters[i], subs[i])
		i++
	}
}
