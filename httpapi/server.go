// Package httpapi is the broker's HTTP server: publishing over HTTP
// (POST /pub, as in the original Coolpy7, plus JSON and batch forms), the
// original's /sys and /brokers, the admin API under /api/ with its OpenAPI
// document, Prometheus metrics, and health checks.
//
// It runs on net/http, not on the broker's epoll loops: its traffic is
// request/response over few long-lived connections, where net/http is
// correct, complete (HTTP/1.1 keep-alive, chunking, timeouts) and well
// tested, and the per-connection memory the loops save only matters for
// the millions of MQTT connections.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/gateway"
)

// Options make a Server.
type Options struct {
	Broker *broker.Server
	// Config is the broker's configuration: the gateway keys, max_packet_size
	// and data_dir are read.
	Config config.Config
	// Authorize is the chain and ACL of MQTT CONNECT
	// (broker.Server.Authorize).
	Authorize gateway.Authorizer
	// Bans is the ban list the admin API lists and lifts; nil answers 501.
	Bans limit.Bans
	// Publishers are other gateways' publishers (the CoAP gateway's) whose
	// counters /metrics shows, by listener name.
	Publishers map[string]*gateway.Publisher
	Log        *slog.Logger
}

// Server is the HTTP server.
type Server struct {
	b        *broker.Server
	cfg      config.Config
	pub      *gateway.Publisher
	bans     limit.Bans
	log      *slog.Logger
	admin    *adminAuth
	limiter  *rate.Limiter // nil for no limit
	metrics  *metrics
	handler  http.Handler
	srv      *http.Server
	ln       net.Listener
	maxBody  int64
	maxBatch int
}

// New makes the server. It sets up the admin login, generating a password
// at first start when none is configured.
func New(o Options) (*Server, error) {
	if o.Broker == nil || o.Authorize == nil {
		return nil, errors.New("httpapi: Broker and Authorize are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{b: o.Broker, cfg: o.Config, pub: gateway.NewPublisher(o.Broker, o.Authorize), bans: o.Bans, log: o.Log, maxBatch: 1000}
	var err error
	if s.admin, err = newAdminAuth(o.Config, o.Log); err != nil {
		return nil, err
	}
	if n := o.Config.HTTPRateLimit; n > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(n), max(4*n, 10))
	}
	s.maxBody = int64(o.Config.MaxPacketSize)
	if s.maxBody == 0 {
		s.maxBody = 268435455 // the MQTT protocol's own limit
	}
	pubs := map[string]*gateway.Publisher{"http": s.pub}
	for name, p := range o.Publishers {
		pubs[name] = p
	}
	s.metrics = newMetrics(o.Broker, pubs)
	s.handler = s.routes()
	return s, nil
}

// Handler serves the whole API; for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on the configured address.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a body trickled in holds a goroutine; not for ever
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http", "err", err)
		}
	}()
	s.log.Info("listening", "proto", "http", "addr", ln.Addr().String())
	return nil
}

// Addr is the listener's address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting and waits for requests in progress.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// access is who may call a route.
type access int

const (
	public  access = iota
	limited        // public, under the -sysl rate limit
	sysTok         // the sys token or an admin bearer token, rate limited
	admin          // an admin bearer token, rate limited
)

// route is one endpoint: the mux and the OpenAPI document are both made
// from the table, and the query keys it lists are the only ones accepted.
type route struct {
	method, path string
	access       access
	summary      string
	query        []param
	body         string // request body description; "" for none
	h            http.HandlerFunc
}

type param struct {
	name, desc string
	required   bool
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.table() {
		h := s.checkQuery(r, r.h)
		switch r.access {
		case limited:
			h = s.rateLimited(h)
		case sysTok:
			h = s.rateLimited(s.sysOrAdmin(h))
		case admin:
			h = s.rateLimited(s.adminOnly(h))
		}
		mux.Handle(r.method+" "+r.path, s.metrics.timed(r.path, h))
	}
	return s.cors(mux)
}

// checkQuery refuses query keys the route does not list, so a typo such as
// ?retian=true is an error rather than silently ignored.
func (s *Server) checkQuery(r route, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		q, err := parseQuery(req.URL.RawQuery)
		if err != nil {
			fail(w, http.StatusBadRequest, "bad query string: "+err.Error())
			return
		}
		for k := range q {
			if !slices.ContainsFunc(r.query, func(p param) bool { return p.name == k }) {
				fail(w, http.StatusBadRequest, "unknown query key "+k)
				return
			}
		}
		for _, p := range r.query {
			if p.required && q.Get(p.name) == "" {
				fail(w, http.StatusBadRequest, "missing query key "+p.name)
				return
			}
		}
		next(w, req)
	}
}

func (s *Server) rateLimited(next http.HandlerFunc) http.HandlerFunc {
	if s.limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.limiter.Allow() {
			w.Header().Set("Retry-After", "1")
			fail(w, http.StatusTooManyRequests, "rate limit exceeded")
			return
		}
		next(w, r)
	}
}

// cors answers preflights and marks responses for the configured origins.
func (s *Server) cors(next http.Handler) http.Handler {
	origins := s.cfg.HTTPCORSOrigins
	if len(origins) == 0 {
		return next
	}
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o != "" && (any || slices.Contains(origins, o)) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// errorBody is every error answer: the original's {"ok":false,"err":...}.
type errorBody struct {
	OK  bool   `json:"ok"`
	Err string `json:"err"`
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Err: msg})
}

var okBody = []byte(`{"ok":true}` + "\n")

func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(okBody)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// clientIP is the address of the peer, for auth and bans. Forwarded
// headers are not trusted: the broker cannot know which proxy to believe.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return strings.TrimPrefix(host, "::ffff:")
}
