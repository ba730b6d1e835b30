package loadgen

import "time"

// Pacer spreads events evenly at a fixed rate from a start time. It answers
// how many events should have happened by now rather than sleeping per
// event, so one goroutine drives thousands of publishers or dials with a
// coarse ticker and still hits the rate on average.
type Pacer struct {
	start  time.Time
	period time.Duration // between two events; 0 means no pacing
	done   int64         // events taken so far
}

// NewPacer paces events at one per period from start; period 0 lets every
// event through at once.
func NewPacer(start time.Time, period time.Duration) *Pacer {
	return &Pacer{start: start, period: period}
}

// PeriodOf converts a rate per second to a period, 0 for "unpaced".
func PeriodOf(perSecond float64) time.Duration {
	if perSecond <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / perSecond)
}

// Due is how many events are owed at now (at most limit), and marks them
// taken. limit caps a catch-up burst after the caller fell behind: what
// exceeds it is skipped, not owed forever, and reported as the second value.
func (p *Pacer) Due(now time.Time, limit int64) (due, skipped int64) {
	if p.period <= 0 {
		p.done += limit
		return limit, 0
	}
	el := now.Sub(p.start)
	if el < 0 {
		return 0, 0
	}
	// The first event is due at start, the (k+1)th at start + k*period.
	owed := int64(el/p.period) + 1 - p.done
	if owed <= 0 {
		return 0, 0
	}
	p.done += owed
	if owed > limit {
		return limit, owed - limit
	}
	return owed, 0
}

// Next is when the next event falls due; the zero time when unpaced.
func (p *Pacer) Next() time.Time {
	if p.period <= 0 {
		return time.Time{}
	}
	return p.start.Add(time.Duration(p.done) * p.period)
}

// RateTracker turns a cumulative counter read at irregular times into
// per-interval rates and their peak. Counters live in the event loops as
// plain atomics; only the reporter, once a tick, does this arithmetic.
type RateTracker struct {
	last  time.Time
	count int64
	peak  float64
}

// NewRateTracker starts tracking a counter whose value at start is 0.
func NewRateTracker(start time.Time) *RateTracker {
	return &RateTracker{last: start}
}

// Observe records the counter's cumulative value at t and returns the rate
// since the previous observation; at the same instant again it only takes
// the newer count and returns 0.
func (r *RateTracker) Observe(t time.Time, count int64) float64 {
	dt := t.Sub(r.last)
	if dt <= 0 {
		r.count = count
		return 0
	}
	rate := float64(count-r.count) / dt.Seconds()
	r.last, r.count = t, count
	r.peak = max(r.peak, rate)
	return rate
}

// Peak is the highest interval rate seen.
func (r *RateTracker) Peak() float64 { return r.peak }

// PerSecond is n events over d as a rate, 0 when d is not positive.
func PerSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
