// Package webhook is an HTTP hook service: the broker POSTs JSON to the
// service's /auth, /connect, /sub, /unsub, /pub, /disconnect and
// /session_expired and follows its answers (docs/auth.md has the bodies).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coolpy7/coolpy7/auth"
	"github.com/coolpy7/coolpy7/auth/acl"
	"github.com/coolpy7/coolpy7/hooks"
)

// Config configures a Hook.
type Config struct {
	// URL is the service's base URL; paths are appended to it.
	URL string
	// Timeout bounds one request; default 2 s.
	Timeout time.Duration
	// Down is the answer when the service fails or does not answer.
	Down hooks.Down
	// CacheTTL keeps a login's allow that long (0: no cache).
	CacheTTL time.Duration
	// Events overrides the calls made; default every one but Deliver.
	Events hooks.Event
	// Client makes the requests; default one with Timeout.
	Client *http.Client
}

// Hook is the webhook client; it implements hooks.Hooks and, with its
// cache, auth.QuickAuthenticator.
type Hook struct {
	hooks.Base
	url    string
	down   hooks.Down
	events hooks.Event
	client *http.Client
	cache  *hooks.AuthCache
}

// New makes a webhook client.
func New(c Config) *Hook {
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Events == 0 {
		c.Events = hooks.Connect | hooks.Auth | hooks.Subscribe | hooks.Unsubscribe | hooks.Publish | hooks.Disconnect | hooks.SessionExpired
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	return &Hook{url: strings.TrimRight(c.URL, "/"), down: c.Down, events: c.Events | hooks.Blocking,
		client: c.Client, cache: hooks.NewAuthCache(c.CacheTTL, nil)}
}

// Request is the body of every call; fields that do not apply are left
// out.
type Request struct {
	ClientID string `json:"clientid"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Remote   string `json:"remote,omitempty"`
	CertCN   string `json:"cert_cn,omitempty"`
	Topic    string `json:"topic,omitempty"`
	QoS      byte   `json:"qos,omitempty"`
	Retain   bool   `json:"retain,omitempty"`
	Payload  []byte `json:"payload,omitempty"` // base64 in JSON
	Error    string `json:"error,omitempty"`
}

// Response is the service's answer. Ok allows; for /auth, Ignore means no
// opinion (the next authenticator decides), Username replaces the
// identity, ACL gives the client's topic ACL. Topic, QoS and Payload, when
// present, rewrite; Extra adds filters to subscribe or unsubscribe.
type Response struct {
	Ok       bool       `json:"ok"`
	Ignore   bool       `json:"ignore,omitempty"`
	Username string     `json:"username,omitempty"`
	ACL      *acl.Grant `json:"acl,omitempty"`
	Topic    *string    `json:"topic,omitempty"`
	QoS      *byte      `json:"qos,omitempty"`
	Payload  []byte     `json:"payload,omitempty"`
	Extra    []string   `json:"extra,omitempty"`
}

// Events implements hooks.Hooks.
func (h *Hook) Events() hooks.Event { return h.events }

func (h *Hook) call(ctx context.Context, path string, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("webhook %s: %s", path, resp.Status)
	}
	r, err := ParseResponse(data)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", path, err)
	}
	return r, nil
}

// ParseResponse decodes a service's answer; an empty body is a Response
// with every field zero (a refusal).
func ParseResponse(data []byte) (*Response, error) {
	var r Response
	if len(bytes.TrimSpace(data)) == 0 {
		return &r, nil
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func remote(c *hooks.Client) string {
	if c.Addr.IsValid() {
		return c.Addr.String()
	}
	return ""
}

// AuthenticateQuick implements auth.QuickAuthenticator from the cache.
func (h *Hook) AuthenticateQuick(info *auth.ConnectInfo) (auth.Result, bool) {
	return h.cache.Get(info)
}

// Authenticate implements auth.Authenticator.
func (h *Hook) Authenticate(ctx context.Context, info *auth.ConnectInfo) auth.Result {
	return h.OnAuth(ctx, info)
}

// OnAuth implements hooks.Hooks.
func (h *Hook) OnAuth(ctx context.Context, info *auth.ConnectInfo) auth.Result {
	req := &Request{ClientID: info.ClientID, Username: info.Username, Password: string(info.Password), CertCN: info.CertCN}
	if info.Addr.IsValid() {
		req.Remote = info.Addr.String()
	}
	r, err := h.call(ctx, "/auth", req)
	if err != nil {
		return hooks.DownResult(h.down, info, err)
	}
	return Result(r, info, h.cache)
}

// Result turns an /auth answer into an auth.Result, caching an allow.
func Result(r *Response, info *auth.ConnectInfo, cache *hooks.AuthCache) auth.Result {
	switch {
	case r.Ignore:
		return auth.Result{}
	case !r.Ok:
		return auth.Result{Decision: auth.Deny, Reason: auth.BadCredentials}
	}
	res := auth.Result{Decision: auth.Allow, Username: info.Username}
	if r.Username != "" {
		res.Username = r.Username
	}
	if r.ACL != nil {
		set, err := r.ACL.Compile()
		if err != nil {
			return auth.Result{Decision: auth.Deny, Reason: auth.NotAuthorized, Err: err}
		}
		res.Rules = set
	}
	cache.Put(info, res)
	return res
}

// OnConnect implements hooks.Hooks.
func (h *Hook) OnConnect(ctx context.Context, c *hooks.Client) error {
	r, err := h.call(ctx, "/connect", &Request{ClientID: c.ClientID, Username: c.Username, Remote: remote(c)})
	if err != nil {
		if h.down == hooks.DownAllow {
			return nil
		}
		return err
	}
	if !r.Ok {
		return fmt.Errorf("webhook refused the connection")
	}
	return nil
}

func (h *Hook) filter(ctx context.Context, path string, c *hooks.Client, s *hooks.Subscription) bool {
	r, err := h.call(ctx, path, &Request{ClientID: c.ClientID, Username: c.Username, Topic: s.Filter, QoS: s.QoS})
	if err != nil {
		return h.down == hooks.DownAllow
	}
	if r.Topic != nil {
		s.Filter = *r.Topic
	}
	if r.QoS != nil {
		s.QoS = *r.QoS
	}
	s.Extra = r.Extra
	return r.Ok
}

// OnSubscribe implements hooks.Hooks.
func (h *Hook) OnSubscribe(ctx context.Context, c *hooks.Client, s *hooks.Subscription) bool {
	return h.filter(ctx, "/sub", c, s)
}

// OnUnsubscribe implements hooks.Hooks.
func (h *Hook) OnUnsubscribe(ctx context.Context, c *hooks.Client, s *hooks.Subscription) bool {
	return h.filter(ctx, "/unsub", c, s)
}

// OnPublish implements hooks.Hooks.
func (h *Hook) OnPublish(ctx context.Context, c *hooks.Client, m *hooks.Message) bool {
	r, err := h.call(ctx, "/pub", &Request{ClientID: c.ClientID, Username: c.Username, Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, Payload: m.Payload})
	if err != nil {
		return h.down == hooks.DownAllow
	}
	if r.Topic != nil {
		m.Topic = *r.Topic
	}
	if r.Payload != nil {
		m.Payload = r.Payload
	}
	return r.Ok
}

// OnDisconnect implements hooks.Hooks.
func (h *Hook) OnDisconnect(ctx context.Context, c *hooks.Client, err error) {
	req := &Request{ClientID: c.ClientID, Username: c.Username, Remote: remote(c)}
	if err != nil {
		req.Error = err.Error()
	}
	h.call(ctx, "/disconnect", req)
}

// OnSessionExpired implements hooks.Hooks.
func (h *Hook) OnSessionExpired(ctx context.Context, id string) {
	h.call(ctx, "/session_expired", &Request{ClientID: id})
}
