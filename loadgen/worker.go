package loadgen

import (
	"context"
	"encoding/binary"
	"maps"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coolpy7/coolpy7/packets"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
)

// shard is one event loop's counters and histograms. Every client counts
// into the shard of the loop that reads it, so the hot counters are not
// shared between cores; the reporter sums shards.
type shard struct {
	dialed, connected, connFailed, dropped, subscribed atomic.Int64
	sent, sentBytes, throttled, acked, recv, recvBytes atomic.Int64
	strays                                             atomic.Int64
	lastConnack, lastRecv                              atomic.Int64 // unix ns
	lat, connLat                                       *Histogram
	_                                                  [64]byte // keeps the next shard's counters off this cache line
}

// Span is the slice [Lo, Hi) of a role's clients (0-based) one worker owns.
type Span struct{ Lo, Hi int }

// Len is the number of clients in the span.
func (s Span) Len() int { return s.Hi - s.Lo }

// WorkerSpec is what one worker (the process itself, or a child process
// for large runs) is given: the run's options and its share of the clients.
type WorkerSpec struct {
	Opts              Options
	Conns, Subs, Pubs Span
	Procs             int // how many workers share the run's connect rate
	// Password travels beside Opts, whose JSON form leaves it out so
	// that it never lands in a result file.
	Password string `json:",omitempty"`
}

// Worker runs one share of a benchmark's clients on one nbio engine.
type Worker struct {
	opts    Options
	version byte
	spec    WorkerSpec
	addr    string
	srcs    []string

	evented bool // plain TCP on the epoll engine (else goroutine-driven wires)
	// The engine starts with the first dial (see engine and Stop).
	engOnce sync.Once
	eng     *nbio.Engine
	engAt   time.Time
	engErr  error
	// tagged runs have both ends, so subscribers tell this run's messages
	// from leftovers of an earlier one by the run tag in the payload.
	tagged bool
	// closedLoop is p2p flat out: each publisher keeps --inflight messages
	// in flight end to end, so the broker's delivery rate sets the pace
	// rather than its queues (see client.topUp).
	closedLoop bool
	shards     []*shard

	conns, subs, pubs []*client

	firstDial atomic.Int64 // unix ns
	pubStart  atomic.Int64
	pubEnd    atomic.Int64
	// refill is set while flat-out QoS 1/2 publishers refill their window
	// from the ack handler.
	refill atomic.Bool
	endPub chan struct{} // closed to end the publish phase early
	endMu  sync.Once

	failMu   sync.Mutex
	failures map[string]int64

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup // keepalive and other background goroutines
}

// NewWorker prepares a worker; nothing connects until Connect.
func NewWorker(spec WorkerSpec) *Worker {
	o := spec.Opts
	if spec.Password != "" {
		o.Password = spec.Password
	}
	w := &Worker{
		opts:       o,
		version:    o.Version,
		spec:       spec,
		addr:       joinHostPort(o.Host, o.Port),
		srcs:       o.sourceAddrs(),
		evented:    !o.TLS && !o.WS,
		tagged:     o.endToEnd(),
		closedLoop: o.Scenario == ScenarioP2P && o.Interval == 0,
		endPub:     make(chan struct{}),
		failures:   make(map[string]int64),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for range runtime.GOMAXPROCS(0) {
		w.shards = append(w.shards, &shard{lat: NewHistogram(), connLat: NewHistogram()})
	}
	roles := o.Roles()
	mk := func(role byte, span Span, base int) []*client {
		cs := make([]*client, 0, span.Len())
		for i := span.Lo; i < span.Hi; i++ {
			c := &client{w: w, role: role, idx: i + 1, num: base + i}
			if role == rolePub {
				id := o.clientID(role, c.idx)
				c.topic = []byte(expandTopic(o.Topic, c.idx, id))
				c.payload = make([]byte, o.Size)
				for j := 8; j < len(c.payload); j++ {
					c.payload[j] = 'x'
				}
				if o.Size >= 16 {
					binary.LittleEndian.PutUint64(c.payload[8:], o.RunTag)
				}
			}
			cs = append(cs, c)
		}
		return cs
	}
	w.conns = mk(roleConn, spec.Conns, 0)
	w.subs = mk(roleSub, spec.Subs, roles.Conns)
	w.pubs = mk(rolePub, spec.Pubs, roles.Conns+roles.Subs)
	if w.closedLoop {
		// p2p splits publishers and subscribers alike, so pair i has both
		// ends in the same worker.
		for j, p := range w.pubs {
			p.peer, w.subs[j].peer = w.subs[j], p
		}
	}
	if o.KeepAlive > 0 {
		w.bg.Add(1)
		go w.keepalive()
	}
	return w
}

// engine starts the epoll engine on first use.
func (w *Worker) engine() (*nbio.Engine, error) {
	w.engOnce.Do(func() {
		e := newEngine(len(w.shards))
		if err := e.Start(); err != nil {
			w.engErr = err
			return
		}
		w.eng, w.engAt = e, time.Now()
	})
	return w.eng, w.engErr
}

// newEngine makes the client-side epoll engine: one loop per core, each
// with one 64 KB read buffer shared by all its connections.
func newEngine(loops int) *nbio.Engine {
	// nbio indexes connections by descriptor in a table of MaxOpenFiles
	// entries (16 MB at its default); the process cannot exceed its
	// descriptor limit, so size the table to that.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 0 && lim.Cur < uint64(nbio.MaxOpenFiles) {
		nbio.MaxOpenFiles = int(lim.Cur) + 64
	}
	// nbio logs every engine start and stop at info level.
	logging.SetLevel(logging.LevelError)
	e := nbio.NewEngine(nbio.Config{
		Name:           "cp7bench",
		NPoller:        loops,
		ReadBufferSize: 64 << 10,
	})
	// nbio takes a dialed socket over with dup(2), which drops
	// close-on-exec. Worker processes are started before anything dials,
	// but a process embedding the load generator may fork at any time, and
	// a socket inherited by a child outlives our close: the kernel keeps
	// reporting its epoll events under a descriptor number we reuse.
	e.OnOpen(func(nc *nbio.Conn) { syscall.CloseOnExec(nc.Hash()) })
	e.OnData(func(nc *nbio.Conn, data []byte) {
		if c, ok := nc.Session().(*client); ok {
			c.onData(data)
		}
	})
	e.OnWrittenSize(func(nc *nbio.Conn, _ []byte, n int) {
		if c, ok := nc.Session().(*client); ok {
			c.pending.Add(-int64(n))
		}
	})
	e.OnClose(func(nc *nbio.Conn, err error) {
		if c, ok := nc.Session().(*client); ok {
			c.onClose(err)
		}
	})
	return e
}

func (w *Worker) clientsOf(role byte) []*client {
	switch role {
	case roleConn:
		return w.conns
	case roleSub:
		return w.subs
	}
	return w.pubs
}

// fail counts a failure under its reason.
func (w *Worker) fail(reason string) {
	w.failMu.Lock()
	w.failures[reason]++
	w.failMu.Unlock()
}

// connectPhase tracks one role's clients until each is ready or failed.
type connectPhase struct {
	left atomic.Int64
	slot chan struct{} // a token per client between dial and resolution
	done chan struct{}
}

// resolve is called exactly once per client, by its first move out of the
// pre-ready states.
func (p *connectPhase) resolve() {
	<-p.slot
	if p.left.Add(-1) == 0 {
		close(p.done)
	}
}

// Connect dials every client of role, paced by -R or -i and with at most
// MaxConnecting unresolved at once, and returns when each is ready
// (subscribed, for subscribers) or failed, or when ctx ends.
func (w *Worker) Connect(ctx context.Context, role byte) {
	cs := w.clientsOf(role)
	if len(cs) == 0 {
		return
	}
	ph := &connectPhase{slot: make(chan struct{}, w.opts.MaxConnecting), done: make(chan struct{})}
	ph.left.Store(int64(len(cs)))
	period := PeriodOf(w.opts.ConnRate / float64(w.spec.Procs))
	if period == 0 && w.opts.ConnInterval > 0 {
		period = w.opts.ConnInterval * time.Duration(w.spec.Procs)
	}
	sweepDone := make(chan struct{})
	defer close(sweepDone)
	go w.sweep(cs, sweepDone)

	pacer := NewPacer(time.Now(), period)
	storeMin(&w.firstDial, time.Now().UnixNano())
	for i := 0; i < len(cs); {
		due, _ := pacer.Due(time.Now(), int64(len(cs)-i))
		for ; due > 0; due-- {
			select {
			case ph.slot <- struct{}{}:
			case <-ctx.Done():
				return
			case <-w.ctx.Done():
				return
			}
			c := cs[i]
			i++
			c.phase = ph
			c.dialAt.Store(time.Now().UnixNano())
			c.state.Store(stDialing)
			go w.dial(c)
		}
		if i < len(cs) {
			if d := time.Until(pacer.Next()); d > 0 {
				time.Sleep(d)
			}
		}
	}
	select {
	case <-ph.done:
	case <-ctx.Done():
	case <-w.ctx.Done():
	}
}

// sweep fails clients that have been connecting for longer than the connect
// timeout, so a phase always ends.
func (w *Worker) sweep(cs []*client, done chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	limit := w.opts.ConnectTimeout.Nanoseconds()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		for _, c := range cs {
			st := c.state.Load()
			if st < stDialing || st >= stReady || now-c.dialAt.Load() < limit {
				continue
			}
			switch st {
			case stDialing:
				c.drop("timeout dialing")
			case stConnecting:
				c.drop("timeout waiting for CONNACK")
			case stSubscribing:
				c.drop("timeout waiting for SUBACK")
			}
		}
	}
}

// dial opens c's connection and sends CONNECT.
func (w *Worker) dial(c *client) {
	c.shard = w.shards[c.num%len(w.shards)]
	c.shard.dialed.Add(1)
	conn, sh, err := w.open(c)
	if err != nil {
		c.drop("dial: " + errReason(err))
		return
	}
	if sh >= 0 {
		c.shard = w.shards[sh%len(w.shards)]
	}
	id := w.opts.clientID(c.role, c.idx)
	var p packets.Packet
	p.Type = packets.Connect
	p.Connect.ProtocolName = []byte("MQTT")
	if w.version == packets.V31 {
		p.Connect.ProtocolName = []byte("MQIsdp")
	}
	p.Connect.Level = w.version
	p.Connect.CleanStart = true
	if w.opts.Persistent && c.role == roleSub {
		p.Connect.CleanStart = false
		if w.version == packets.V5 {
			p.Props.SessionExpiry = 3600
			p.Props.Set(packets.PropSessionExpiry)
		}
	}
	p.Connect.KeepAlive = uint16(w.opts.KeepAlive)
	p.Connect.ClientID = []byte(id)
	if w.opts.Username != "" {
		p.Connect.UsernameFlag = true
		p.Connect.Username = []byte(w.opts.Username)
	}
	if w.opts.Password != "" {
		p.Connect.PasswordFlag = true
		p.Connect.Password = []byte(w.opts.Password)
	}
	c.mu.Lock()
	c.conn = conn
	// The sweeper may have given up on this client while it dialed.
	if !c.state.CompareAndSwap(stDialing, stConnecting) {
		c.mu.Unlock()
		_ = conn.Close()
		return
	}
	c.wbuf = packets.Encode(c.wbuf, &p, w.version)
	err = c.writeLocked()
	c.mu.Unlock()
	if err != nil {
		c.onClose(err)
	}
}

// keepalive sends PINGREQ so that runs longer than the keepalive survive.
// Each ready client is pinged once per half keepalive, spread over that
// time a second's worth at a time, instead of all at once.
func (w *Worker) keepalive() {
	defer w.bg.Done()
	period := max(w.opts.KeepAlive/2, 1)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	ping := packets.Packet{Type: packets.Pingreq}
	for tick := 0; ; tick++ {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		for _, cs := range [][]*client{w.conns, w.subs, w.pubs} {
			for i := tick % period; i < len(cs); i += period {
				if c := cs[i]; c.state.Load() == stReady {
					if err := c.send(&ping); err != nil {
						c.onClose(err)
					}
				}
			}
		}
	}
}

// Publish runs the ready publishers from start until end (the zero time:
// until EndPublish), at -I per publisher or flat out.
func (w *Worker) Publish(ctx context.Context, start, end time.Time) {
	var pubs []*client
	for _, c := range w.pubs {
		if c.state.Load() == stReady {
			pubs = append(pubs, c)
		}
	}
	stop := make(chan struct{})
	go func() {
		var t <-chan time.Time
		if !end.IsZero() {
			tm := time.NewTimer(time.Until(end))
			defer tm.Stop()
			t = tm.C
		}
		select {
		case <-t:
		case <-ctx.Done():
		case <-w.ctx.Done():
		case <-w.endPub:
		}
		close(stop)
	}()
	select {
	case <-time.After(time.Until(start)):
	case <-stop:
		return
	}
	w.pubStart.Store(time.Now().UnixNano())
	defer func() { w.pubEnd.Store(time.Now().UnixNano()) }()
	if len(pubs) == 0 {
		<-stop
		return
	}
	switch {
	case w.closedLoop:
		w.refill.Store(true)
		for _, c := range pubs {
			c.topUp()
		}
		<-stop
		w.refill.Store(false)
	case w.opts.Interval > 0:
		w.paced(pubs, stop)
	case w.opts.QoS == 0:
		w.pump(pubs, stop)
	default:
		// Each publisher fills its window now; the ack handler refills it.
		w.refill.Store(true)
		for _, c := range pubs {
			c.publish(w.opts.Inflight)
		}
		<-stop
		w.refill.Store(false)
	}
}

// EndPublish ends the publish phase early.
func (w *Worker) EndPublish() { w.endMu.Do(func() { close(w.endPub) }) }

// paced sends at a fixed rate: each publisher every -I, the publishers'
// phases staggered so the total is one even stream of len(pubs)/I messages
// per second, dealt round-robin. A single goroutine does it on a coarse
// tick; messages owed to one publisher within a tick share a write.
func (w *Worker) paced(pubs []*client, stop chan struct{}) {
	n := int64(len(pubs))
	period := w.opts.Interval / time.Duration(n)
	pacer := NewPacer(time.Now(), max(period, 1))
	// Catching up after a stall is capped at 100 ms worth: a run that fell
	// further behind reports the shortfall as throttled rather than firing
	// a burst no real fleet would.
	burst := max(n, int64(100*time.Millisecond/max(period, 1)))
	sh := w.shards[0]
	const minSleep = 500 * time.Microsecond
	tm := time.NewTimer(0)
	defer tm.Stop()
	for {
		select {
		case <-stop:
			return
		default:
		}
		k0 := pacer.done
		due, skipped := pacer.Due(time.Now(), burst)
		sh.throttled.Add(skipped)
		if due >= n {
			full, rem := due/n, due%n
			for j := int64(0); j < n; j++ {
				k := full
				if j < rem {
					k++
				}
				c := pubs[(k0+j)%n]
				sh.throttled.Add(k - int64(c.publish(int(k))))
			}
		} else {
			for j := int64(0); j < due; j++ {
				c := pubs[(k0+j)%n]
				sh.throttled.Add(1 - int64(c.publish(1)))
			}
		}
		tm.Reset(max(time.Until(pacer.Next()), minSleep))
		select {
		case <-stop:
			return
		case <-tm.C:
		}
	}
}

// pump publishes QoS 0 flat out: it keeps each publisher's socket busy in
// batches, and skips a publisher while nbio still holds a lot unwritten for
// it, so the broker's intake sets the pace instead of client-side queues.
func (w *Worker) pump(pubs []*client, stop chan struct{}) {
	const highWater = 64 << 10
	batch := max(1, min(64, (32<<10)/(w.opts.Size+len(pubs[0].topic)+8)))
	for {
		select {
		case <-stop:
			return
		default:
		}
		busy := false
		for _, c := range pubs {
			if c.pending.Load() < highWater && c.publish(batch) > 0 {
				busy = true
			}
		}
		if !busy {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// Stats sums the worker's counters and histograms.
func (w *Worker) Stats() Stats {
	s := Stats{
		FirstDial: w.firstDial.Load(),
		PubStart:  w.pubStart.Load(),
		PubEnd:    w.pubEnd.Load(),
		Procs:     1,
	}
	s.Latency, s.ConnLatency = &Dist{}, &Dist{}
	for _, sh := range w.shards {
		s.Latency.add(sh.lat)
		s.ConnLatency.add(sh.connLat)
		s.Dialed += sh.dialed.Load()
		s.Connected += sh.connected.Load()
		s.ConnFailed += sh.connFailed.Load()
		s.Dropped += sh.dropped.Load()
		s.Subscribed += sh.subscribed.Load()
		s.Sent += sh.sent.Load()
		s.SentBytes += sh.sentBytes.Load()
		s.Throttled += sh.throttled.Load()
		s.Acked += sh.acked.Load()
		s.Recv += sh.recv.Load()
		s.Strays += sh.strays.Load()
		s.RecvBytes += sh.recvBytes.Load()
		s.LastConnack = max(s.LastConnack, sh.lastConnack.Load())
		s.LastRecv = max(s.LastRecv, sh.lastRecv.Load())
	}
	w.failMu.Lock()
	s.Failures = maps.Clone(w.failures)
	w.failMu.Unlock()
	s.CPUSec, _ = selfUsage()
	if ps, err := ReadProc(os.Getpid()); err == nil {
		s.RSSKB = ps.RSSKB
	}
	return s
}

// Stop disconnects every client (DISCONNECT, then close), stops the event
// loops and returns the final counts.
func (w *Worker) Stop() Stats {
	w.EndPublish()
	w.cancel()
	final := w.Stats()
	disc := packets.Packet{Type: packets.Disconnect}
	for _, cs := range [][]*client{w.conns, w.subs, w.pubs} {
		for _, c := range cs {
			for {
				st := c.state.Load()
				if st == stIdle || st == stFailed || st == stClosed {
					break
				}
				if !c.state.CompareAndSwap(st, stClosed) {
					continue
				}
				if st == stReady {
					_ = c.send(&disc)
				}
				c.closeConn()
				break
			}
		}
	}
	w.bg.Wait()
	w.engOnce.Do(func() {}) // no engine starts from here on
	if w.eng != nil {
		// nbio's event loops clear their stop flag as they begin, so a Stop
		// that comes before they run is lost and leaves them spinning on
		// its wake-up event. A run that stops this soon failed at once;
		// give the loops time to start.
		if d := time.Until(w.engAt.Add(100 * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		w.eng.Stop()
	}
	return final
}

// storeMin lowers a to v if a is unset (0) or larger.
func storeMin(a *atomic.Int64, v int64) {
	for m := a.Load(); m == 0 || v < m; m = a.Load() {
		if a.CompareAndSwap(m, v) {
			return
		}
	}
}
