package broker

import (
	"encoding/json"
	"strconv"
	"time"
)

// publishSys publishes the broker's $SYS topics as retained QoS 0 messages,
// with Mosquitto's topic names where it has one, so existing dashboards work.
func (s *Server) publishSys() {
	st := &s.stats
	s.sessMu.Lock()
	sessions := len(s.sessions)
	s.sessMu.Unlock()
	up := int64(time.Since(s.started) / time.Second)
	ss := s.store.Stats()
	for _, kv := range [...]struct {
		topic string
		value int64
	}{
		{"$SYS/broker/uptime", up},
		{"$SYS/broker/clients/connected", st.connected.Load()},
		{"$SYS/broker/clients/total", int64(sessions)},
		{"$SYS/broker/clients/disconnected", int64(sessions) - st.connected.Load()},
		{"$SYS/broker/connections/total", st.connects.Load()},
		{"$SYS/broker/messages/received", sum3(&st.msgsIn)},
		{"$SYS/broker/messages/sent", sum3(&st.msgsOut)},
		{"$SYS/broker/messages/dropped", sumDrops(&st.dropped)},
		{"$SYS/broker/bytes/received", st.bytesIn.Load()},
		{"$SYS/broker/bytes/sent", st.bytesOut.Load()},
		{"$SYS/broker/subscriptions/count", int64(s.subs.Count())},
		{"$SYS/broker/retained messages/count", int64(s.retained.Len())},
		{"$SYS/broker/subscriptions/denied", st.denied.Load()},
		{"$SYS/broker/messages/no_subscribers", st.noSubscribers.Load()},
		{"$SYS/broker/errors/protocol", st.protocolErrors.Load()},
		{"$SYS/broker/errors/connect_timeout", st.connectTimeouts.Load()},
		{"$SYS/broker/errors/keepalive_timeout", st.keepaliveTimeouts.Load()},
		{"$SYS/broker/errors/write_timeout", st.writeTimeouts.Load()},
		// The store's own figures: dropped counts full persistent queues
		// over the store's whole life (also in messages/dropped since start).
		{"$SYS/broker/store/queued", ss.Queued},
		{"$SYS/broker/store/queued_bytes", ss.QueuedBytes},
		{"$SYS/broker/store/dropped", ss.Dropped},
		{"$SYS/broker/store/expired", ss.Expired},
		{"$SYS/broker/store/disk_bytes", int64(ss.DiskBytes)},
		// Writes per fsync is the group commit at work.
		{"$SYS/broker/store/writes", ss.Writes},
		{"$SYS/broker/store/syncs", ss.Syncs},
		{"$SYS/broker/auth/refused", st.authFailures.Load()},
		{"$SYS/broker/auth/expired", st.expired.Load()},
		{"$SYS/broker/auth/rate_limited", st.rateLimited.Load()},
		{"$SYS/broker/publish/denied", st.pubDenied.Load()},
		{"$SYS/broker/flood/disconnected", st.floods.Load()},
		{"$SYS/broker/bans/added", st.bans.Load()},
		{"$SYS/broker/bans/count", int64(s.banCount())},
		{"$SYS/broker/hooks/busy", st.hookBusy.Load()},
		{"$SYS/broker/hooks/denied", st.hookDenied.Load()},
		{"$SYS/broker/delayed/count", int64(s.delayedCount())},
		{"$SYS/broker/delayed/refused", st.delayedRefused.Load()},
	} {
		s.publishInternal(kv.topic, []byte(strconv.FormatInt(kv.value, 10)))
	}
	s.publishInternal("$SYS/broker/version", []byte(Version))
	s.publishGroups()
}

// publishGroups publishes the shared groups, their members and queue
// depths as one JSON document (a filter can hold '+' and '#', which a topic
// name cannot, so there is no topic per group).
func (s *Server) publishGroups() {
	gs := s.SharedGroups()
	s.publishInternal("$SYS/broker/shared/count", []byte(strconv.Itoa(len(gs))))
	b, err := json.Marshal(gs)
	if err != nil {
		return
	}
	s.publishInternal("$SYS/broker/shared/groups", b)
}

// publishInternal routes a retained QoS 0 message from the broker itself.
func (s *Server) publishInternal(topic string, payload []byte) {
	p := pub{topic: bytesOf(topic), payload: payload, retain: true}
	s.route(&p)
}
