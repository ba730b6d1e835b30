// Package coapgw is the CoAP gateway (RFC 7252, UDP, DTLS optional) on
// github.com/plgd-dev/go-coap/v3:
//
//   - POST /pub, the original Coolpy7's form: credentials "Basic ..." in a
//     Location-Query option, clientid, topic, qos and retain in Uri-Query
//     (one option holding "a=1&b=2", as the original's clients send, or one
//     option per key, as libcoap's coap-client sends), the payload as the
//     body; the answer is JSON {"ok":true} or {"ok":false,"err":"..."}.
//   - POST /ps/{topic}: publishes to the topic in the path.
//   - GET /ps/{filter} with Observe 0: subscribes (RFC 7641). Each MQTT
//     message matching the filter becomes a notification whose body is
//     the payload and whose Location-Path options are the topic's levels.
//     GET with Observe 1, a reset, or the peer going quiet ends it.
package coapgw

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/gateway"
	"github.com/coolpy7/coolpy7/topics"
)

// Options make a Server.
type Options struct {
	Broker    *broker.Server
	Config    config.Config // the gateway keys and max_packet_size
	Authorize gateway.Authorizer
	Log       *slog.Logger
}

// Server is the CoAP gateway.
type Server struct {
	b     *broker.Server
	cfg   config.Config
	pub   *gateway.Publisher
	log   *slog.Logger
	stops []func()
	addrs []net.Addr

	mu    sync.Mutex
	obs   map[obsKey]*observation
	peers map[string]int // observations per peer address
	next  atomic.Uint32  // observe sequence numbers

	// idle is how long a peer may send nothing before it is pinged (when
	// it observes) or forgotten; tick is how often that is checked. They
	// are go-coap's defaults, shortened by tests.
	idle, tick time.Duration
	pinging    sync.Map // *udpclient.Conn being pinged
	stop       chan struct{}
}

type obsKey struct {
	peer  string
	token string
}

// observeQueue bounds the notifications waiting for one observer; past it
// messages are dropped and counted (coolpy7_messages_dropped_total
// {reason="observer_full"}), as for a slow MQTT subscriber at QoS 0.
const observeQueue = 256

// New makes the gateway; Start listens.
func New(o Options) (*Server, error) {
	if o.Broker == nil || o.Authorize == nil {
		return nil, errors.New("coapgw: Broker and Authorize are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Server{b: o.Broker, cfg: o.Config, pub: gateway.NewPublisher(o.Broker, o.Authorize), log: o.Log,
		obs: map[obsKey]*observation{}, peers: map[string]int{}, idle: 16 * time.Second, tick: 4 * time.Second, stop: make(chan struct{})}, nil
}

// Publisher is the gateway's publisher, whose counters /metrics shows.
func (s *Server) Publisher() *gateway.Publisher { return s.pub }

func (s *Server) maxMessage() uint32 {
	if s.cfg.MaxPacketSize > 0 {
		return uint32(s.cfg.MaxPacketSize) + 1024 // options and header around the payload
	}
	return 64 << 10 // one UDP datagram; bigger payloads need block-wise transfer
}

// Start opens the UDP listener and, when configured, the DTLS one.
func (s *Server) Start() error {
	router := mux.NewRouter()
	router.DefaultHandle(mux.HandlerFunc(s.serve))
	inactive := options.WithInactivityMonitor(s.idle, s.onInactive)
	periodic := options.WithPeriodicRunner(periodic.New(s.stop, s.tick))
	if a := s.cfg.CoAPListen; a != "" {
		l, err := coapnet.NewListenUDP("udp", a)
		if err != nil {
			return err
		}
		srv := udp.NewServer(options.WithMux(router), options.WithMaxMessageSize(s.maxMessage()), inactive, periodic,
			options.WithErrors(func(err error) { s.log.Debug("coap", "err", err) }))
		go srv.Serve(l)
		s.stops = append(s.stops, func() { srv.Stop(); l.Close() })
		s.addrs = append(s.addrs, l.LocalAddr())
		s.log.Info("listening", "proto", "coap", "addr", l.LocalAddr().String())
	}
	if a := s.cfg.CoAPDTLSListen; a != "" {
		cfg, err := s.dtlsConfig()
		if err != nil {
			s.Stop()
			return err
		}
		l, err := coapnet.NewDTLSListener("udp", a, cfg)
		if err != nil {
			s.Stop()
			return err
		}
		srv := dtls.NewServer(options.WithMux(router), options.WithMaxMessageSize(s.maxMessage()), inactive, periodic,
			options.WithErrors(func(err error) { s.log.Debug("coaps", "err", err) }))
		go srv.Serve(l)
		s.stops = append(s.stops, func() { srv.Stop(); l.Close() })
		s.addrs = append(s.addrs, l.Addr())
		s.log.Info("listening", "proto", "coaps", "addr", l.Addr().String())
	}
	return nil
}

func (s *Server) dtlsConfig() (*piondtls.Config, error) {
	c := &piondtls.Config{}
	if s.cfg.CoAPDTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.CoAPDTLSCert, s.cfg.CoAPDTLSKey)
		if err != nil {
			return nil, fmt.Errorf("coap dtls: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if psk := s.cfg.CoAPDTLSPSK; psk != "" {
		id := s.cfg.CoAPDTLSPSKIdentity
		c.PSK = func(identity []byte) ([]byte, error) {
			if id != "" && string(identity) != id {
				return nil, errors.New("unknown PSK identity")
			}
			return []byte(psk), nil
		}
		c.PSKIdentityHint = []byte("coolpy7")
		c.CipherSuites = []piondtls.CipherSuiteID{piondtls.TLS_PSK_WITH_AES_128_CCM_8, piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256}
		if len(c.Certificates) > 0 {
			c.CipherSuites = nil // the defaults, which cover both
		}
	}
	return c, nil
}

// Addrs are the listeners' addresses, UDP first.
func (s *Server) Addrs() []net.Addr { return s.addrs }

// onInactive runs when a peer has sent nothing for idle. go-coap's
// default forgets it, which would end an observation whose device only
// listens: a peer that observes is pinged instead (a CoAP ping, an empty
// confirmable message, RFC 7252 §4.3), and forgotten only when the ping
// is not answered.
func (s *Server) onInactive(cc *udpclient.Conn) {
	s.mu.Lock()
	observes := s.peers[cc.RemoteAddr().String()] > 0
	s.mu.Unlock()
	if !observes {
		cc.Close()
		return
	}
	if _, busy := s.pinging.LoadOrStore(cc, struct{}{}); busy {
		return
	}
	go func() {
		defer s.pinging.Delete(cc)
		ctx, cancel := context.WithTimeout(cc.Context(), s.idle)
		defer cancel()
		if err := cc.Ping(ctx); err != nil {
			cc.Close()
		}
	}()
}

// Stop closes the listeners and ends every observation.
func (s *Server) Stop() {
	for _, stop := range s.stops {
		stop()
	}
	s.stops = nil
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Lock()
	all := s.obs
	s.obs = map[obsKey]*observation{}
	s.peers = map[string]int{}
	s.mu.Unlock()
	for _, o := range all {
		o.end()
	}
}

// forget removes the observation of key; the caller holds mu.
func (s *Server) forget(key obsKey) {
	if _, ok := s.obs[key]; !ok {
		return
	}
	delete(s.obs, key)
	if s.peers[key.peer]--; s.peers[key.peer] <= 0 {
		delete(s.peers, key.peer)
	}
}

// Observations is how many CoAP observers there are.
func (s *Server) Observations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.obs)
}

type reply struct {
	OK  bool   `json:"ok"`
	Err string `json:"err,omitempty"`
}

func respond(w mux.ResponseWriter, code codes.Code, r reply) {
	b, _ := json.Marshal(r)
	if err := w.SetResponse(code, message.AppJSON, bytes.NewReader(b)); err != nil {
		// Only a broken connection gets here; the peer retries or gives up.
		return
	}
}

func respondErr(w mux.ResponseWriter, err error) {
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		respond(w, codes.InternalServerError, reply{Err: err.Error()})
		return
	}
	code := codes.BadRequest
	switch ge.Kind {
	case gateway.Unauthorized:
		code = codes.Unauthorized
	case gateway.Forbidden:
		code = codes.Forbidden
	case gateway.TooLarge:
		code = codes.RequestEntityTooLarge
	case gateway.Unavailable:
		code = codes.ServiceUnavailable
	}
	respond(w, code, reply{Err: ge.Msg})
}

// serve dispatches every request; the paths are few and one of them takes
// the rest of the path as a topic, which a pattern router would not keep
// verbatim.
func (s *Server) serve(w mux.ResponseWriter, r *mux.Message) {
	req, err := ParseRequest(r.Options())
	if err != nil {
		respondErr(w, err)
		return
	}
	switch {
	case req.Path == "pub" && r.Code() == codes.POST:
		s.publish(w, r, req, false)
	case strings.HasPrefix(req.Path, "ps/") && r.Code() == codes.POST:
		s.publish(w, r, req, true)
	case strings.HasPrefix(req.Path, "ps/") && r.Code() == codes.GET:
		s.observe(w, r, req)
	case req.Path == "pub" || strings.HasPrefix(req.Path, "ps/"):
		respond(w, codes.MethodNotAllowed, reply{Err: "method not allowed"})
	default:
		respond(w, codes.NotFound, reply{Err: "not found: use /pub or /ps/{topic}"})
	}
}

// Request is what the gateway reads from a CoAP request's options.
type Request struct {
	Path        string // without the leading slash, levels joined by '/'
	Query       url.Values
	Credentials gateway.Credentials
	Observe     int // -1 when absent
}

// ParseRequest reads the options the gateway uses.
func ParseRequest(opts message.Options) (Request, error) {
	req := Request{Observe: -1}
	var segs []string
	var queries []string
	var creds string
	for _, o := range opts {
		switch o.ID {
		case message.URIPath:
			segs = append(segs, string(o.Value))
		case message.URIQuery:
			queries = append(queries, string(o.Value))
		case message.LocationQuery:
			if creds == "" {
				creds = string(o.Value)
			}
		case message.Observe:
			if len(o.Value) > 3 {
				return req, &gateway.Error{Kind: gateway.BadRequest, Msg: "observe option too long"}
			}
			v := 0
			for _, b := range o.Value {
				v = v<<8 | int(b)
			}
			req.Observe = v
		}
	}
	req.Path = strings.Join(segs, "/")
	q, err := gateway.ParseRawQuery(strings.Join(queries, "&"))
	if err != nil {
		return req, err
	}
	req.Query = q
	if req.Credentials, err = gateway.ParseBasic(creds); err != nil {
		return req, err
	}
	return req, nil
}

func peerAddr(w mux.ResponseWriter) netip.Addr {
	if a, ok := w.Conn().RemoteAddr().(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	ap, _ := netip.ParseAddrPort(w.Conn().RemoteAddr().String())
	return ap.Addr()
}

func (s *Server) publish(w mux.ResponseWriter, r *mux.Message, req Request, resource bool) {
	if resource && req.Query.Has("topic") {
		respondErr(w, &gateway.Error{Kind: gateway.BadRequest, Msg: "the topic is the path after /ps/"})
		return
	}
	clientID, m, err := gateway.ParseQuery(req.Query, !resource)
	if err != nil {
		respondErr(w, err)
		return
	}
	if resource {
		m.Topic = strings.TrimPrefix(req.Path, "ps/")
	}
	id, err := s.pub.Authenticate(r.Context(), req.Credentials, clientID, peerAddr(w))
	if err != nil {
		respondErr(w, err)
		return
	}
	if r.Body() != nil {
		if m.Payload, err = r.ReadBody(); err != nil {
			respondErr(w, &gateway.Error{Kind: gateway.BadRequest, Msg: "reading payload: " + err.Error()})
			return
		}
	}
	if err := s.pub.Publish(r.Context(), &id, m); err != nil {
		respondErr(w, err)
		return
	}
	respond(w, codes.Changed, reply{OK: true})
}

// observation is one CoAP observer: a broker observer feeding a queue
// that one goroutine drains into notifications.
type observation struct {
	key    obsKey
	filter string
	acl    acl.ACL
	check  bool // the ACL granted the filter only in part: ask CanRead per message
	bo     *broker.Observer
	q      chan broker.ObservedMessage
	done   chan struct{}
	once   sync.Once
}

func (o *observation) end() {
	o.once.Do(func() {
		if o.bo != nil {
			o.bo.Close()
		}
		close(o.done)
	})
}

func (s *Server) observe(w mux.ResponseWriter, r *mux.Message, req Request) {
	key := obsKey{peer: w.Conn().RemoteAddr().String(), token: string(r.Token())}
	if req.Observe == 1 {
		s.mu.Lock()
		o := s.obs[key]
		s.forget(key)
		s.mu.Unlock()
		if o != nil {
			o.end()
		}
		respond(w, codes.Content, reply{OK: true})
		return
	}
	if req.Observe != 0 {
		respond(w, codes.BadRequest, reply{Err: "GET /ps/{filter} needs Observe 0 (register) or 1 (deregister)"})
		return
	}
	for k := range req.Query {
		if k != "clientid" {
			respondErr(w, &gateway.Error{Kind: gateway.BadRequest, Msg: fmt.Sprintf("unknown query key %q", k)})
			return
		}
	}
	filter := strings.TrimPrefix(req.Path, "ps/")
	if !topics.ValidFilter(filter) {
		respondErr(w, &gateway.Error{Kind: gateway.BadRequest, Msg: "invalid topic filter " + filter})
		return
	}
	id, err := s.pub.Authenticate(r.Context(), req.Credentials, req.Query.Get("clientid"), peerAddr(w))
	if err != nil {
		respondErr(w, err)
		return
	}
	o := &observation{key: key, filter: filter, q: make(chan broker.ObservedMessage, observeQueue), done: make(chan struct{})}
	o.acl = id.ACL()
	switch o.acl.Subscribe(filter) {
	case acl.SubDenied:
		respondErr(w, &gateway.Error{Kind: gateway.Forbidden, Msg: "not authorized to subscribe to " + filter})
		return
	case acl.SubFiltered:
		o.check = true
	}
	o.bo, err = s.b.Observe(filter, func(m broker.ObservedMessage) bool {
		select {
		case o.q <- m:
			return true
		default:
			return false
		}
	})
	if err != nil {
		respondErr(w, &gateway.Error{Kind: gateway.BadRequest, Msg: err.Error()})
		return
	}
	s.mu.Lock()
	if old := s.obs[key]; old != nil {
		old.end() // the same token again re-registers (RFC 7641 §4.1)
	} else {
		s.peers[key.peer]++
	}
	s.obs[key] = o
	s.mu.Unlock()
	// The registration's answer is the first notification; messages,
	// retained ones included, follow as notifications.
	b, _ := json.Marshal(reply{OK: true})
	w.SetResponse(codes.Content, message.AppJSON, bytes.NewReader(b), message.Option{ID: message.Observe, Value: observeValue(s.next.Add(1))})
	go s.notify(w.Conn(), r.Token(), o)
}

func observeValue(n uint32) []byte {
	n &= 1<<24 - 1
	return []byte{byte(n >> 16), byte(n >> 8), byte(n)}
}

// notify sends o's messages to the peer until the observation ends, the
// peer's connection ends or a notification cannot be sent.
func (s *Server) notify(cc mux.Conn, token message.Token, o *observation) {
	defer func() {
		s.mu.Lock()
		if s.obs[o.key] == o {
			s.forget(o.key)
		}
		s.mu.Unlock()
		o.end()
	}()
	for {
		select {
		case <-o.done:
			return
		case <-cc.Done():
			return
		case m := <-o.q:
			if o.check && !o.acl.CanRead(m.Topic) {
				continue
			}
			if err := s.send(cc, token, m); err != nil {
				s.log.Debug("coap notification", "peer", o.key.peer, "err", err)
				return
			}
		}
	}
}

func (s *Server) send(cc mux.Conn, token message.Token, m broker.ObservedMessage) error {
	ctx, cancel := context.WithTimeout(cc.Context(), 30*time.Second)
	defer cancel()
	msg := cc.AcquireMessage(ctx)
	defer cc.ReleaseMessage(msg)
	msg.SetCode(codes.Content)
	msg.SetToken(token)
	msg.SetType(message.NonConfirmable)
	msg.SetObserve(s.next.Add(1) & (1<<24 - 1))
	for lvl := range strings.SplitSeq(m.Topic, "/") {
		msg.AddOptionString(message.LocationPath, lvl)
	}
	msg.SetContentFormat(message.AppOctets)
	msg.SetBody(bytes.NewReader(m.Payload))
	return cc.WriteMessage(msg)
}
