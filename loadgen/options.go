// Package loadgen is cp7bench's load generator: MQTT clients on an epoll
// engine (TLS and WebSocket on goroutines), the benchmark scenarios, the
// latency histogram and rate accounting, the worker processes that carry
// runs past one process's socket limit, and the reports and charts.
package loadgen

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Scenario names, one per subcommand.
const (
	ScenarioConn   = "conn"
	ScenarioSub    = "sub"
	ScenarioPub    = "pub"
	ScenarioP2P    = "p2p"
	ScenarioFanout = "fanout"
	ScenarioFanin  = "fanin"
)

// Publish transports for `pub --via`. Only MQTT exists; HTTP and CoAP
// publishing are planned to plug in here as other ways for a publisher to
// hand messages to the broker, reusing the same pacing, payload timestamps
// and reporting, with subscribers still on MQTT.
const (
	ViaMQTT = "mqtt"
	ViaHTTP = "http"
	ViaCoAP = "coap"
)

// Options are a run's settings: the shared flags plus the subcommand's own.
type Options struct {
	Scenario string `json:"scenario"`

	Host      string `json:"host"`
	Port      int    `json:"port"`
	Version   byte   `json:"version"` // 3 (MQTT 3.1), 4 (3.1.1) or 5
	WS        bool   `json:"ws,omitempty"`
	WSPath    string `json:"ws_path,omitempty"`
	TLS       bool   `json:"tls,omitempty"`
	Username  string `json:"username,omitempty"`
	Password  string `json:"-"`
	KeepAlive int    `json:"keepalive"` // seconds
	Prefix    string `json:"prefix"`    // client ID prefix

	// Clients is -c: connections for conn, subscribers for sub, publishers
	// for pub and fanin, pairs for p2p, subscribers for fanout.
	Clients int `json:"clients"`
	// Pubs and Subs are the other side of fanout and fanin.
	Pubs int `json:"pubs,omitempty"`
	Subs int `json:"subs,omitempty"`

	ConnRate       float64       `json:"conn_rate,omitempty"`     // -R, per second over all clients
	ConnInterval   time.Duration `json:"conn_interval,omitempty"` // -i, between two connects
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// MaxConnecting bounds connections between dial and CONNACK (SUBACK
	// for subscribers). The default, 100, is Mosquitto's accept backlog:
	// beyond a broker's backlog SYNs are dropped and retried a second
	// later, and an unpaced run would time the kernel's retransmit timer
	// instead of the broker.
	MaxConnecting int `json:"max_connecting"`

	Topic    string        `json:"topic"`               // -t, with %i and %c
	SubTopic string        `json:"sub_topic,omitempty"` // fanin's wildcard filter
	QoS      byte          `json:"qos"`
	Size     int           `json:"size"`     // payload bytes, timestamp included
	Interval time.Duration `json:"interval"` // -I per publisher; 0 is flat out
	Inflight int           `json:"inflight"` // QoS 1/2 window per publisher
	Retain   bool          `json:"retain,omitempty"`
	// Persistent gives subscribers sessions that outlive the connection
	// (3.x clean session false, v5 session expiry 1 h), so a broker with
	// persistence stores what it delivers to them.
	Persistent bool   `json:"persistent,omitempty"`
	Via        string `json:"via,omitempty"`
	// RunTag goes into bytes 8..16 of payloads of 16 bytes or more, so that
	// p2p, fanout and fanin subscribers ignore an earlier run's messages
	// that a backlogged broker still delivers. Run picks one at random.
	RunTag uint64 `json:"run_tag"`

	Duration time.Duration `json:"duration"` // 0 runs until interrupted
	// Drain bounds how long p2p, fanout and fanin wait for messages still
	// in flight after the publishers stop.
	Drain time.Duration `json:"drain"`

	IfAddrs      []string `json:"ifaddrs,omitempty"`
	ConnsPerProc int      `json:"conns_per_proc"`

	RSSPid int    `json:"rss_pid,omitempty"`
	Name   string `json:"name,omitempty"`   // label in results and charts
	Broker string `json:"broker,omitempty"` // label in results and charts
	Quiet  bool   `json:"-"`
	JSON   bool   `json:"-"`
}

// DefaultConnsPerProc keeps one process under the 20,000 open files it may
// hold here, leaving room for the dial's transient duplicate descriptor,
// pipes and /proc reads.
const DefaultConnsPerProc = 19500

// DefaultOptions are the settings before flags, emqtt-bench's where it has
// one, except that runs are bounded (10 s) and connects unpaced.
func DefaultOptions(scenario string) Options {
	o := Options{
		Scenario:       scenario,
		Host:           "127.0.0.1",
		Port:           1883,
		Version:        4,
		WSPath:         "/mqtt",
		KeepAlive:      300,
		Prefix:         "cp7b",
		Clients:        200,
		ConnectTimeout: 15 * time.Second,
		MaxConnecting:  100,
		QoS:            0,
		Size:           256,
		Interval:       time.Second,
		Inflight:       64,
		Via:            ViaMQTT,
		Duration:       10 * time.Second,
		Drain:          10 * time.Second,
		ConnsPerProc:   DefaultConnsPerProc,
	}
	switch scenario {
	case ScenarioSub, ScenarioPub:
		o.Topic = "bench/%i"
	case ScenarioP2P:
		o.Topic = "bench/p2p/%i"
		o.Interval = 0
	case ScenarioFanout:
		o.Topic = "bench/fanout"
		o.Pubs = 1
		o.Interval = time.Millisecond
	case ScenarioFanin:
		o.Topic = "bench/fanin/%i"
		o.SubTopic = "bench/fanin/#"
		o.Subs = 1
	}
	return o
}

// Roles are how many clients of each kind a run has in total.
type Roles struct {
	Conns, Subs, Pubs int
}

// Total is every socket of the run.
func (r Roles) Total() int { return r.Conns + r.Subs + r.Pubs }

// Roles derives the client counts from the scenario.
func (o *Options) Roles() Roles {
	switch o.Scenario {
	case ScenarioConn:
		return Roles{Conns: o.Clients}
	case ScenarioSub:
		return Roles{Subs: o.Clients}
	case ScenarioPub:
		return Roles{Pubs: o.Clients}
	case ScenarioP2P:
		return Roles{Subs: o.Clients, Pubs: o.Clients}
	case ScenarioFanout:
		return Roles{Subs: o.Clients, Pubs: o.Pubs}
	case ScenarioFanin:
		return Roles{Subs: o.Subs, Pubs: o.Clients}
	}
	return Roles{}
}

// publishes reports whether the run has a publish phase.
func (o *Options) publishes() bool { return o.Roles().Pubs > 0 }

// endToEnd reports whether the run has both ends, so loss is known.
func (o *Options) endToEnd() bool {
	switch o.Scenario {
	case ScenarioP2P, ScenarioFanout, ScenarioFanin:
		return true
	}
	return false
}

// subFilter is the filter subscriber i (1-based) subscribes to.
func (o *Options) subFilter(i int, clientID string) string {
	if o.Scenario == ScenarioFanin {
		return expandTopic(o.SubTopic, i, clientID)
	}
	return expandTopic(o.Topic, i, clientID)
}

// expandTopic fills %i (the client's 1-based index within its role, as in
// emqtt-bench) and %c (its client ID) into a topic template.
func expandTopic(t string, i int, clientID string) string {
	if !strings.Contains(t, "%") {
		return t
	}
	t = strings.ReplaceAll(t, "%i", strconv.Itoa(i))
	return strings.ReplaceAll(t, "%c", clientID)
}

// clientID names client i (1-based) of a role; the role letter keeps a p2p
// publisher and subscriber of the same index apart.
func (o *Options) clientID(role byte, i int) string {
	return o.Prefix + "-" + string(role) + strconv.Itoa(i)
}

// Validate checks the options before anything connects.
func (o *Options) Validate() error {
	switch o.Scenario {
	case ScenarioConn, ScenarioSub, ScenarioPub, ScenarioP2P, ScenarioFanout, ScenarioFanin:
	default:
		return fmt.Errorf("unknown scenario %q", o.Scenario)
	}
	switch {
	case o.Version < 3 || o.Version > 5:
		return errors.New("-V must be 3 (MQTT 3.1), 4 (3.1.1) or 5")
	case o.Clients < 1:
		return errors.New("-c must be at least 1")
	case o.Scenario == ScenarioFanout && o.Pubs < 1:
		return errors.New("--pubs must be at least 1")
	case o.Scenario == ScenarioFanin && o.Subs < 1:
		return errors.New("--subs must be at least 1")
	case o.QoS > 2:
		return errors.New("-q must be 0, 1 or 2")
	case o.Port < 1 || o.Port > 65535:
		return errors.New("-p must be a TCP port")
	case o.KeepAlive < 0 || o.KeepAlive > 65535:
		return errors.New("-k must be 0..65535 seconds")
	case o.Size < 8:
		return errors.New("-s must be at least 8: the payload starts with an 8-byte send timestamp")
	case o.Size > 256<<20:
		return errors.New("-s must be below 256 MB")
	case o.Inflight < 1 || o.Inflight > 65535:
		return errors.New("--inflight must be 1..65535")
	case o.Interval < 0 || o.ConnInterval < 0 || o.ConnRate < 0 || o.Duration < 0 || o.Drain < 0:
		return errors.New("intervals, rates and durations must not be negative")
	case o.ConnsPerProc < 1 || o.ConnsPerProc > DefaultConnsPerProc:
		return fmt.Errorf("--conns-per-proc must be 1..%d", DefaultConnsPerProc)
	case o.MaxConnecting < 1:
		return errors.New("--max-connecting must be at least 1")
	case o.ConnectTimeout <= 0:
		return errors.New("--connect-timeout must be positive")
	case o.Topic == "" && o.Scenario != ScenarioConn:
		return errors.New("-t must not be empty")
	}
	switch o.Via {
	case ViaMQTT:
	case ViaHTTP, ViaCoAP:
		return fmt.Errorf("--via %s: publishing over %s is not built yet; only mqtt is", o.Via, strings.ToUpper(o.Via))
	default:
		return fmt.Errorf("--via %q: want mqtt", o.Via)
	}
	for _, a := range o.IfAddrs {
		if net.ParseIP(a) == nil {
			return fmt.Errorf("--ifaddr %q is not an IP address", a)
		}
	}
	return nil
}

// sourceAddrs are the local addresses clients bind to, assigned round-robin
// by global client number. Each address has ~28,000 ephemeral ports here
// (net.ipv4.ip_local_port_range), so a loopback target gets enough
// 127.0.0.x addresses for 20,000 clients each; elsewhere the kernel picks.
func (o *Options) sourceAddrs() []string {
	if len(o.IfAddrs) > 0 {
		return o.IfAddrs
	}
	ip := net.ParseIP(o.Host)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil
	}
	n := (o.Roles().Total() + 19999) / 20000
	addrs := make([]string, n)
	for i := range addrs {
		// 127.0.0.1 is the usual server address; starting at .2 leaves its
		// ports to the brokers and other local traffic.
		addrs[i] = fmt.Sprintf("127.0.0.%d", 2+i)
	}
	return addrs
}
