package loadgen

// Stats are a worker's cumulative counts. Worker processes send them to the
// parent as JSON every progress tick, and the parent adds them up.
type Stats struct {
	Dialed     int64 `json:"dialed"`
	Connected  int64 `json:"connected"`   // CONNACK accepted
	ConnFailed int64 `json:"conn_failed"` // never became ready
	Dropped    int64 `json:"dropped"`     // lost after becoming ready
	Subscribed int64 `json:"subscribed"`  // SUBACK granted

	Sent      int64 `json:"sent"`
	SentBytes int64 `json:"sent_bytes"`
	// Throttled are scheduled publishes not sent because the QoS 1/2 window
	// was full or the client fell more than 100 ms behind its schedule.
	Throttled int64 `json:"throttled"`
	Acked     int64 `json:"acked"` // PUBACK (QoS 1) or PUBCOMP (QoS 2) received
	Recv      int64 `json:"recv"`
	// Strays are messages of an earlier run (another run tag) still
	// delivered by the broker; they count nowhere else.
	Strays    int64 `json:"strays"`
	RecvBytes int64 `json:"recv_bytes"`

	// Instants as unix nanoseconds, 0 when they did not happen.
	FirstDial   int64 `json:"first_dial"`
	LastConnack int64 `json:"last_connack"`
	PubStart    int64 `json:"pub_start"`
	PubEnd      int64 `json:"pub_end"`
	LastRecv    int64 `json:"last_recv"`

	Failures map[string]int64 `json:"failures,omitempty"`

	Latency     *Dist `json:"latency"`      // publish to receipt, ns
	ConnLatency *Dist `json:"conn_latency"` // dial to CONNACK, ns

	CPUSec float64 `json:"cpu_s"`  // CPU time of the worker processes
	RSSKB  int64   `json:"rss_kb"` // their resident memory, summed
	Procs  int     `json:"procs"`
}

// Add merges o into s: counts add up, instants take the earliest start and
// the latest end.
func (s *Stats) Add(o *Stats) {
	s.Dialed += o.Dialed
	s.Connected += o.Connected
	s.ConnFailed += o.ConnFailed
	s.Dropped += o.Dropped
	s.Subscribed += o.Subscribed
	s.Sent += o.Sent
	s.SentBytes += o.SentBytes
	s.Throttled += o.Throttled
	s.Acked += o.Acked
	s.Recv += o.Recv
	s.Strays += o.Strays
	s.RecvBytes += o.RecvBytes
	s.FirstDial = earliest(s.FirstDial, o.FirstDial)
	s.PubStart = earliest(s.PubStart, o.PubStart)
	s.LastConnack = max(s.LastConnack, o.LastConnack)
	s.PubEnd = max(s.PubEnd, o.PubEnd)
	s.LastRecv = max(s.LastRecv, o.LastRecv)
	for k, v := range o.Failures {
		if s.Failures == nil {
			s.Failures = make(map[string]int64)
		}
		s.Failures[k] += v
	}
	if s.Latency == nil {
		s.Latency = &Dist{}
	}
	if s.ConnLatency == nil {
		s.ConnLatency = &Dist{}
	}
	s.Latency.Merge(o.Latency)
	s.ConnLatency.Merge(o.ConnLatency)
	s.CPUSec += o.CPUSec
	s.RSSKB += o.RSSKB
	s.Procs += o.Procs
}

// earliest is the smaller of two instants where 0 means unset.
func earliest(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
