// Package broker is the MQTT server: connections, sessions and routing.
//
// A PUBLISH flows: transport (event loop read) → Server.Data (framing) →
// client.handle (decode) → client.publish → Server.route (topics trie
// match) → session.deliver (window, queue) → client.writePublish (encode,
// stage in the read's pass or write without blocking) → one flush per
// connection at the end of Data (batch.go).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/hooks"
	"github.com/coolpy7/coolpy7/packets"
	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/topics"
	"github.com/coolpy7/coolpy7/transport"
)

// Version is reported in $SYS/broker/version.
const Version = "coolpy7 8.0.0-dev"

// Server is one broker instance.
type Server struct {
	cfg config.Config
	log *slog.Logger

	listeners []transport.Listener

	subs     *topics.Trie[*session]
	retained RetainedStore
	// store keeps persistent sessions, their queues and messages in
	// flight, retained messages and delayed wills (persist.go).
	store store.Store

	sessMu   sync.Mutex
	sessions map[string]*session

	silent   *wheel       // connect timeout and keepalive
	stalls   *wheel       // write timeout
	expiring *wheel       // credentials that lapse (auth.go)
	clock    atomic.Int64 // coarse ticks since start, see keepalive.go
	started  time.Time
	closing  atomic.Bool
	stop     chan struct{}
	done     sync.WaitGroup

	stats     stats
	latency   latency  // sampled route latency (admin.go)
	observers sync.Map // *session of each internal subscriber (admin.go)

	sec      security    // authentication, ACL, limits, bans (auth.go)
	hooks    Hooks       // nil for none (hooks.go)
	hookEv   hooks.Event // what hooks wants, 0 without hooks
	hookPool *pool       // runs blocking hooks; nil unless they block

	// $queue groups (queue.go) and delayed messages (delayed.go).
	qmu     sync.Mutex
	queues  map[string]*queueGroup
	qkick   chan struct{}
	dmu     sync.Mutex
	delayed delayedHeap
}

// RetainedStore keeps retained messages. It is the seam for persistence:
// the default is the in-memory topics.Retained index, and a durable store
// implements the same four methods.
type RetainedStore interface {
	Set(topic string, m *Message)
	Delete(topic string) bool
	Match(filter string, fn func(topic string, m *Message) bool)
	Len() int
}

// stats are the broker's counters, published under $SYS.
type stats struct {
	sockets, connected, connects       atomic.Int64
	msgsIn, msgsOut                    [3]atomic.Int64 // by QoS
	bytesIn, bytesOut                  atomic.Int64
	observerDrops                      atomic.Int64
	dropped                            [dropReasons]atomic.Int64 // by reason, admin.go
	noSubscribers, denied              atomic.Int64
	protocolErrors                     atomic.Int64
	connectTimeouts, keepaliveTimeouts atomic.Int64
	writeTimeouts                      atomic.Int64
	authStats
	delayedRefused atomic.Int64
}

var (
	errConnectTimeout = &packets.Error{Code: packets.MaximumConnectTime, Msg: "no CONNECT in time"}
	errWriteTimeout   = &packets.Error{Code: packets.ImplementationSpecificError, Msg: "client stopped reading"}
)

// New makes a server from cfg; nothing listens until Start.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		subs:     topics.NewTrie[*session](),
		retained: topics.NewRetained[*Message](),
		sessions: make(map[string]*session),
		stop:     make(chan struct{}),
		queues:   make(map[string]*queueGroup),
		qkick:    make(chan struct{}, 1),
	}
	s.silent = newWheel(s, s.checkSilent)
	s.stalls = newWheel(s, s.checkStalled)
	s.expiring = newWheel(s, s.checkExpired)
	if cfg.Listen != "" {
		s.listeners = append(s.listeners, transport.NewTCP(cfg.Listen, s))
	}
	if cfg.WSListen != "" {
		s.listeners = append(s.listeners, transport.NewWebSocket(cfg.WSListen, transport.WSOptions{Origins: cfg.WSOrigins}, nil, s))
	}
	if cfg.TLSListen != "" || cfg.WSSListen != "" {
		t, err := transport.LoadServerTLS(transport.TLSOptions{
			CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey,
			ClientCAFile: cfg.TLSClientCA, ClientAuth: cfg.TLSClientAuth,
		})
		if err != nil {
			return nil, err
		}
		if cfg.TLSListen != "" {
			s.listeners = append(s.listeners, transport.NewTLS(cfg.TLSListen, t, s))
		}
		if cfg.WSSListen != "" {
			s.listeners = append(s.listeners, transport.NewWebSocket(cfg.WSSListen, transport.WSOptions{Origins: cfg.WSOrigins}, t, s))
		}
	}
	st, err := openStore(cfg, log)
	if err != nil {
		return nil, err
	}
	s.store = st
	if err := s.load(); err != nil {
		s.closing.Store(true) // the restored timers do nothing now
		_ = st.Close()
		return nil, fmt.Errorf("loading the store: %w", err)
	}
	if err := s.setupSecurity(); err != nil {
		s.closing.Store(true)
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

// Start opens the listeners and starts serving.
func (s *Server) Start() error {
	s.started = time.Now()
	if err := s.loadDelayed(); err != nil {
		return err
	}
	for i, l := range s.listeners {
		if err := l.Start(); err != nil {
			for _, prev := range s.listeners[:i] {
				prev.Stop()
			}
			return err
		}
		s.log.Info("listening", "proto", "mqtt", "addr", l.Addr())
	}
	s.done.Add(2)
	go s.run()
	go s.runQueues()
	return nil
}

// run drives the coarse clock, the keepalive wheel and $SYS.
func (s *Server) run() {
	defer s.done.Done()
	t := time.NewTicker(time.Second / ticksPerSecond)
	defer t.Stop()
	var last int64
	nextSys := int64(0)
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			tick := int64(now.Sub(s.started) / (time.Second / ticksPerSecond))
			s.clock.Store(tick)
			s.silent.tick(last+1, tick)
			s.stalls.tick(last+1, tick)
			s.expiring.tick(last+1, tick)
			last = tick
			s.fireDelayed(now)
			if s.cfg.SysInterval > 0 && tick >= nextSys {
				s.publishSys()
				nextSys = tick + int64(s.cfg.SysInterval)*ticksPerSecond
			}
		}
	}
}

// Addr is the MQTT TCP listener's actual address (useful with port 0).
func (s *Server) Addr() string {
	if len(s.listeners) == 0 {
		return ""
	}
	return s.listeners[0].Addr()
}

// Shutdown stops accepting, tells v5 clients the server is shutting down,
// publishes the wills of connected clients (the server closes their
// connections without a DISCONNECT from them, MQTT 5.0 §3.1.2.5) and stops.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closing.Swap(true) {
		return errors.New("broker: already shut down")
	}
	close(s.stop)
	s.sessMu.Lock()
	var clients []*client
	for _, sess := range s.sessions {
		sess.mu.Lock()
		if sess.c != nil {
			clients = append(clients, sess.c)
		}
		sess.mu.Unlock()
	}
	s.sessMu.Unlock()
	// Every will goes out before any client is disconnected, so that the
	// clients still connected receive the wills of the others.
	for _, c := range clients {
		if w := c.will.Swap(nil); w != nil {
			s.publishWill(w)
		}
	}
	for _, c := range clients {
		c.fail(errShutdown)
	}
	stopped := make(chan struct{})
	go func() {
		for _, l := range s.listeners {
			l.Stop()
		}
		s.done.Wait()
		s.closeSecurity()
		if err := s.store.Close(); err != nil {
			s.log.Error("closing the store", "err", err)
		}
		close(stopped)
	}()
	select {
	case <-stopped:
		s.log.Info("stopped")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
