package loadgen

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestBucketsCoverValuesInOrder(t *testing.T) {
	prevHi := int64(-1)
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: [%d, %d]", i, lo, hi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d] maps back to %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		// Log-linear precision: a bucket is at most 1/subCount of its values.
		if lo >= 2*subCount && float64(hi-lo+1)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, subCount)
		}
		prevHi = hi
	}
	if prevHi != maxValue {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, int64(maxValue))
	}
}

func TestRecordClampsOutOfRange(t *testing.T) {
	h := NewHistogram()
	h.Record(-5)
	h.Record(math.MaxInt64)
	d := h.Snapshot()
	if d.Total != 2 || d.Counts[0] != 1 || d.Counts[numBuckets-1] != 1 {
		t.Fatalf("total %d, first bucket %d, last bucket %d", d.Total, d.Counts[0], d.Counts[numBuckets-1])
	}
	if d.Min != 0 || d.Max != math.MaxInt64 {
		t.Fatalf("min %d max %d", d.Min, d.Max)
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	vals := make([]int64, 100000)
	for i := range vals {
		// Latency-like: log-normal around a millisecond, with a long tail.
		v := int64(math.Exp(rng.NormFloat64()*1.5) * 1e6)
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	d := h.Snapshot()
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := d.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("q%.3f = %d, exact %d: off by more than 1/%d", q, got, exact, subCount)
		}
	}
	if d.Min != vals[0] || d.Max != vals[len(vals)-1] {
		t.Errorf("min %d max %d, want %d %d", d.Min, d.Max, vals[0], vals[len(vals)-1])
	}
	var sum int64
	for _, v := range vals {
		sum += v
	}
	if want := float64(sum) / float64(len(vals)); math.Abs(d.Mean()-want) > 1e-6*want {
		t.Errorf("mean %f, want %f", d.Mean(), want)
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	d := h.Snapshot()
	if got := d.Quantile(0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := d.Quantile(0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
}

func TestEmptyDist(t *testing.T) {
	d := NewHistogram().Snapshot()
	if d.Quantile(0.99) != 0 || d.Mean() != 0 || d.Min != 0 || d.Max != 0 {
		t.Fatalf("empty histogram: p99 %d mean %f min %d max %d", d.Quantile(0.99), d.Mean(), d.Min, d.Max)
	}
	var nilDist *Dist
	if nilDist.Quantile(0.5) != 0 {
		t.Fatal("nil Dist quantile")
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := int64(0); i < 5000; i++ {
		v := i * i
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
		all.Record(v)
	}
	m := &Dist{}
	m.Merge(a.Snapshot())
	m.Merge(b.Snapshot())
	m.Merge(nil)
	want := all.Snapshot()
	if !slices.Equal(m.Counts, want.Counts) || m.Total != want.Total || m.Sum != want.Sum || m.Min != want.Min || m.Max != want.Max {
		t.Fatalf("merged %+v differs from recorded together", [4]int64{int64(m.Total), m.Min, m.Max, int64(m.Sum)})
	}
	added := &Dist{}
	added.add(a)
	added.add(NewHistogram())
	added.add(b)
	if !slices.Equal(added.Counts, want.Counts) || added.Total != want.Total || added.Sum != want.Sum || added.Min != want.Min || added.Max != want.Max {
		t.Fatalf("added %+v differs from recorded together", [4]int64{int64(added.Total), added.Min, added.Max, int64(added.Sum)})
	}
}

func TestSinceIsTheInterval(t *testing.T) {
	h := NewHistogram()
	for range 1000 {
		h.Record(1000) // 1 µs
	}
	prev := h.Snapshot()
	for range 100 {
		h.Record(5_000_000) // 5 ms
	}
	iv := h.Snapshot().Since(prev)
	if iv.Total != 100 {
		t.Fatalf("interval total %d, want 100", iv.Total)
	}
	if p := iv.Quantile(0.5); p < 5_000_000 || p > 5_000_000+5_000_000/subCount {
		t.Fatalf("interval p50 %d, want about 5ms", p)
	}
	if iv.Min < 4_900_000 {
		t.Fatalf("interval min %d includes the earlier samples", iv.Min)
	}
	if empty := prev.Since(prev); empty.Total != 0 || empty.Quantile(0.99) != 0 {
		t.Fatalf("no new samples: %+v", empty.Total)
	}
}

func TestDistJSONRoundTrip(t *testing.T) {
	h := NewHistogram()
	for _, v := range []int64{3, 300, 3e5, 3e8, 3e8} {
		h.Record(v)
	}
	d := h.Snapshot()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 200 {
		t.Errorf("sparse JSON of 4 buckets is %d bytes", len(b))
	}
	var back Dist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Counts, d.Counts) || back.Total != d.Total || back.Sum != d.Sum || back.Min != d.Min || back.Max != d.Max {
		t.Fatalf("round trip changed the distribution: %s", b)
	}
}

func TestConcurrentRecording(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	const goroutines, each = 4, 10000
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				h.Record(int64(g*each + i))
			}
		})
	}
	// Snapshots taken while recording must not race or go backwards.
	var last uint64
	for range 10 {
		d := h.Snapshot()
		if d.Total < last {
			t.Fatalf("total went from %d to %d", last, d.Total)
		}
		last = d.Total
	}
	wg.Wait()
	d := h.Snapshot()
	if d.Total != goroutines*each || d.Min != 0 || d.Max != goroutines*each-1 {
		t.Fatalf("total %d min %d max %d", d.Total, d.Min, d.Max)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := NewHistogram()
	v := int64(1)
	if n := testing.AllocsPerRun(1000, func() { h.Record(v); v = v*3 + 7 }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	h := NewHistogram()
	b.RunParallel(func(pb *testing.PB) {
		v := int64(12345)
		for pb.Next() {
			h.Record(v)
			v = (v*7 + 1) & (1<<30 - 1)
		}
	})
}
