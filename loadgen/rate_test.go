package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestPacerSpreadsEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := NewPacer(t0, 10*time.Millisecond) // 100 per second
	if due, _ := p.Due(t0.Add(-time.Millisecond), 1000); due != 0 {
		t.Fatalf("%d due before the start", due)
	}
	if due, _ := p.Due(t0, 1000); due != 1 {
		t.Fatalf("%d due at the start, want the first event", due)
	}
	if due, _ := p.Due(t0.Add(5*time.Millisecond), 1000); due != 0 {
		t.Fatalf("%d due mid-period", due)
	}
	if next := p.Next(); !next.Equal(t0.Add(10 * time.Millisecond)) {
		t.Fatalf("next at %v", next.Sub(t0))
	}
	// Asking rarely still totals the rate: 1 s in, 101 events (0 s .. 1 s).
	total := int64(1)
	for ms := 7; ms <= 1000; ms += 7 {
		due, skipped := p.Due(t0.Add(time.Duration(ms)*time.Millisecond), 1000)
		if skipped != 0 {
			t.Fatalf("skipped %d", skipped)
		}
		total += due
	}
	due, _ := p.Due(t0.Add(time.Second), 1000)
	if total+due != 101 {
		t.Fatalf("%d events in the first second, want 101", total+due)
	}
}

func TestPacerCapsCatchUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := NewPacer(t0, time.Millisecond)
	due, skipped := p.Due(t0.Add(time.Second), 100)
	if due != 100 || skipped != 901 {
		t.Fatalf("after a 1 s stall: due %d skipped %d, want 100 and 901", due, skipped)
	}
	// The skipped events are not owed later.
	if due, skipped := p.Due(t0.Add(time.Second), 100); due != 0 || skipped != 0 {
		t.Fatalf("owed again: due %d skipped %d", due, skipped)
	}
	if due, _ := p.Due(t0.Add(time.Second+time.Millisecond), 100); due != 1 {
		t.Fatalf("next period: due %d", due)
	}
}

func TestUnpacedPacer(t *testing.T) {
	p := NewPacer(time.Now(), PeriodOf(0))
	if due, skipped := p.Due(time.Now(), 42); due != 42 || skipped != 0 {
		t.Fatalf("unpaced: due %d skipped %d", due, skipped)
	}
	if !p.Next().IsZero() {
		t.Fatal("unpaced pacer has a next time")
	}
	if got := PeriodOf(4); got != 250*time.Millisecond {
		t.Fatalf("PeriodOf(4) = %v", got)
	}
}

func TestRateTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRateTracker(t0)
	steps := []struct {
		after time.Duration
		count int64
		rate  float64
	}{
		{time.Second, 100, 100},
		{2 * time.Second, 300, 200},
		{2500 * time.Millisecond, 400, 200}, // a half-second interval
		{3500 * time.Millisecond, 400, 0},   // idle
	}
	for _, s := range steps {
		if got := r.Observe(t0.Add(s.after), s.count); math.Abs(got-s.rate) > 1e-9 {
			t.Fatalf("at %v: rate %f, want %f", s.after, got, s.rate)
		}
	}
	if r.Peak() != 200 {
		t.Fatalf("peak %f", r.Peak())
	}
}

func TestRateTrackerIgnoresRepeatedInstant(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRateTracker(t0)
	r.Observe(t0.Add(time.Second), 10)
	if got := r.Observe(t0.Add(time.Second), 20); got != 0 {
		t.Fatalf("zero-length interval gave rate %f", got)
	}
	if got := r.Observe(t0.Add(2*time.Second), 30); got != 10 {
		t.Fatalf("rate after the repeat = %f, want 10 (from the latest count)", got)
	}
}

func TestPerSecond(t *testing.T) {
	if got := PerSecond(500, 250*time.Millisecond); got != 2000 {
		t.Fatalf("PerSecond = %f", got)
	}
	if PerSecond(5, 0) != 0 {
		t.Fatal("zero duration")
	}
}
