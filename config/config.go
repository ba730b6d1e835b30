// Package config holds the broker's settings: their defaults, the TOML
// config file (-c) and the command-line flags, which override the file.
package config

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/coolpy7/coolpy7/store"
)

// Config is every broker setting. Durations in the file and on the command
// line are whole seconds, as in the original Coolpy7's flags.
type Config struct {
	// Listen is the MQTT TCP address (-l). Empty turns the listener off.
	Listen string `toml:"listen"`
	// TLSListen is the MQTT over TLS address (-tls), :8883 by convention;
	// WSListen (-ws, :8083) and WSSListen (-wss, :8084) are MQTT over
	// WebSocket and secure WebSocket, on any path (clients use /mqtt).
	// Empty turns a listener off; all three are off by default.
	TLSListen string `toml:"tls_listen"`
	WSListen  string `toml:"ws_listen"`
	WSSListen string `toml:"wss_listen"`
	// TLSCert and TLSKey are the PEM certificate (its intermediates after
	// it) and private key of the TLS and WSS listeners (-tlscert, -tlskey).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSClientAuth asks TLS and WSS clients for a certificate (-tlsauth):
	// none (or empty), optional (verified when sent) or require. A
	// client's certificate must chain to a CA in TLSClientCA (-tlsca, a PEM
	// bundle); its Subject CN identifies the client (transport.CommonName).
	TLSClientAuth string `toml:"tls_client_auth"`
	TLSClientCA   string `toml:"tls_client_ca"`
	// WSOrigins lists the Origin values (scheme://host[:port]) browsers may
	// open WebSocket connections from (-wsorigins, comma-separated); empty
	// or "*" allows any.
	WSOrigins []string `toml:"ws_origins"`
	// MaxProcs sets GOMAXPROCS (-max); 0 leaves Go's default.
	MaxProcs int `toml:"max_procs"`
	// IOTimeout is how long a write may stay blocked before the connection
	// is dropped (-t).
	IOTimeout Seconds `toml:"io_timeout"`
	// ConnectTimeout closes a connection that has not sent CONNECT (-nt).
	ConnectTimeout Seconds `toml:"connect_timeout"`
	// MaxConnections caps concurrent connections (-mc); 0 is unlimited.
	MaxConnections int `toml:"max_connections"`
	// MaxPacketSize caps an inbound packet's size in bytes (-mpl); 0 is the
	// protocol maximum. v5 clients are told it in CONNACK.
	MaxPacketSize int `toml:"max_packet_size"`
	// MaxKeepAlive caps the keepalive a client may ask for; a v5 client
	// asking for more (or for 0) is told Server Keep Alive. 0 is no cap.
	MaxKeepAlive int `toml:"max_keepalive"`
	// MaxSessionExpiry caps the session expiry interval a v5 client may ask
	// for, and is the expiry of v3 persistent sessions. 0 means never.
	MaxSessionExpiry Seconds `toml:"max_session_expiry"`
	// ReceiveMaximum is how many QoS 1/2 PUBLISHes a client may have
	// unacknowledged towards the broker (v5 Receive Maximum).
	ReceiveMaximum int `toml:"receive_maximum"`
	// MaxInflight bounds QoS 1/2 messages in flight to a client when the
	// client does not set a lower Receive Maximum.
	MaxInflight int `toml:"max_inflight"`
	// MaxQueued bounds each session's queue of messages waiting to be sent.
	MaxQueued int `toml:"max_queued"`
	// TopicAliasMaximum is how many topic aliases a v5 client may use
	// towards the broker, and how many the broker assigns towards it.
	TopicAliasMaximum int `toml:"topic_alias_maximum"`
	// MaxWriteBuffer is how many bytes may wait in a connection's socket
	// buffer before QoS 0 messages to it are dropped and others queued.
	MaxWriteBuffer int `toml:"max_write_buffer"`
	// SysInterval is how often $SYS topics are published; 0 turns them off.
	SysInterval Seconds `toml:"sys_interval"`
	// DenySubscribe lists topic filters no client may subscribe to,
	// whatever the ACL (acl_file) says.
	DenySubscribe []string `toml:"deny_subscribe"`
	// ObscureNotAuthorized answers a v5 subscription that is not allowed
	// with 0x80 (unspecified error) instead of 0x87 (not authorized), so as
	// not to tell a client which topics exist; the Paho suite expects 0x80.
	ObscureNotAuthorized bool `toml:"obscure_not_authorized"`
	// PprofListen serves net/http/pprof on this address when set, for
	// profiling a running broker; keep it on loopback.
	PprofListen string `toml:"pprof_listen"`
	// SharedStrategy is how a shared group picks the member that gets a
	// message (-shared): round_robin (default), random, sticky (the same
	// member until it goes offline or its queue fills), hash_clientid (by
	// publisher) or hash_topic. SharedStrategies overrides it per group
	// name, as a TOML table {group = "strategy"}.
	SharedStrategy   string            `toml:"shared_strategy"`
	SharedStrategies map[string]string `toml:"shared_strategies"`
	// DelayedMax is the longest delay "$delayed/{seconds}/{topic}" may ask
	// for, and DelayedMaxCount how many delayed messages may wait at once;
	// past either the publish is refused (v5: reason code 0x97). A count
	// of 0 turns delayed publish off.
	DelayedMax      Seconds `toml:"delayed_max"`
	DelayedMaxCount int     `toml:"delayed_max_count"`
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`

	// DataDir is the on-disk store's directory (-data); empty keeps
	// persistent sessions, retained messages and wills in memory only.
	DataDir string `toml:"data_dir"`
	// Durability is when a stored QoS 1/2 PUBLISH is acknowledged
	// (-durability): "durable" after the fsync that covers it (writes are
	// group-committed), or an interval such as "100ms" to acknowledge at
	// once and fsync that often.
	Durability string `toml:"durability"`
	// MaxQueuedBytes bounds each persistent session's queue by the size of
	// its messages (-mqb), on top of MaxQueued; 0 is no byte bound.
	MaxQueuedBytes int64 `toml:"max_queued_bytes"`
	// QueuePolicy is what a full persistent queue does (-qp): refuse-newest
	// or drop-oldest.
	QueuePolicy string `toml:"queue_policy"`
	// The original Coolpy7's TTLs, in seconds, 0 for never: queued
	// messages (-ot), disconnected sessions with their subscriptions
	// (-st), inbound QoS 2 packet IDs waiting for PUBREL (-it), wills
	// published late after a restart (-wt) and retained messages (-rt).
	MessageTTL  Seconds `toml:"message_ttl"`
	SessionTTL  Seconds `toml:"session_ttl"`
	PacketIDTTL Seconds `toml:"packet_id_ttl"`
	WillTTL     Seconds `toml:"will_ttl"`
	RetainedTTL Seconds `toml:"retained_ttl"`
	// Repair (-repair, command line only) salvages the store in DataDir
	// and exits instead of serving.
	Repair bool `toml:"-"`
	AuthConfig
	// Gateway is HTTP and CoAP (gateway.go).
	Gateway
}

// Seconds is a duration written as whole seconds.
type Seconds int

// Duration converts s to a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// Default returns the embedded defaults: the original's where it had one.
func Default() Config {
	return Config{
		Listen:            ":1883",
		IOTimeout:         60,
		ConnectTimeout:    2,
		ReceiveMaximum:    1024,
		MaxInflight:       1024,
		MaxQueued:         1000,
		TopicAliasMaximum: 65535,
		MaxWriteBuffer:    256 << 10,
		SysInterval:       10,
		SharedStrategy:    "round_robin",
		DelayedMax:        7 * 24 * 3600,
		DelayedMaxCount:   100000,
		LogLevel:          "info",
		LogFormat:         "text",
		DataDir:           "./data",
		Durability:        "durable",
		QueuePolicy:       "refuse-newest",
		AuthConfig:        defaultAuth(),
		Gateway:           defaultGateway(),
	}
}

// Load reads the config file at path (TOML) over the defaults.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return c, c.Validate()
}

// Validate rejects settings the broker cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.MaxPacketSize < 0 || c.MaxPacketSize > 268435455+5:
		return fmt.Errorf("max_packet_size %d out of range", c.MaxPacketSize)
	case c.MaxKeepAlive < 0 || c.MaxKeepAlive > 65535:
		return fmt.Errorf("max_keepalive %d out of range 0..65535", c.MaxKeepAlive)
	case c.ReceiveMaximum < 1 || c.ReceiveMaximum > 65535:
		return fmt.Errorf("receive_maximum %d out of range 1..65535", c.ReceiveMaximum)
	case c.MaxInflight < 1 || c.MaxInflight > 65535:
		return fmt.Errorf("max_inflight %d out of range 1..65535", c.MaxInflight)
	case c.MaxQueued < 1:
		return fmt.Errorf("max_queued %d must be at least 1", c.MaxQueued)
	case c.TopicAliasMaximum < 0 || c.TopicAliasMaximum > 65535:
		return fmt.Errorf("topic_alias_maximum %d out of range 0..65535", c.TopicAliasMaximum)
	case c.ConnectTimeout < 0 || c.IOTimeout < 0 || c.SysInterval < 0 || c.MaxSessionExpiry < 0:
		return fmt.Errorf("timeouts must not be negative")
	case c.DelayedMax < 0 || c.DelayedMaxCount < 0:
		return fmt.Errorf("delayed_max and delayed_max_count must not be negative")
	case c.MaxConnections < 0:
		return fmt.Errorf("max_connections must not be negative")
	case c.MaxQueuedBytes < 0:
		return fmt.Errorf("max_queued_bytes must not be negative")
	case c.MessageTTL < 0 || c.SessionTTL < 0 || c.PacketIDTTL < 0 || c.WillTTL < 0 || c.RetainedTTL < 0:
		return fmt.Errorf("TTLs (-ot -st -it -wt -rt) must not be negative")
	case c.Repair && c.DataDir == "":
		return fmt.Errorf("-repair needs a data directory (-data)")
	case (c.TLSListen != "" || c.WSSListen != "") && (c.TLSCert == "" || c.TLSKey == ""):
		return fmt.Errorf("tls_listen and wss_listen need tls_cert and tls_key")
	}
	switch c.TLSClientAuth {
	case "", "none":
		if c.TLSClientCA != "" {
			return fmt.Errorf("tls_client_ca needs tls_client_auth optional or require")
		}
	case "optional", "require":
		if c.TLSClientCA == "" {
			return fmt.Errorf("tls_client_auth %s needs tls_client_ca", c.TLSClientAuth)
		}
	default:
		return fmt.Errorf("tls_client_auth %q: want none, optional or require", c.TLSClientAuth)
	}
	if _, err := store.ParseDurability(c.Durability); err != nil {
		return err
	}
	if _, err := store.ParsePolicy(c.QueuePolicy); err != nil {
		return err
	}
	if err := c.AuthConfig.validate(); err != nil {
		return err
	}
	if c.SharedStrategy != "" && !ValidStrategy(c.SharedStrategy) { // empty is the default
		return fmt.Errorf("shared_strategy %q: want one of %s", c.SharedStrategy, strings.Join(Strategies, ", "))
	}
	for g, st := range c.SharedStrategies {
		if !ValidStrategy(st) {
			return fmt.Errorf("shared_strategies.%s = %q: want one of %s", g, st, strings.Join(Strategies, ", "))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log_format %q: want text or json", c.LogFormat)
	}
	return c.Gateway.validate()
}

// Strategies are the shared_strategy values, the default first.
var Strategies = []string{"round_robin", "random", "sticky", "hash_clientid", "hash_topic"}

// ValidStrategy reports whether s names a shared-group strategy.
func ValidStrategy(s string) bool {
	for _, v := range Strategies {
		if s == v {
			return true
		}
	}
	return false
}

// Parse builds the configuration from command-line args: the file named by
// -c first, then every flag given explicitly on top of it.
func Parse(name string, args []string) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var file string
	fs.StringVar(&file, "c", "", "config `file` (TOML); flags given on the command line override it")
	d := Default()
	// Flags are bound to a scratch copy so that only those set explicitly
	// are laid over the file's values afterwards.
	f := d
	fs.StringVar(&f.Listen, "l", d.Listen, "MQTT TCP listen `address`; empty turns it off")
	fs.StringVar(&f.TLSListen, "tls", d.TLSListen, "MQTT over TLS listen `address`, e.g. :8883; empty is off")
	fs.StringVar(&f.WSListen, "ws", d.WSListen, "MQTT over WebSocket listen `address`, e.g. :8083 (any path; clients use /mqtt); empty is off")
	fs.StringVar(&f.WSSListen, "wss", d.WSSListen, "MQTT over secure WebSocket listen `address`, e.g. :8084; empty is off")
	fs.StringVar(&f.TLSCert, "tlscert", d.TLSCert, "PEM certificate `file` for -tls and -wss")
	fs.StringVar(&f.TLSKey, "tlskey", d.TLSKey, "PEM private key `file` for -tls and -wss")
	fs.StringVar(&f.TLSClientAuth, "tlsauth", d.TLSClientAuth, "client certificates for -tls and -wss: none, optional or require")
	fs.StringVar(&f.TLSClientCA, "tlsca", d.TLSClientCA, "PEM `file` of the CAs client certificates must chain to")
	wsOrigins := fs.String("wsorigins", "", "comma-separated `origins` browsers may connect from over -ws/-wss; empty allows any")
	fs.IntVar(&f.MaxProcs, "max", d.MaxProcs, "GOMAXPROCS; 0 keeps Go's default (one per core)")
	fs.IntVar((*int)(&f.IOTimeout), "t", int(d.IOTimeout), "`seconds` a blocked write may wait before the connection is dropped")
	fs.IntVar((*int)(&f.ConnectTimeout), "nt", int(d.ConnectTimeout), "`seconds` to wait for CONNECT on a new connection")
	fs.IntVar(&f.MaxConnections, "mc", d.MaxConnections, "maximum concurrent connections; 0 is unlimited")
	fs.IntVar(&f.MaxPacketSize, "mpl", d.MaxPacketSize, "maximum inbound packet size in `bytes`; 0 is the protocol maximum (256 MB)")
	fs.IntVar(&f.MaxKeepAlive, "mka", d.MaxKeepAlive, "maximum keepalive `seconds` a client may use (v5 Server Keep Alive); 0 is no cap")
	fs.IntVar((*int)(&f.MaxSessionExpiry), "mse", int(d.MaxSessionExpiry), "maximum session expiry `seconds`; 0 never expires persistent sessions")
	fs.IntVar(&f.MaxQueued, "mq", d.MaxQueued, "maximum queued messages per session")
	fs.IntVar((*int)(&f.SysInterval), "sys", int(d.SysInterval), "`seconds` between $SYS publications; 0 turns $SYS off")
	fs.StringVar(&f.SharedStrategy, "shared", d.SharedStrategy, "shared subscription `strategy`: round_robin, random, sticky, hash_clientid or hash_topic")
	fs.StringVar(&f.PprofListen, "pprof", d.PprofListen, "serve net/http/pprof on this `address` (keep it on loopback); empty is off")
	fs.StringVar(&f.LogLevel, "log", d.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "logfmt", d.LogFormat, "log `format`: text or json")
	fs.StringVar(&f.DataDir, "data", d.DataDir, "store `directory` for persistent sessions, queues, retained messages and wills; empty keeps them in memory")
	fs.StringVar(&f.Durability, "durability", d.Durability, "`durable` acknowledges stored QoS 1/2 messages after fsync (group commit); a duration such as 100ms acknowledges at once and fsyncs that often")
	fs.Int64Var(&f.MaxQueuedBytes, "mqb", d.MaxQueuedBytes, "maximum `bytes` of messages queued per persistent session; 0 is no byte bound")
	fs.StringVar(&f.QueuePolicy, "qp", d.QueuePolicy, "full-queue `policy`: refuse-newest or drop-oldest")
	fs.IntVar((*int)(&f.MessageTTL), "ot", int(d.MessageTTL), "`seconds` a message may wait in a queue; 0 is forever")
	fs.IntVar((*int)(&f.SessionTTL), "st", int(d.SessionTTL), "`seconds` a disconnected session and its subscriptions are kept; 0 is forever")
	fs.IntVar((*int)(&f.PacketIDTTL), "it", int(d.PacketIDTTL), "`seconds` an inbound QoS 2 packet ID waits for PUBREL; 0 is forever")
	fs.IntVar((*int)(&f.WillTTL), "wt", int(d.WillTTL), "`seconds` after its time a will is still published after a restart; 0 is forever")
	fs.IntVar((*int)(&f.RetainedTTL), "rt", int(d.RetainedTTL), "`seconds` a retained message is kept; 0 is forever")
	fs.BoolVar(&f.Repair, "repair", false, "salvage the store in -data (it must not be in use) and exit")
	setAuth := authFlags(fs, &f.AuthConfig)
	gateway := gatewayFlags(fs, &d.Gateway, &f.Gateway)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nCoolpy7 MQTT broker (MQTT 3.1, 3.1.1 and 5.0).\n\nFlags:\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return d, err
	}
	if fs.NArg() > 0 {
		return d, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c, err := Load(file)
	if err != nil {
		return c, err
	}
	fs.Visit(func(fl *flag.Flag) {
		setAuth(fl.Name, &c.AuthConfig)
		switch fl.Name {
		case "l":
			c.Listen = f.Listen
		case "tls":
			c.TLSListen = f.TLSListen
		case "ws":
			c.WSListen = f.WSListen
		case "wss":
			c.WSSListen = f.WSSListen
		case "tlscert":
			c.TLSCert = f.TLSCert
		case "tlskey":
			c.TLSKey = f.TLSKey
		case "tlsauth":
			c.TLSClientAuth = f.TLSClientAuth
		case "tlsca":
			c.TLSClientCA = f.TLSClientCA
		case "wsorigins":
			c.WSOrigins = nil
			for o := range strings.SplitSeq(*wsOrigins, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.WSOrigins = append(c.WSOrigins, o)
				}
			}
		case "max":
			c.MaxProcs = f.MaxProcs
		case "t":
			c.IOTimeout = f.IOTimeout
		case "nt":
			c.ConnectTimeout = f.ConnectTimeout
		case "mc":
			c.MaxConnections = f.MaxConnections
		case "mpl":
			c.MaxPacketSize = f.MaxPacketSize
		case "mka":
			c.MaxKeepAlive = f.MaxKeepAlive
		case "mse":
			c.MaxSessionExpiry = f.MaxSessionExpiry
		case "mq":
			c.MaxQueued = f.MaxQueued
		case "sys":
			c.SysInterval = f.SysInterval
		case "shared":
			c.SharedStrategy = f.SharedStrategy
		case "pprof":
			c.PprofListen = f.PprofListen
		case "log":
			c.LogLevel = f.LogLevel
		case "logfmt":
			c.LogFormat = f.LogFormat
		case "data":
			c.DataDir = f.DataDir
		case "durability":
			c.Durability = f.Durability
		case "mqb":
			c.MaxQueuedBytes = f.MaxQueuedBytes
		case "qp":
			c.QueuePolicy = f.QueuePolicy
		case "ot":
			c.MessageTTL = f.MessageTTL
		case "st":
			c.SessionTTL = f.SessionTTL
		case "it":
			c.PacketIDTTL = f.PacketIDTTL
		case "wt":
			c.WillTTL = f.WillTTL
		case "rt":
			c.RetainedTTL = f.RetainedTTL
		case "repair":
			c.Repair = f.Repair
		default:
			gateway(fl.Name, &c.Gateway)
		}
	})
	return c, c.Validate()
}

// ExitOnHelp reports whether err came from -h, so callers exit 0.
func ExitOnHelp(err error) bool { return err == flag.ErrHelp }
