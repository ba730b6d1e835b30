package loadgen

import (
	"encoding/json"
	"math"
	"math/bits"
	"sync/atomic"
)

// The histogram is log-linear, as HdrHistogram's: each power-of-two range of
// values is cut into subCount equal sub-buckets, so every recorded value is
// known to within 1/subCount (0.8%) of itself, from nanoseconds to an hour,
// in a fixed array that recording never grows.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxBits bounds trackable values to 2^42 ns (73 minutes); anything
	// larger is clamped into the last bucket rather than widening the array.
	maxBits    = 42
	maxValue   = 1<<maxBits - 1
	numBuckets = (maxBits-subBits)*subCount + subCount
)

// bucketOf maps a value to its bucket. Values below 2*subCount get a bucket
// each; above that, bucket = e*subCount + (v >> e) where e drops the bits that
// a sub-bucket no longer distinguishes.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	u := uint64(v)
	if u < 2*subCount {
		return int(u)
	}
	e := bits.Len64(u) - subBits - 1
	return e*subCount + int(u>>e)
}

// bucketRange is the smallest and largest value that bucketOf maps to i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	e := i/subCount - 1
	m := int64(i - e*subCount)
	lo = m << e
	return lo, lo + 1<<e - 1
}

// Histogram records values concurrently: each Record is a few atomic adds,
// with no lock and no allocation, so event loops record every latency sample
// on the hot path. Give each event loop its own Histogram to keep the
// counters' cache lines from bouncing, and merge Snapshots to report.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // valid once total > 0; starts at MaxInt64
	max    atomic.Int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// Record adds one value; negative values count as zero.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	// Extremes change rarely once a run warms up, so a plain load usually
	// settles it without a write.
	for m := h.max.Load(); v > m; m = h.max.Load() {
		if h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for m := h.min.Load(); v < m; m = h.min.Load() {
		if h.min.CompareAndSwap(m, v) {
			break
		}
	}
}

// add merges h's current counts into d, as Merge(h.Snapshot()) would,
// without the intermediate copy.
func (d *Dist) add(h *Histogram) {
	total := h.total.Load()
	if total == 0 {
		return
	}
	if d.Counts == nil {
		d.Counts = make([]uint64, numBuckets)
	}
	for i := range h.counts {
		d.Counts[i] += h.counts[i].Load()
	}
	lo, hi := h.min.Load(), h.max.Load()
	if d.Total == 0 || lo < d.Min {
		d.Min = lo
	}
	d.Max = max(d.Max, hi)
	d.Total += total
	d.Sum += h.sum.Load()
}

// Snapshot copies the current counts. Samples recorded meanwhile may be
// partly included; each later snapshot includes them fully.
func (h *Histogram) Snapshot() *Dist {
	d := &Dist{Counts: make([]uint64, numBuckets)}
	for i := range h.counts {
		d.Counts[i] = h.counts[i].Load()
	}
	d.Total = h.total.Load()
	d.Sum = h.sum.Load()
	d.Max = h.max.Load()
	if d.Total > 0 {
		d.Min = h.min.Load()
	}
	return d
}

// Dist is a plain (not concurrent) copy of a histogram: what is merged across
// event loops and worker processes, diffed between progress ticks and asked
// for percentiles.
type Dist struct {
	Counts []uint64 // dense, numBuckets long; nil for an empty Dist
	Total  uint64
	Sum    uint64
	Min    int64
	Max    int64
}

// Merge adds o's samples to d.
func (d *Dist) Merge(o *Dist) {
	if o == nil || o.Total == 0 {
		return
	}
	if d.Counts == nil {
		d.Counts = make([]uint64, numBuckets)
	}
	for i, c := range o.Counts {
		d.Counts[i] += c
	}
	if d.Total == 0 || o.Min < d.Min {
		d.Min = o.Min
	}
	if o.Max > d.Max {
		d.Max = o.Max
	}
	d.Total += o.Total
	d.Sum += o.Sum
}

// Since returns the samples recorded in d but not in the earlier snapshot
// prev, for "current p99" over one progress interval. Its Min and Max are
// bucket bounds, since extremes cannot be subtracted.
func (d *Dist) Since(prev *Dist) *Dist {
	if prev == nil || prev.Total == 0 {
		return d
	}
	out := &Dist{Total: d.Total - prev.Total, Sum: d.Sum - prev.Sum}
	if out.Total == 0 {
		return out
	}
	out.Counts = make([]uint64, numBuckets)
	first, last := -1, -1
	for i := range d.Counts {
		c := d.Counts[i] - prev.Counts[i]
		out.Counts[i] = c
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first >= 0 {
		out.Min, _ = bucketRange(first)
		_, out.Max = bucketRange(last)
		out.Max = min(out.Max, d.Max)
	}
	return out
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// samples fall: the top of the bucket holding that rank, but never above
// the largest value seen. It returns 0 for an empty Dist.
func (d *Dist) Quantile(q float64) int64 {
	if d == nil || d.Total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(d.Total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range d.Counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return max(min(hi, d.Max), d.Min)
		}
	}
	return d.Max
}

// Mean is the average sample, 0 for an empty Dist.
func (d *Dist) Mean() float64 {
	if d == nil || d.Total == 0 {
		return 0
	}
	return float64(d.Sum) / float64(d.Total)
}

// distJSON is the sparse wire form: worker processes ship their histograms
// to the parent every progress tick, and only a few hundred of the buckets
// are ever non-zero.
type distJSON struct {
	Buckets [][2]uint64 `json:"b,omitempty"` // [bucket index, count]
	Total   uint64      `json:"n"`
	Sum     uint64      `json:"sum"`
	Min     int64       `json:"min"`
	Max     int64       `json:"max"`
}

// MarshalJSON writes the sparse form.
func (d *Dist) MarshalJSON() ([]byte, error) {
	j := distJSON{Total: d.Total, Sum: d.Sum, Min: d.Min, Max: d.Max}
	for i, c := range d.Counts {
		if c > 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the sparse form.
func (d *Dist) UnmarshalJSON(b []byte) error {
	var j distJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = Dist{Total: j.Total, Sum: j.Sum, Min: j.Min, Max: j.Max}
	if len(j.Buckets) > 0 {
		d.Counts = make([]uint64, numBuckets)
		for _, bc := range j.Buckets {
			if bc[0] < numBuckets {
				d.Counts[bc[0]] += bc[1]
			}
		}
	}
	return nil
}
