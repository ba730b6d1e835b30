package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"
)

// runner drives one benchmark: it splits the clients over workers, moves
// them through the phases together, samples progress once a second and
// turns the final counts into a Result.
type runner struct {
	o     Options
	roles Roles
	hs    []handle
	local bool // a single in-process worker, whose CPU is this process's

	progress io.Writer // live line, or nil

	start time.Time
	mu    sync.Mutex // guards the fields below, shared with the ticker
	phase string
	conn  *RateTracker
	sent  *RateTracker
	recv  *RateTracker
	acked *RateTracker
	lat   *Dist // cumulative at the previous tick
	ticks []Tick
	// Broker samples (with -rss-pid) and client CPU at phase edges.
	brokerBase, brokerPrev ProcSample
	brokerPeakKB           int64
	brokerErr              error
	// CPU seconds of cp7bench when the run began (a process embedding the
	// load generator, like the tests, may have used some before) and at
	// the last tick.
	cpuBase, prevCPU float64
}

// Tick is one second of the run, for the live line and the JSON timeline.
type Tick struct {
	T            float64 `json:"t"` // seconds since the start
	Phase        string  `json:"phase"`
	Connected    int64   `json:"connected"`
	ConnPerS     float64 `json:"conn_per_s"`
	SentPerS     float64 `json:"sent_per_s"`
	RecvPerS     float64 `json:"recv_per_s"`
	AckedPerS    float64 `json:"acked_per_s"`
	P99Ms        float64 `json:"p99_ms"` // over this second's receipts
	ClientCPUPct float64 `json:"client_cpu_pct"`
	BrokerRSSKB  int64   `json:"broker_rss_kb,omitempty"`
	BrokerCPUPct float64 `json:"broker_cpu_pct,omitempty"`
}

// Run runs the benchmark o describes and returns its result. exe is the
// cp7bench binary, re-executed as worker processes when the run needs more
// sockets than one process may hold; progress receives a live status line
// (nil for none). Cancelling ctx ends the run early with what it measured.
func Run(ctx context.Context, o Options, exe string, progress io.Writer) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.RunTag == 0 {
		o.RunTag = rand.Uint64() | 1
	}
	r := &runner{o: o, roles: o.Roles(), progress: progress}
	if o.RSSPid > 0 {
		ps, err := ReadProc(o.RSSPid)
		if err != nil {
			return nil, fmt.Errorf("--rss-pid %d: %w", o.RSSPid, err)
		}
		r.brokerBase, r.brokerPrev, r.brokerPeakKB = ps, ps, ps.RSSKB
	}
	procs := (r.roles.Total() + o.ConnsPerProc - 1) / o.ConnsPerProc
	split := func(n, k int) Span { return Span{Lo: k * n / procs, Hi: (k + 1) * n / procs} }
	for k := range procs {
		spec := WorkerSpec{
			Opts:  o,
			Conns: split(r.roles.Conns, k),
			Subs:  split(r.roles.Subs, k),
			Pubs:  split(r.roles.Pubs, k),
			Procs: procs,
		}
		var h handle
		if procs == 1 {
			h, r.local = local{NewWorker(spec)}, true
		} else {
			spec.Password = o.Password
			rem, err := spawn(exe, spec)
			if err != nil {
				for _, h := range r.hs {
					_, _ = h.stop()
				}
				return nil, fmt.Errorf("starting worker process: %w", err)
			}
			h = rem
		}
		r.hs = append(r.hs, h)
	}
	return r.run(ctx)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	o := r.o
	r.start = time.Now()
	r.conn, r.sent = NewRateTracker(r.start), NewRateTracker(r.start)
	r.recv, r.acked = NewRateTracker(r.start), NewRateTracker(r.start)
	agg := r.aggregate()
	r.cpuBase = r.clientCPU(&agg)
	tickDone := make(chan struct{})
	tickerStopped := make(chan struct{})
	go r.ticker(tickDone, tickerStopped)

	var runErr error
	var pubCPU0, mBusy0, mTotal0 float64
	var brokerPub0 ProcSample
	var measureStart time.Time
	for _, role := range []byte{roleConn, roleSub, rolePub} {
		n := map[byte]int{roleConn: r.roles.Conns, roleSub: r.roles.Subs, rolePub: r.roles.Pubs}[role]
		if n == 0 || runErr != nil || ctx.Err() != nil {
			continue
		}
		r.setPhase("connecting " + map[byte]string{roleConn: "clients", roleSub: "subscribers", rolePub: "publishers"}[role])
		runErr = r.each(func(h handle) error { return h.connect(ctx, role) })
	}
	if runErr == nil && ctx.Err() == nil {
		measureStart = time.Now()
		agg := r.aggregate()
		pubCPU0 = r.clientCPU(&agg)
		brokerPub0 = r.sampleBroker()
		mBusy0, mTotal0, _ = MachineCPU()
		if o.publishes() {
			runErr = r.publish(ctx)
		} else {
			r.setPhase("holding")
			hold(ctx, o.Duration)
		}
	}
	measureEnd := time.Now()
	agg = r.aggregate()
	pubCPU1 := r.clientCPU(&agg)
	brokerEnd := r.sampleBroker()
	mBusy1, mTotal1, mErr := MachineCPU()
	close(tickDone)
	<-tickerStopped

	final := Stats{Latency: &Dist{}, ConnLatency: &Dist{}}
	for _, h := range r.hs {
		st, err := h.stop()
		if err != nil && runErr == nil {
			runErr = err
		}
		final.Add(&st)
	}
	final.CPUSec = r.clientCPU(&final)
	if !r.local {
		_, rss := selfUsage()
		final.RSSKB += rss
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return nil, runErr
	}
	res := r.result(&final, measureStart, measureEnd)
	res.Interrupted = ctx.Err() != nil
	if o.RSSPid > 0 {
		res.BrokerUsage = r.brokerResult(&final, brokerPub0, brokerEnd)
	}
	if measureStart.IsZero() {
		return res, nil // nothing was measured: connecting failed or was interrupted
	}
	dt := measureEnd.Sub(measureStart).Seconds()
	if dt > 0 {
		res.Client.MeasureCPUPct = 100 * (pubCPU1 - pubCPU0) / dt
	}
	if mErr == nil && mTotal1 > mTotal0 && dt > 0 {
		m := &res.Machine
		m.Cores = runtime.NumCPU()
		m.BusyPct = 100 * (mBusy1 - mBusy0) / (mTotal1 - mTotal0)
		if b := res.BrokerUsage; b != nil {
			busyCores := m.BusyPct / 100 * float64(m.Cores)
			m.OtherCPUPct = max(0, 100*busyCores-res.Client.MeasureCPUPct-100*b.MeasureCPUSec/dt)
		}
	}
	return res, nil
}

// publish runs the publish phase on every worker at a common start time,
// then waits for what is still in flight.
func (r *runner) publish(ctx context.Context) error {
	o := r.o
	// Workers in other processes get the start time ahead, so they begin
	// together.
	start := time.Now().Add(100 * time.Millisecond)
	var end time.Time
	if o.Duration > 0 {
		end = start.Add(o.Duration)
	}
	r.setPhase("publishing")
	stopEarly := context.AfterFunc(ctx, func() {
		for _, h := range r.hs {
			h.endPublish()
		}
	})
	defer stopEarly()
	if err := r.each(func(h handle) error { return h.publish(context.WithoutCancel(ctx), start, end) }); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	r.setPhase("draining")
	r.drain(ctx)
	return nil
}

// drain waits after publishing until every expected message and ack is in,
// progress stalls for two seconds, or the drain time runs out.
func (r *runner) drain(ctx context.Context) {
	deadline := time.Now().Add(r.o.Drain)
	var last int64 = -1
	lastMove := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s := r.aggregate()
		got := s.Recv + s.Acked
		if r.complete(&s) {
			return
		}
		if got != last {
			last, lastMove = got, time.Now()
		} else if time.Since(lastMove) > 2*time.Second {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// complete reports whether nothing is outstanding: every message delivered
// where the run has both ends, and every QoS 1/2 publish acknowledged.
func (r *runner) complete(s *Stats) bool {
	if r.o.QoS > 0 && s.Acked < s.Sent {
		return false
	}
	if r.o.endToEnd() && s.Recv < r.expected(s) {
		return false
	}
	return true
}

// expected is how many deliveries the messages sent so far should make.
func (r *runner) expected(s *Stats) int64 {
	switch r.o.Scenario {
	case ScenarioP2P:
		return s.Sent
	case ScenarioFanout, ScenarioFanin:
		if r.o.Scenario == ScenarioFanin && strings.HasPrefix(r.o.SubTopic, "$share/") {
			// A shared group delivers each message to one of its members.
			return s.Sent
		}
		// Every subscriber's filter matches every publisher's topic.
		return s.Sent * s.Subscribed
	}
	return 0
}

// each runs f on every worker at once and returns the first error.
func (r *runner) each(f func(h handle) error) error {
	errs := make([]error, len(r.hs))
	var wg sync.WaitGroup
	for i, h := range r.hs {
		wg.Go(func() { errs[i] = f(h) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// hold waits d, or until ctx ends when d is 0.
func hold(ctx context.Context, d time.Duration) {
	if d == 0 {
		<-ctx.Done()
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func (r *runner) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

// aggregate sums the workers' latest counts.
func (r *runner) aggregate() Stats {
	s := Stats{Latency: &Dist{}, ConnLatency: &Dist{}}
	for _, h := range r.hs {
		st := h.stats()
		s.Add(&st)
	}
	return s
}

// clientCPU is the CPU time cp7bench's processes have spent on the run:
// the workers' as s reports it, and this process's when it only
// coordinates them.
func (r *runner) clientCPU(s *Stats) float64 {
	cpu := s.CPUSec
	if !r.local {
		self, _ := selfUsage()
		cpu += self
	}
	return cpu - r.cpuBase
}

// sampleBroker reads the broker process, keeping the peak RSS.
func (r *runner) sampleBroker() ProcSample {
	if r.o.RSSPid <= 0 {
		return ProcSample{}
	}
	ps, err := ReadProc(r.o.RSSPid)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.brokerErr == nil {
			r.brokerErr = err
		}
		return r.brokerPrev
	}
	r.brokerPeakKB = max(r.brokerPeakKB, ps.RSSKB)
	return ps
}

// ticker samples progress once a second until done is closed.
func (r *runner) ticker(done, stopped chan struct{}) {
	defer close(stopped)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			if r.progress != nil {
				fmt.Fprintln(r.progress)
			}
			return
		case <-t.C:
			r.tick()
		}
	}
}

func (r *runner) tick() {
	now := time.Now()
	s := r.aggregate()
	cpu := r.clientCPU(&s)
	bs := r.sampleBroker()
	r.mu.Lock()
	defer r.mu.Unlock()
	el := now.Sub(r.start).Seconds()
	tk := Tick{
		T:         el,
		Phase:     r.phase,
		Connected: s.Connected - s.Dropped,
		ConnPerS:  r.conn.Observe(now, s.Connected),
		SentPerS:  r.sent.Observe(now, s.Sent),
		RecvPerS:  r.recv.Observe(now, s.Recv),
		AckedPerS: r.acked.Observe(now, s.Acked),
		P99Ms:     ms(s.Latency.Since(r.lat).Quantile(0.99)),
	}
	r.lat = s.Latency
	prevT := 0.0
	if len(r.ticks) > 0 {
		prevT = r.ticks[len(r.ticks)-1].T
	}
	if el > prevT {
		tk.ClientCPUPct = 100 * (cpu - r.prevCPU) / (el - prevT)
	}
	r.prevCPU = cpu
	if r.o.RSSPid > 0 {
		tk.BrokerRSSKB = bs.RSSKB
		if dt := bs.At.Sub(r.brokerPrev.At).Seconds(); dt > 0 {
			tk.BrokerCPUPct = 100 * (bs.CPUSec - r.brokerPrev.CPUSec) / dt
		}
		r.brokerPrev = bs
	}
	r.ticks = append(r.ticks, tk)
	if r.progress != nil {
		fmt.Fprintf(r.progress, "\r\033[K%s", r.line(&tk, &s))
	}
}

// line is the live status line.
func (r *runner) line(t *Tick, s *Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.0fs %-22s conn %d/%d", t.T, t.Phase, t.Connected, r.roles.Total())
	if f := s.ConnFailed + s.Dropped; f > 0 {
		fmt.Fprintf(&b, " fail %d", f)
	}
	if t.ConnPerS > 0 {
		fmt.Fprintf(&b, " (%s/s)", si(t.ConnPerS))
	}
	if r.roles.Pubs > 0 {
		fmt.Fprintf(&b, "  sent %s/s", si(t.SentPerS))
		if r.o.QoS > 0 {
			fmt.Fprintf(&b, " ack %s/s", si(t.AckedPerS))
		}
	}
	if r.roles.Subs > 0 {
		fmt.Fprintf(&b, "  recv %s/s p99 %s", si(t.RecvPerS), msText(t.P99Ms))
	}
	fmt.Fprintf(&b, "  cpu %.0f%%", t.ClientCPUPct)
	if r.o.RSSPid > 0 {
		fmt.Fprintf(&b, "  broker %.0f%% %s", t.BrokerCPUPct, kbText(t.BrokerRSSKB))
	}
	return b.String()
}
