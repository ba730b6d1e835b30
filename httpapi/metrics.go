package httpapi

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/gateway"
)

// metrics is /metrics. The broker's figures are read from its atomics when
// Prometheus scrapes (a Collector), so the broker does no work per message
// for them.
type metrics struct {
	reg                *prometheus.Registry
	requests           *prometheus.HistogramVec
	adminLoginFailures atomic.Int64
}

// newMetrics registers the broker's collector and the counters of the
// gateway publishers, by listener name.
func newMetrics(b *broker.Server, pubs map[string]*gateway.Publisher) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "coolpy7_http_request_duration_seconds", Help: "HTTP requests by route and status, and how long they took.",
		Buckets: []float64{1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5, 2},
	}, []string{"route", "code"})
	m.reg.MustRegister(m.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&brokerCollector{b: b, pubs: pubs, logins: &m.adminLoginFailures})
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statusWriter remembers the status for the request histogram.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (m *metrics) timed(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("coolpy7_"+name, help, labels, nil)
}

var (
	dSockets       = desc("connections", "Open network connections, whether past CONNECT or not.")
	dConnected     = desc("clients_connected", "Clients connected (past CONNECT).")
	dSessions      = desc("sessions", "Sessions, connected or not.")
	dConnects      = desc("connects_total", "CONNECTs accepted.")
	dSubs          = desc("subscriptions", "Subscriptions in the topic trie.")
	dRetained      = desc("retained_messages", "Retained messages.")
	dMsgsIn        = desc("messages_received_total", "PUBLISH messages received, by QoS (MQTT and gateways).", "qos")
	dMsgsOut       = desc("messages_sent_total", "PUBLISH messages sent to subscribers, by QoS.", "qos")
	dBytesIn       = desc("bytes_received_total", "Bytes received on MQTT connections.")
	dBytesOut      = desc("bytes_sent_total", "Bytes sent on MQTT connections.")
	dDropped       = desc("messages_dropped_total", "Messages not delivered, by reason: slow_consumer (QoS 0 to a connection over max_write_buffer), queue_full (max_queued), too_large (over the client's Maximum Packet Size), no_subscribers (matched no one), observer_full (a CoAP observer could not keep up).", "reason")
	dDenied        = desc("subscriptions_denied_total", "Subscriptions refused.")
	dProtoErr      = desc("protocol_errors_total", "Connections closed for a protocol error.")
	dTimeouts      = desc("timeouts_total", "Connections closed by a timeout, by kind.", "kind")
	dInflight      = desc("inflight_messages", "QoS 1/2 messages sent and not yet acknowledged, all sessions.")
	dQueued        = desc("queued_messages", "Messages waiting in the in-memory session queues, all sessions (queue depth; stored queues are store_queued_messages).")
	dAuthFail      = desc("auth_failures_total", "Publishers refused for their credentials, by listener.", "listener")
	dACLDenied     = desc("acl_denied_total", "Publishes refused by the ACL, by listener.", "listener")
	dGatewayPub    = desc("gateway_published_total", "Messages published through a gateway, by listener and QoS.", "listener", "qos")
	dRouteLatency  = desc("route_latency_seconds", "Time to route one message (match, fan-out, socket writes), sampled: the first message of each tenth of a second.")
	dUptime        = desc("uptime_seconds", "Seconds since the broker started.")
	dAdminLoginErr = desc("admin_login_failures_total", "Failed admin logins.")
	dExpired       = desc("credentials_expired_total", "MQTT connections closed when their credentials (a token's exp) lapsed.")
	dRateLimited   = desc("connects_rate_limited_total", "CONNECTs refused by the per-address connect rate.")
	dFloods        = desc("floods_total", "Clients disconnected for PINGREQ or PUBLISH floods (-pl, -psl).")
	dHookDenied    = desc("hook_denied_total", "PUBLISH, SUBSCRIBE and UNSUBSCRIBE refused by the hooks.")
	dStoreDisk     = desc("store_disk_bytes", "Space the store takes on disk; 0 in memory.")
	dStoreQueued   = desc("store_queued_messages", "Messages in the stored queues of persistent sessions.")
	dStoreQBytes   = desc("store_queued_bytes", "Bytes of the messages in stored queues.")
	dStoreWrites   = desc("store_writes_total", "Store write operations.")
	dStoreSyncs    = desc("store_syncs_total", "Store fsyncs (writes per fsync is the group commit at work).")
)

type brokerCollector struct {
	b      *broker.Server
	pubs   map[string]*gateway.Publisher
	logins *atomic.Int64
}

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dSockets, dConnected, dSessions, dConnects, dSubs, dRetained, dMsgsIn, dMsgsOut,
		dBytesIn, dBytesOut, dDropped, dDenied, dProtoErr, dTimeouts, dInflight, dQueued, dAuthFail, dACLDenied,
		dGatewayPub, dRouteLatency, dUptime, dAdminLoginErr, dExpired, dRateLimited, dFloods, dHookDenied,
		dStoreDisk, dStoreQueued, dStoreQBytes, dStoreWrites, dStoreSyncs} {
		ch <- d
	}
}

var qosLabels = [3]string{"0", "1", "2"}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(dSockets, float64(st.Sockets))
	gauge(dConnected, float64(st.Connected))
	gauge(dSessions, float64(st.Sessions))
	counter(dConnects, float64(st.Connects))
	gauge(dSubs, float64(st.Subscriptions))
	gauge(dRetained, float64(st.Retained))
	for q := range 3 {
		counter(dMsgsIn, float64(st.MessagesIn[q]), qosLabels[q])
		counter(dMsgsOut, float64(st.MessagesOut[q]), qosLabels[q])
	}
	counter(dBytesIn, float64(st.BytesIn))
	counter(dBytesOut, float64(st.BytesOut))
	for r, name := range broker.DropReasons {
		counter(dDropped, float64(st.Dropped[r]), name)
	}
	counter(dDropped, float64(st.NoSubscribers), "no_subscribers")
	counter(dDropped, float64(st.ObserverDrops), "observer_full")
	counter(dDenied, float64(st.SubscribeDenied))
	counter(dProtoErr, float64(st.ProtocolErrors))
	counter(dTimeouts, float64(st.ConnectTimeouts), "connect")
	counter(dTimeouts, float64(st.KeepaliveTimeouts), "keepalive")
	counter(dTimeouts, float64(st.WriteTimeouts), "write")
	gauge(dInflight, float64(st.Inflight))
	gauge(dQueued, float64(st.Queued))
	gauge(dUptime, st.Uptime.Seconds())
	for listener, p := range c.pubs {
		pc := p.Counts()
		counter(dAuthFail, float64(pc.AuthFailures), listener)
		counter(dACLDenied, float64(pc.ACLDenied), listener)
		for q := range 3 {
			counter(dGatewayPub, float64(pc.Published[q]), listener, qosLabels[q])
		}
	}
	counter(dAdminLoginErr, float64(c.logins.Load()))
	counter(dAuthFail, float64(st.AuthFailures), "mqtt")
	counter(dACLDenied, float64(st.PublishDenied), "mqtt")
	counter(dExpired, float64(st.CredentialsExpired))
	counter(dRateLimited, float64(st.RateLimited))
	counter(dFloods, float64(st.Floods))
	counter(dHookDenied, float64(st.HookDenied))
	gauge(dStoreDisk, float64(st.Store.DiskBytes))
	gauge(dStoreQueued, float64(st.Store.Queued))
	gauge(dStoreQBytes, float64(st.Store.QueuedBytes))
	counter(dStoreWrites, float64(st.Store.Writes))
	counter(dStoreSyncs, float64(st.Store.Syncs))
	h := c.b.RouteLatency()
	ch <- prometheus.MustNewConstHistogram(dRouteLatency, h.Count, h.Sum, h.Buckets)
}
