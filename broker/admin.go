package broker

// admin.go is the broker's surface for packages outside it: the HTTP and
// CoAP gateways publish through it, the admin API and Prometheus read and
// steer the broker through it. Nothing here runs per MQTT message except
// the latency sampler's two atomic loads in route.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/topics"
)

// PublishRequest is a message published from outside MQTT (HTTP, CoAP).
type PublishRequest struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Props are MQTT 5 properties forwarded to v5 subscribers (content
	// type, user properties, ...); nil for none.
	Props *packets.Properties
	// ClientID, Username and Addr are the publisher as authenticated, for
	// the hooks. When an MQTT session of ClientID exists, its No Local
	// subscriptions do not receive the message, as if the client had
	// published over MQTT.
	ClientID string
	Username string
	Addr     netip.Addr
	// CanPublish, when set, is the publisher's ACL, asked again when a
	// hook rewrites the topic (the caller checked the original topic).
	CanPublish func(topic string) bool
}

// Publish errors; gateways map them to 4xx answers.
var (
	ErrInvalidTopic = errors.New("invalid topic: empty, wildcard or not UTF-8")
	ErrSysTopic     = errors.New("topics under $SYS/ belong to the broker")
	ErrInvalidQoS   = errors.New("qos must be 0, 1 or 2")
	ErrTooLarge     = errors.New("message larger than max_packet_size")
	ErrClosing      = errors.New("broker shutting down")
	ErrHookDenied   = errors.New("refused by a hook")
	ErrStore        = errors.New("store write failed")
)

// Publish takes a message through the path an MQTT PUBLISH takes after
// its ACL check (the caller's, with the ACL Authorize gave): the hooks'
// OnPublish, which may refuse or rewrite it, then Server.route (retained
// store, trie match, delivery hooks, sessions and their stored queues).
// It returns when the message is in every matching session's window or
// queue and, when routing wrote to the store, when that write is durable:
// the point where MQTT sends PUBACK or PUBREC.
func (s *Server) Publish(ctx context.Context, r PublishRequest) (routed int, err error) {
	if err := CheckTopic(r.Topic); err != nil {
		return 0, err
	}
	switch {
	case s.closing.Load():
		return 0, ErrClosing
	case r.QoS > 2:
		return 0, ErrInvalidQoS
	case s.cfg.MaxPacketSize > 0 && len(r.Topic)+len(r.Payload) > s.cfg.MaxPacketSize:
		return 0, ErrTooLarge
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var from *session
	if r.ClientID != "" {
		s.sessMu.Lock()
		from = s.sessions[r.ClientID]
		s.sessMu.Unlock()
	}
	s.stats.msgsIn[r.QoS].Add(1)
	if s.hookEv&hooks.Publish != 0 {
		if err := s.hookExternalPublish(ctx, &r); err != nil {
			return 0, err
		}
	}
	p := pub{topic: bytesOf(r.Topic), payload: r.Payload, qos: r.QoS, retain: r.Retain, from: from}
	if r.Props != nil {
		p.props = r.Props
		if r.Props.Has(packets.PropMessageExpiry) {
			p.expires = time.Now().Add(time.Duration(r.Props.MessageExpiry) * time.Second)
		}
	}
	n := s.route(&p)
	if p.failed {
		return n, ErrStore
	}
	if p.stored {
		return n, s.committed(ctx)
	}
	return n, nil
}

// hookExternalPublish asks the hooks about a publish from outside MQTT,
// on the caller's goroutine (an HTTP or CoAP handler, which may wait).
func (s *Server) hookExternalPublish(ctx context.Context, r *PublishRequest) error {
	hctx, cancel := s.hookCtx()
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	// Protocol 0: not MQTT; the hooks see the gateway's client ID and the
	// identity it authenticated.
	hc := &hooks.Client{ClientID: r.ClientID, Username: r.Username, Addr: r.Addr}
	m := hooks.Message{Topic: r.Topic, Payload: clone(r.Payload), QoS: r.QoS, Retain: r.Retain}
	if !s.hooks.OnPublish(hctx, hc, &m) {
		s.stats.hookDenied.Add(1)
		return ErrHookDenied
	}
	if m.Topic != r.Topic {
		if err := CheckTopic(m.Topic); err != nil {
			return err
		}
		if r.CanPublish != nil && !r.CanPublish(m.Topic) {
			return ErrHookDenied
		}
		r.Topic = m.Topic
	}
	r.Payload = m.Payload
	return nil
}

// committed waits until every store write made so far is durable.
func (s *Server) committed(ctx context.Context) error {
	done := make(chan error, 1)
	s.store.Commit().OnDone(func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			s.storeFailed("commit", "", err)
			return ErrStore
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CheckTopic tells whether a client may publish to topic.
func CheckTopic(topic string) error {
	switch {
	case !topics.ValidTopicName(topic):
		return ErrInvalidTopic
	case strings.HasPrefix(topic, "$SYS/"):
		return ErrSysTopic
	}
	return nil
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Uptime                       time.Duration
	Sockets                      int64 // open network connections, CONNECT or not
	Connected                    int64 // clients past CONNECT
	Sessions                     int   // sessions, connected or not
	Connects                     int64 // CONNECTs accepted since start
	Subscriptions                int   // trie entries
	Retained                     int
	MessagesIn, MessagesOut      [3]int64           // PUBLISH packets by QoS
	BytesIn, BytesOut            int64              // bytes on the wire
	Dropped                      [dropReasons]int64 // by reason: DropSlow, DropQueueFull, DropTooLarge
	NoSubscribers                int64              // messages that matched no one
	SubscribeDenied              int64
	ProtocolErrors               int64
	ConnectTimeouts              int64
	KeepaliveTimeouts            int64
	WriteTimeouts                int64
	Inflight, Queued             int64 // QoS 1/2 messages in windows and queues, all sessions
	ObserverDrops                int64 // messages an internal subscriber could not take
	MaxConnections, MaxPacketLen int   // configured caps, 0 for none
	// MQTT authentication and authorisation: CONNECTs refused, PUBLISHes
	// the ACL refused, connections closed when their credentials expired,
	// CONNECTs over the connect rate, clients closed for flooding, and
	// messages the hooks refused.
	AuthFailures, PublishDenied, CredentialsExpired int64
	RateLimited, Floods, HookDenied                 int64
	// Store is the persistence layer's own figures (size on disk, stored
	// queues, writes and fsyncs).
	Store store.Stats
}

// Stats returns the counters now. The session walk that sums windows and
// queues takes the session map's lock once and each session's lock in
// turn; it is for scrapes and admin calls, not for every message.
func (s *Server) Stats() Stats {
	st := &s.stats
	out := Stats{
		Sockets:            st.sockets.Load(),
		Connected:          st.connected.Load(),
		Connects:           st.connects.Load(),
		Subscriptions:      s.subs.Count(),
		Retained:           s.retained.Len(),
		BytesIn:            st.bytesIn.Load(),
		BytesOut:           st.bytesOut.Load(),
		NoSubscribers:      st.noSubscribers.Load(),
		SubscribeDenied:    st.denied.Load(),
		ProtocolErrors:     st.protocolErrors.Load(),
		ConnectTimeouts:    st.connectTimeouts.Load(),
		KeepaliveTimeouts:  st.keepaliveTimeouts.Load(),
		WriteTimeouts:      st.writeTimeouts.Load(),
		ObserverDrops:      st.observerDrops.Load(),
		MaxConnections:     s.cfg.MaxConnections,
		MaxPacketLen:       s.cfg.MaxPacketSize,
		AuthFailures:       st.authFailures.Load(),
		PublishDenied:      st.pubDenied.Load(),
		CredentialsExpired: st.expired.Load(),
		RateLimited:        st.rateLimited.Load(),
		Floods:             st.floods.Load(),
		HookDenied:         st.hookDenied.Load(),
		Store:              s.store.Stats(),
	}
	if !s.started.IsZero() {
		out.Uptime = time.Since(s.started)
	}
	for r := range dropReasons {
		out.Dropped[r] = st.dropped[r].Load()
	}
	for q := range 3 {
		out.MessagesIn[q] = st.msgsIn[q].Load()
		out.MessagesOut[q] = st.msgsOut[q].Load()
	}
	s.sessMu.Lock()
	out.Sessions = len(s.sessions)
	for _, sess := range s.sessions {
		sess.mu.Lock()
		if f := sess.flow; f != nil {
			out.Inflight += int64(len(f.inflight))
			out.Queued += int64(len(f.queue))
		}
		sess.mu.Unlock()
	}
	s.sessMu.Unlock()
	return out
}

// ClientInfo describes one session and its connection, if any.
type ClientInfo struct {
	ID            string `json:"client_id"`
	Connected     bool   `json:"connected"`
	Remote        string `json:"remote,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
	KeepAlive     uint16 `json:"keepalive,omitempty"`
	Subscriptions int    `json:"subscriptions"`
	Inflight      int    `json:"inflight"`
	Queued        int    `json:"queued"` // in memory and, for a persistent session, in the store
	// Expiry is the session expiry interval in seconds; -1 for never.
	Expiry int64 `json:"session_expiry"`
}

// ClientFilter selects clients. Empty fields match everything.
type ClientFilter struct {
	// IDPrefix matches client IDs starting with it.
	IDPrefix string
	// Remote matches connections whose remote address contains it.
	Remote string
	// Connected, when not nil, keeps only connected (true) or offline
	// (false) sessions.
	Connected *bool
}

// Clients lists the sessions matching f, sorted by client ID, skipping
// offset and returning at most limit (0 for all), with the total that
// matched.
func (s *Server) Clients(f ClientFilter, offset, limit int) (page []ClientInfo, total int) {
	s.sessMu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for id, sess := range s.sessions {
		if strings.HasPrefix(id, f.IDPrefix) {
			all = append(all, sess)
		}
	}
	s.sessMu.Unlock()
	infos := make([]ClientInfo, 0, len(all))
	for _, sess := range all {
		ci := sess.info()
		if f.Connected != nil && ci.Connected != *f.Connected {
			continue
		}
		if f.Remote != "" && !strings.Contains(ci.Remote, f.Remote) {
			continue
		}
		infos = append(infos, ci)
	}
	slices.SortFunc(infos, func(a, b ClientInfo) int { return strings.Compare(a.ID, b.ID) })
	total = len(infos)
	offset = min(max(offset, 0), total)
	end := total
	if limit > 0 {
		end = min(offset+limit, total)
	}
	return infos[offset:end], total
}

// Client describes the session of id.
func (s *Server) Client(id string) (ClientInfo, bool) {
	sess := s.session(id)
	if sess == nil {
		return ClientInfo{}, false
	}
	return sess.info(), true
}

func (s *Server) session(id string) *session {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.sessions[id]
}

func (sess *session) info() ClientInfo {
	ci, persistent := sess.infoLocked()
	if persistent {
		// A persistent session's queue lives in the store; read it outside
		// the session lock.
		if n, _, err := sess.srv.store.Queues().Len(sess.id); err == nil {
			ci.Queued += n
		}
	}
	return ci
}

func (sess *session) infoLocked() (ClientInfo, bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	ci := ClientInfo{ID: sess.id, Subscriptions: len(sess.subs), Expiry: int64(sess.expiry)}
	if sess.expiry == neverExpire {
		ci.Expiry = -1
	}
	if f := sess.flow; f != nil {
		ci.Inflight, ci.Queued = len(f.inflight), len(f.queue)
	}
	if c := sess.c; c != nil {
		ci.Connected = true
		ci.Protocol = protocolName(c.version)
		ci.KeepAlive = c.keepAlive
		if a := c.conn.RemoteAddr(); a != nil {
			ci.Remote = a.String()
		}
	}
	return ci, sess.expiry != 0
}

func protocolName(v byte) string {
	switch v {
	case packets.V31:
		return "mqtt3.1"
	case packets.V311:
		return "mqtt3.1.1"
	case packets.V5:
		return "mqtt5"
	}
	return ""
}

var errKicked = &packets.Error{Code: packets.AdministrativeAction, Msg: "disconnected by an administrator"}

// Kick disconnects the client connected as id (a v5 client is told
// 0x98, administrative action); its will is published and a persistent
// session stays, as after any unexpected close. It reports whether a
// client was connected.
func (s *Server) Kick(id string) bool {
	sess := s.session(id)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	c := sess.c
	sess.mu.Unlock()
	if c == nil {
		return false
	}
	c.fail(errKicked)
	return true
}

// SubscriptionInfo is one of a session's subscriptions.
type SubscriptionInfo struct {
	Filter            string `json:"topic"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	ID                uint32 `json:"subscription_id,omitempty"`
}

// Subscriptions lists the subscriptions of the session id.
func (s *Server) Subscriptions(id string) ([]SubscriptionInfo, bool) {
	sess := s.session(id)
	if sess == nil {
		return nil, false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	out := make([]SubscriptionInfo, len(sess.subs))
	for i, sub := range sess.subs {
		out[i] = SubscriptionInfo{Filter: sub.filter, QoS: sub.opts.QoS, NoLocal: sub.opts.NoLocal,
			RetainAsPublished: sub.opts.RetainAsPublished, RetainHandling: sub.opts.RetainHandling, ID: sub.opts.ID}
	}
	return out, true
}

// TopicInfo is a subscribed filter and how many sessions hold it.
type TopicInfo struct {
	Filter      string `json:"topic"`
	Subscribers int    `json:"subscribers"`
}

// Topics lists the subscribed filters, sorted, with their subscriber
// counts; the internal subscribers of gateways count too.
func (s *Server) Topics() []TopicInfo {
	count := map[string]int{}
	s.sessMu.Lock()
	for _, sess := range s.sessions {
		sess.mu.Lock()
		for _, sub := range sess.subs {
			count[sub.filter]++
		}
		sess.mu.Unlock()
	}
	s.sessMu.Unlock()
	s.observers.Range(func(k, _ any) bool {
		sess := k.(*session)
		sess.mu.Lock()
		for _, sub := range sess.subs {
			count[sub.filter]++
		}
		sess.mu.Unlock()
		return true
	})
	out := make([]TopicInfo, 0, len(count))
	for f, n := range count {
		out = append(out, TopicInfo{f, n})
	}
	slices.SortFunc(out, func(a, b TopicInfo) int { return strings.Compare(a.Filter, b.Filter) })
	return out
}

// RetainedMessage is a retained message as the admin API shows it.
type RetainedMessage struct {
	Topic   string
	Payload []byte
	QoS     byte
	Expires time.Time
}

// Retained lists retained messages matching filter ("#" for all but
// $-topics), sorted by topic.
func (s *Server) Retained(filter string) ([]RetainedMessage, error) {
	if !topics.ValidFilter(filter) {
		return nil, fmt.Errorf("invalid topic filter %q", filter)
	}
	now := time.Now()
	var out []RetainedMessage
	s.retained.Match(filter, func(topic string, m *Message) bool {
		if !m.Expired(now) {
			out = append(out, RetainedMessage{Topic: topic, Payload: m.Payload, QoS: m.QoS, Expires: m.Expires})
		}
		return true
	})
	slices.SortFunc(out, func(a, b RetainedMessage) int { return strings.Compare(a.Topic, b.Topic) })
	return out, nil
}

// RetainedGet returns the retained message of topic.
func (s *Server) RetainedGet(topic string) (RetainedMessage, bool) {
	if !topics.ValidTopicName(topic) {
		return RetainedMessage{}, false
	}
	var out RetainedMessage
	found := false
	// A topic name without wildcards matches only itself.
	s.retained.Match(topic, func(t string, m *Message) bool {
		if !m.Expired(time.Now()) {
			out, found = RetainedMessage{Topic: t, Payload: m.Payload, QoS: m.QoS, Expires: m.Expires}, true
		}
		return false
	})
	return out, found
}

// RetainedDelete removes the retained message of topic from memory and
// the store, reporting whether there was one. Unlike publishing an empty
// retained message, it sends nothing to subscribers.
func (s *Server) RetainedDelete(ctx context.Context, topic string) (bool, error) {
	if !topics.ValidTopicName(topic) || !s.retained.Delete(topic) {
		return false, nil
	}
	if err := s.store.Retained().Delete(topic); err != nil {
		s.storeFailed("delete retained", "", err)
		return true, ErrStore
	}
	return true, s.committed(ctx)
}

// Runtime describes the process.
type Runtime struct {
	Version    string    `json:"version"`
	GoVersion  string    `json:"go_version"`
	Started    time.Time `json:"started"`
	Uptime     float64   `json:"uptime_seconds"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	NumCPU     int       `json:"num_cpu"`
	Goroutines int       `json:"goroutines"`
	HeapAlloc  uint64    `json:"heap_alloc_bytes"`
	HeapSys    uint64    `json:"heap_sys_bytes"`
	Sys        uint64    `json:"sys_bytes"`
	NumGC      uint32    `json:"num_gc"`
	Listeners  []string  `json:"listeners"`
}

// Runtime returns the process's figures now. ReadMemStats stops the
// world briefly; it is an admin call.
func (s *Server) Runtime() Runtime {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := Runtime{
		Version: Version, GoVersion: runtime.Version(), Started: s.started,
		Uptime: time.Since(s.started).Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc, HeapSys: ms.HeapSys, Sys: ms.Sys, NumGC: ms.NumGC,
	}
	for _, l := range s.listeners {
		r.Listeners = append(r.Listeners, l.Addr())
	}
	return r
}

// secretWords mark config keys whose values are never shown; matching by
// name covers keys other packages add later.
var secretWords = []string{"password", "secret", "token", "psk", "private"}

// ConfigRedacted returns the configuration by TOML key, with the values of
// keys naming a password, secret, token or pre-shared key replaced by
// "***" when set.
func (s *Server) ConfigRedacted() map[string]any {
	out := map[string]any{}
	redact(reflect.ValueOf(s.cfg), out)
	return out
}

func redact(v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Anonymous && v.Field(i).Kind() == reflect.Struct {
			redact(v.Field(i), out) // embedded sections are flat in the file too
			continue
		}
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		val := v.Field(i).Interface()
		for _, w := range secretWords {
			if strings.Contains(key, w) {
				if !v.Field(i).IsZero() {
					val = "***"
				}
				break
			}
		}
		out[key] = val
	}
}

// Observer is an internal subscriber: a session that is not in the session
// map, whose connection is a sink handing each message to a function.
// Gateways use it so that a CoAP observer receives MQTT messages without
// an MQTT session, client ID, keepalive or socket of its own.
type Observer struct {
	srv  *Server
	sess *session
	once sync.Once
}

// ObservedMessage is what an observer receives. Payload is its own copy.
type ObservedMessage struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// Observe subscribes fn to filter at QoS 0, starting with the retained
// messages that match. fn runs under the broker's delivery lock for the
// observer, on whichever goroutine routed the message: it must not block
// (hand the message to a buffered channel, drop and return false when it
// is full; a false return is counted as a drop). Close ends the
// subscription.
func (s *Server) Observe(filter string, fn func(ObservedMessage) bool) (*Observer, error) {
	if !topics.ValidFilter(filter) {
		return nil, fmt.Errorf("invalid topic filter %q", filter)
	}
	if s.closing.Load() {
		return nil, ErrClosing
	}
	sess := &session{id: "", srv: s, expiry: 0}
	c := &client{srv: s, sess: sess, version: packets.V311, sendQuota: 1}
	c.conn = &sinkConn{c: c, fn: fn}
	c.set(flagConnected)
	sess.c = c
	opts := topics.Options{QoS: 0}
	s.observers.Store(sess, struct{}{})
	s.subs.Subscribe(filter, sess, opts)
	sess.mu.Lock()
	sess.setSub(filter, opts)
	sess.mu.Unlock()
	s.sendRetained(sess, filter, opts)
	return &Observer{srv: s, sess: sess}, nil
}

// Close ends the subscription; later messages are not handed over.
func (o *Observer) Close() {
	o.once.Do(func() {
		o.srv.observers.Delete(o.sess)
		o.srv.dropSession(o.sess)
	})
}

// Observers is how many internal subscribers there are.
func (s *Server) Observers() int {
	n := 0
	s.observers.Range(func(any, any) bool { n++; return true })
	return n
}

// sinkConn is the connection of an internal subscriber. The broker writes
// encoded PUBLISH packets to it exactly as to a socket; it decodes them
// back and passes them on.
type sinkConn struct {
	c  *client
	fn func(ObservedMessage) bool
}

var errSinkFull = errors.New("observer full")

func (k *sinkConn) Write(b []byte) (int, error) {
	fh, n, err := packets.ReadFixedHeader(b)
	if err != nil || fh.Type != packets.Publish {
		return 0, fmt.Errorf("sink: unexpected packet: %v", err)
	}
	var pk packets.Packet
	if err := packets.Decode(&pk, fh, b[n:], packets.V311); err != nil {
		return 0, err
	}
	if !k.fn(ObservedMessage{Topic: string(pk.Topic), Payload: clone(pk.Payload), Retain: pk.Retain}) {
		k.c.srv.stats.observerDrops.Add(1)
		return 0, errSinkFull
	}
	// The client's write accounting expects the transport to report what
	// it took; the sink takes everything at once.
	k.c.srv.Written(k.c, len(b))
	return len(b), nil
}

func (k *sinkConn) Close() error         { return nil }
func (k *sinkConn) RemoteAddr() net.Addr { return nil }

// latencyBuckets are the upper bounds, in seconds, of the route latency
// histogram: from a microsecond to a second.
var latencyBuckets = []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2, 0.1, 1}

// latency samples how long Server.route takes (match, fan-out, writes to
// the sockets' buffers): the first message routed in each coarse clock
// tick (ten a second) is timed. Per message that costs two loads of atomics
// that change ten times a second, so the cache line stays shared; no
// lock, no allocation, no time.Now on the other messages.
type latency struct {
	tick    atomic.Int64
	buckets [14]atomic.Uint64 // one per bound, and +Inf
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

// start returns the time to measure from, or the zero time when this
// message is not sampled.
func (l *latency) start(tick int64) time.Time {
	old := l.tick.Load()
	if old == tick || !l.tick.CompareAndSwap(old, tick) {
		return time.Time{}
	}
	return time.Now()
}

func (l *latency) observe(from time.Time) {
	if from.IsZero() {
		return
	}
	d := time.Since(from)
	sec := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets, sec)
	l.buckets[i].Add(1)
	l.count.Add(1)
	l.sumNs.Add(uint64(d))
}

// LatencyHistogram is the sampled route latency: cumulative counts per
// upper bound in seconds, as Prometheus wants them.
type LatencyHistogram struct {
	Count   uint64
	Sum     float64 // seconds
	Buckets map[float64]uint64
}

// RouteLatency returns the route latency histogram so far.
func (s *Server) RouteLatency() LatencyHistogram {
	l := &s.latency
	h := LatencyHistogram{Count: l.count.Load(), Sum: float64(l.sumNs.Load()) / 1e9, Buckets: make(map[float64]uint64, len(latencyBuckets))}
	var cum uint64
	for i, b := range latencyBuckets {
		cum += l.buckets[i].Load()
		h.Buckets[b] = cum
	}
	return h
}

func sum3(a *[3]atomic.Int64) int64 { return a[0].Load() + a[1].Load() + a[2].Load() }

// Why a message was not delivered to a subscriber; the index of
// Stats.Dropped. Each drop is counted once, where it happens, so counting
// by reason costs no more than one total did.
const (
	dropSlow      = iota // QoS 0 to a connection with max_write_buffer bytes unsent
	dropQueueFull        // QoS 1/2 to a session whose queue holds max_queued
	dropTooLarge         // larger than the client's Maximum Packet Size
	dropReasons
)

// DropReasons name the reasons, in Stats.Dropped's order.
var DropReasons = [dropReasons]string{"slow_consumer", "queue_full", "too_large"}

func sumDrops(a *[dropReasons]atomic.Int64) int64 {
	var n int64
	for i := range a {
		n += a[i].Load()
	}
	return n
}

// Ready reports whether the broker is serving: started (its clock has
// ticked) and not shutting down.
func (s *Server) Ready() bool { return s.clock.Load() > 0 && !s.closing.Load() }
