package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is a finished run: what --json prints and `cp7bench chart` reads.
type Result struct {
	Tool        string           `json:"tool"`
	Scenario    string           `json:"scenario"`
	Name        string           `json:"name,omitempty"`
	Broker      string           `json:"broker,omitempty"`
	Target      string           `json:"target"`
	Started     time.Time        `json:"started"`
	WallS       float64          `json:"wall_s"`
	Interrupted bool             `json:"interrupted,omitempty"`
	Options     Options          `json:"options"`
	Clients     ClientResult     `json:"clients"`
	Connect     ConnectResult    `json:"connect"`
	Messages    *MessageResult   `json:"messages,omitempty"`
	Latency     *Percentiles     `json:"latency_ms,omitempty"`
	Client      UsageResult      `json:"client"`
	BrokerUsage *BrokerResult    `json:"broker_usage,omitempty"`
	Machine     MachineResult    `json:"machine"`
	Timeline    []Tick           `json:"timeline"`
	Notes       []string         `json:"notes,omitempty"`
	Failures    map[string]int64 `json:"failures,omitempty"`
}

// ClientResult counts connections.
type ClientResult struct {
	Target     int   `json:"target"`
	Connected  int64 `json:"connected"`  // CONNACK accepted
	Subscribed int64 `json:"subscribed"` // SUBACK granted
	Failed     int64 `json:"failed"`     // never ready
	Dropped    int64 `json:"dropped"`    // lost once ready
}

// ConnectResult is the connect phases taken together.
type ConnectResult struct {
	ElapsedS  float64      `json:"elapsed_s"` // first dial to last CONNACK
	PerS      float64      `json:"per_s"`
	LatencyMs *Percentiles `json:"latency_ms,omitempty"` // dial to CONNACK
}

// MessageResult counts the publish phase.
type MessageResult struct {
	Sent      int64 `json:"sent"`
	Acked     int64 `json:"acked,omitempty"`
	Throttled int64 `json:"throttled,omitempty"`
	Received  int64 `json:"received"`
	// Expected, Lost and LossPct are set where the run has both ends.
	Expected int64   `json:"expected,omitempty"`
	Lost     int64   `json:"lost"`
	Extra    int64   `json:"extra,omitempty"` // duplicates or strays
	LossPct  float64 `json:"loss_pct"`
	// PublishS is how long publishers ran; rates are over it, except
	// DeliveredPerS, which runs to the last receipt so that a broker still
	// delivering after the publishers stop is credited for it.
	PublishS          float64 `json:"publish_s"`
	OfferedPerS       float64 `json:"offered_per_s"`
	AckedPerS         float64 `json:"acked_per_s,omitempty"`
	DeliveredPerS     float64 `json:"delivered_per_s"`
	PeakDeliveredPerS float64 `json:"peak_delivered_per_s"`
}

// Percentiles of a distribution, in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// UsageResult is the load generator's own cost.
type UsageResult struct {
	CPUSec float64 `json:"cpu_s"`
	CPUPct float64 `json:"cpu_pct"` // of one core, over the whole run
	// MeasureCPUPct is over the publish phase (the hold, for conn and sub).
	MeasureCPUPct float64 `json:"measure_cpu_pct"`
	RSSKB         int64   `json:"rss_kb"`
	Procs         int     `json:"procs"`
}

// MachineResult is the whole machine while measuring, to tell a run that
// shared the cores with something else.
type MachineResult struct {
	Cores   int     `json:"cores"`
	BusyPct float64 `json:"busy_pct"` // of all cores
	// OtherCPUPct (of one core) is busy time neither cp7bench nor the
	// --rss-pid broker accounts for: other programs, and kernel work such
	// as network interrupts that is billed to no process.
	OtherCPUPct float64 `json:"other_cpu_pct,omitempty"`
}

// BrokerResult is what --rss-pid saw of the broker.
type BrokerResult struct {
	PID       int     `json:"pid"`
	RSSBaseKB int64   `json:"rss_base_kb"` // before the first connect
	RSSPeakKB int64   `json:"rss_peak_kb"`
	RSSEndKB  int64   `json:"rss_end_kb"` // before disconnecting
	KBPerConn float64 `json:"kb_per_conn"`
	CPUSec    float64 `json:"cpu_s"`
	CPUPct    float64 `json:"cpu_pct"`
	// ConnectCPUSec is spent in the connect phases; MeasureCPUSec in the
	// publish phase and drain (the hold, for conn and sub).
	ConnectCPUSec float64 `json:"connect_cpu_s"`
	MeasureCPUSec float64 `json:"measure_cpu_s"`
	// CPUSecPerMillion is MeasureCPUSec per million messages received by
	// subscribers (sent, for pub).
	CPUSecPerMillion float64 `json:"cpu_s_per_million_msgs,omitempty"`
	Error            string  `json:"error,omitempty"`
}

func (r *runner) result(s *Stats, mStart, mEnd time.Time) *Result {
	o := r.o
	now := time.Now()
	res := &Result{
		Tool:     "cp7bench",
		Scenario: o.Scenario,
		Name:     o.Name,
		Broker:   o.Broker,
		Target:   joinHostPort(o.Host, o.Port),
		Started:  r.start,
		WallS:    now.Sub(r.start).Seconds(),
		Options:  o,
		Clients: ClientResult{
			Target:     r.roles.Total(),
			Connected:  s.Connected,
			Subscribed: s.Subscribed,
			Failed:     s.ConnFailed,
			Dropped:    s.Dropped,
		},
		Failures: s.Failures,
		Timeline: r.ticks,
	}
	if s.FirstDial > 0 && s.LastConnack > s.FirstDial {
		res.Connect.ElapsedS = float64(s.LastConnack-s.FirstDial) / 1e9
		res.Connect.PerS = float64(s.Connected) / res.Connect.ElapsedS
	}
	res.Connect.LatencyMs = percentiles(s.ConnLatency)
	res.Client = UsageResult{
		CPUSec: s.CPUSec,
		CPUPct: 100 * s.CPUSec / res.WallS,
		RSSKB:  s.RSSKB,
		Procs:  max(s.Procs, 1),
	}
	if o.Scenario == ScenarioConn {
		return res
	}
	m := &MessageResult{Sent: s.Sent, Acked: s.Acked, Throttled: s.Throttled, Received: s.Recv}
	if s.PubStart > 0 && s.PubEnd > s.PubStart {
		m.PublishS = float64(s.PubEnd-s.PubStart) / 1e9
		m.OfferedPerS = float64(s.Sent) / m.PublishS
		if o.QoS > 0 {
			m.AckedPerS = float64(s.Acked) / m.PublishS
		}
	}
	switch {
	case s.PubStart > 0 && s.LastRecv > s.PubStart:
		m.DeliveredPerS = float64(s.Recv) / (float64(s.LastRecv-s.PubStart) / 1e9)
	case o.Scenario == ScenarioSub && mEnd.After(mStart):
		m.DeliveredPerS = PerSecond(s.Recv, mEnd.Sub(mStart))
	}
	m.PeakDeliveredPerS = r.recv.Peak()
	if o.endToEnd() {
		m.Expected = r.expected(s)
		m.Lost = max(m.Expected-s.Recv, 0)
		m.Extra = max(s.Recv-m.Expected, 0)
		if m.Expected > 0 {
			m.LossPct = 100 * float64(m.Lost) / float64(m.Expected)
		}
	}
	res.Messages = m
	if s.Latency != nil && s.Latency.Total > 0 {
		res.Latency = percentiles(s.Latency)
	}
	if s.Strays > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf(
			"ignored %d messages of an earlier run that the broker was still delivering", s.Strays))
	}
	if m.Throttled > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf(
			"%d scheduled publishes were not sent: the QoS 1/2 window (--inflight) was full or the client fell behind its schedule", m.Throttled))
	}
	return res
}

func (r *runner) brokerResult(s *Stats, pub0, end ProcSample) *BrokerResult {
	b := &BrokerResult{
		PID:       r.o.RSSPid,
		RSSBaseKB: r.brokerBase.RSSKB,
		RSSPeakKB: r.brokerPeakKB,
		RSSEndKB:  end.RSSKB,
		CPUSec:    end.CPUSec - r.brokerBase.CPUSec,
	}
	if r.brokerErr != nil {
		b.Error = r.brokerErr.Error()
	}
	if dt := end.At.Sub(r.brokerBase.At).Seconds(); dt > 0 {
		b.CPUPct = 100 * b.CPUSec / dt
	}
	if !pub0.At.IsZero() {
		b.ConnectCPUSec = pub0.CPUSec - r.brokerBase.CPUSec
		b.MeasureCPUSec = end.CPUSec - pub0.CPUSec
	}
	if live := s.Connected - s.Dropped; live > 0 {
		b.KBPerConn = float64(end.RSSKB-r.brokerBase.RSSKB) / float64(live)
	}
	msgs := s.Recv
	if r.o.Scenario == ScenarioPub {
		msgs = s.Sent
	}
	if msgs > 0 {
		b.CPUSecPerMillion = b.MeasureCPUSec / (float64(msgs) / 1e6)
	}
	return b
}

func percentiles(d *Dist) *Percentiles {
	if d == nil || d.Total == 0 {
		return nil
	}
	return &Percentiles{
		Count: d.Total,
		Min:   ms(d.Min),
		Mean:  d.Mean() / 1e6,
		P50:   ms(d.Quantile(0.50)),
		P90:   ms(d.Quantile(0.90)),
		P99:   ms(d.Quantile(0.99)),
		P999:  ms(d.Quantile(0.999)),
		Max:   ms(d.Max),
	}
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }

// WriteText writes the human summary.
func (res *Result) WriteText(w io.Writer) {
	o := res.Options
	fmt.Fprintf(w, "cp7bench %s against %s (MQTT %s%s)", res.Scenario, res.Target, versionName(o.Version), transportName(&o))
	if res.Name != "" || res.Broker != "" {
		fmt.Fprintf(w, " [%s]", strings.Trim(res.Broker+" "+res.Name, " "))
	}
	if res.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  setup        %s\n", describe(&o))
	c := res.Clients
	fmt.Fprintf(w, "  connections  %d/%d connected", c.Connected, c.Target)
	if c.Subscribed > 0 {
		fmt.Fprintf(w, ", %d subscribed", c.Subscribed)
	}
	if res.Connect.PerS > 0 {
		fmt.Fprintf(w, " in %.2fs (%s/s)", res.Connect.ElapsedS, si(res.Connect.PerS))
	}
	if l := res.Connect.LatencyMs; l != nil {
		fmt.Fprintf(w, ", connect p50 %s p99 %s max %s", msText(l.P50), msText(l.P99), msText(l.Max))
	}
	fmt.Fprintln(w)
	if c.Failed+c.Dropped > 0 || len(res.Failures) > 0 {
		fmt.Fprintf(w, "  failures     %d never connected, %d lost after connecting\n", c.Failed, c.Dropped)
		for _, k := range slices.Sorted(maps.Keys(res.Failures)) {
			fmt.Fprintf(w, "               %8d  %s\n", res.Failures[k], k)
		}
	}
	if m := res.Messages; m != nil {
		if o.Roles().Pubs > 0 {
			fmt.Fprintf(w, "  sent         %s", group(m.Sent))
			if m.PublishS > 0 {
				fmt.Fprintf(w, " in %.1fs (%s/s)", m.PublishS, si(m.OfferedPerS))
			}
			if o.QoS > 0 {
				fmt.Fprintf(w, ", acked %s (%s/s)", group(m.Acked), si(m.AckedPerS))
			}
			if m.Throttled > 0 {
				fmt.Fprintf(w, ", %s not sent (window full or behind schedule)", group(m.Throttled))
			}
			fmt.Fprintln(w)
		}
		if o.Scenario != ScenarioPub {
			fmt.Fprintf(w, "  received     %s (%s/s, peak %s/s)", group(m.Received), si(m.DeliveredPerS), si(m.PeakDeliveredPerS))
			if o.endToEnd() {
				fmt.Fprintf(w, " of %s expected: lost %s (%.3f%%)", group(m.Expected), group(m.Lost), m.LossPct)
				if m.Extra > 0 {
					fmt.Fprintf(w, ", %s extra", group(m.Extra))
				}
			}
			fmt.Fprintln(w)
		}
	}
	if l := res.Latency; l != nil {
		fmt.Fprintf(w, "  latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%s)\n",
			msText(l.P50), msText(l.P90), msText(l.P99), msText(l.P999), msText(l.Max), msText(l.Mean), group(int64(l.Count)))
	}
	u := res.Client
	procs := "in this process"
	if u.Procs > 1 {
		procs = fmt.Sprintf("in %d worker processes", u.Procs)
	}
	fmt.Fprintf(w, "  client       cpu %.1fs (%.0f%% of a core; %.0f%% while measuring), rss %s, %s\n",
		u.CPUSec, u.CPUPct, u.MeasureCPUPct, kbText(u.RSSKB), procs)
	if m := res.Machine; m.Cores > 0 {
		fmt.Fprintf(w, "  machine      %d cores %.0f%% busy while measuring", m.Cores, m.BusyPct)
		if res.BrokerUsage != nil {
			fmt.Fprintf(w, ", %.0f%% of a core outside cp7bench and the broker", m.OtherCPUPct)
		}
		fmt.Fprintln(w)
	}
	if b := res.BrokerUsage; b != nil {
		fmt.Fprintf(w, "  broker       pid %d: rss %s → %s (peak %s), %.2f KB/conn; cpu %.1fs (%.0f%%)",
			b.PID, kbText(b.RSSBaseKB), kbText(b.RSSEndKB), kbText(b.RSSPeakKB), b.KBPerConn, b.CPUSec, b.CPUPct)
		if b.CPUSecPerMillion > 0 {
			fmt.Fprintf(w, ", %.2f cpu-s per million msgs", b.CPUSecPerMillion)
		}
		if b.Error != "" {
			fmt.Fprintf(w, " (sampling: %s)", b.Error)
		}
		fmt.Fprintln(w)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note         %s\n", n)
	}
}

// describe is one line on what the run did.
func describe(o *Options) string {
	rate := "flat out"
	if o.Interval > 0 {
		rate = fmt.Sprintf("every %v each", o.Interval)
	}
	q := fmt.Sprintf("QoS %d, %d B payload, %s", o.QoS, o.Size, rate)
	if o.QoS > 0 {
		q += fmt.Sprintf(", inflight %d", o.Inflight)
	}
	d := "until interrupted"
	if o.Duration > 0 {
		d = "for " + o.Duration.String()
	}
	r := o.Roles()
	pubs, subs := count(r.Pubs, "publisher"), count(r.Subs, "subscriber")
	switch o.Scenario {
	case ScenarioConn:
		return fmt.Sprintf("%s held %s", count(r.Conns, "connection"), d)
	case ScenarioSub:
		return fmt.Sprintf("%s to %q, QoS %d, %s", subs, o.Topic, o.QoS, d)
	case ScenarioPub:
		return fmt.Sprintf("%s to %q, %s, %s", pubs, o.Topic, q, d)
	case ScenarioFanin:
		return fmt.Sprintf("%s to %q → %s to %q; %s, %s", pubs, o.Topic, subs, o.SubTopic, q, d)
	}
	return fmt.Sprintf("%s → %s on %q; %s, %s", pubs, subs, o.Topic, q, d)
}

// count is "1 thing" or "n things".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func versionName(v byte) string {
	switch v {
	case 3:
		return "3.1"
	case 4:
		return "3.1.1"
	}
	return "5.0"
}

func transportName(o *Options) string {
	switch {
	case o.WS && o.TLS:
		return " over wss"
	case o.WS:
		return " over ws"
	case o.TLS:
		return " over TLS"
	}
	return ""
}

// si formats a rate compactly: 950, 12.3k, 1.25M.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// msText formats milliseconds with a unit that keeps 3 digits.
func msText(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.0fµs", v*1000)
}

func kbText(kb int64) string {
	if kb >= 10<<10 {
		return fmt.Sprintf("%.0f MB", float64(kb)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

// group writes an integer with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + group(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
