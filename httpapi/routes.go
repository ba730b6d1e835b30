package httpapi

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/coolpy7/coolpy7/gateway"
)

func parseQuery(raw string) (url.Values, error) { return gateway.ParseRawQuery(raw) }

var pubParams = []param{
	{name: "clientid", desc: "publisher's client ID, given to the authenticator"},
	{name: "topic", desc: "topic name; required unless the body is JSON"},
	{name: "qos", desc: "0, 1 or 2 (default 0); 1 and 2 answer once the message is stored and routed"},
	{name: "retain", desc: "true or false (default false)"},
}

// table is every route: the mux, the query checks and the OpenAPI
// document are all made from it.
func (s *Server) table() []route {
	const msgBody = `the payload (raw), or with Content-Type application/json {"topic","payload","qos","retain","encoding":"utf8|base64"}`
	return []route{
		{method: "POST", path: "/pub", summary: "Publish a message (Authorization: Basic base64(user:pass) or Basic <jwt>)", query: pubParams, body: msgBody, h: s.publish},
		{method: "POST", path: "/pub/batch", summary: "Publish a JSON array of messages; one bad message refuses all", query: pubParams[:1], body: "JSON array of message objects", h: s.publishBatch},
		{method: "GET", path: "/sys", access: sysTok, summary: "Broker counters in the original's shape", query: []param{{name: "token", desc: "sys_token, or an admin bearer token"}}, h: s.sys},
		{method: "GET", path: "/brokers", access: sysTok, summary: "Cluster members (this broker)", query: []param{{name: "token", desc: "sys_token, or an admin bearer token"}}, h: s.brokers},
		{method: "POST", path: "/api/login", access: limited, summary: "Admin login: returns a bearer token", body: `{"username","password"}`, h: s.login},
		{method: "POST", path: "/login/account", access: limited, summary: "Admin login, the original's path", body: `{"userName","password"}`, h: s.login},
		{method: "GET", path: "/api/clients", access: admin, summary: "Sessions, filtered and paginated",
			query: append([]param{{name: "client_id", desc: "client ID prefix"}, {name: "ip", desc: "part of the remote address"}, {name: "status", desc: "connected or offline"}}, pageParams...), h: s.clients},
		{method: "GET", path: "/api/clients/{id}", access: admin, summary: "One session", h: s.client},
		{method: "POST", path: "/api/clients/{id}/kick", access: admin, summary: "Disconnect a client (v5: reason 0x98); its session stays", h: s.kick},
		{method: "GET", path: "/api/clients/{id}/subscriptions", access: admin, summary: "A session's subscriptions", h: s.clientSubscriptions},
		{method: "GET", path: "/api/groups", access: admin, summary: "Shared and $queue groups: strategy, members, queue depth", query: pageParams, h: s.groups},
		{method: "GET", path: "/api/topics", access: admin, summary: "Subscribed filters and their subscriber counts", query: pageParams, h: s.topics},
		{method: "GET", path: "/api/retained", access: admin, summary: "Retained messages (payload base64)", query: append([]param{{name: "topic", desc: "topic filter, default #"}}, pageParams...), h: s.retainedList},
		{method: "GET", path: "/api/retained/{topic...}", access: admin, summary: "One retained message", h: s.retainedGet},
		{method: "DELETE", path: "/api/retained/{topic...}", access: admin, summary: "Delete a retained message", h: s.retainedDelete},
		{method: "GET", path: "/api/runtime", access: admin, summary: "Process figures", h: s.runtime},
		{method: "GET", path: "/api/config", access: admin, summary: "Configuration, secrets redacted", h: s.configHandler},
		{method: "GET", path: "/api/stats", access: admin, summary: "Broker counters", h: s.stats},
		{method: "GET", path: "/api/system", access: admin, summary: "Counters in the original admin API's shape", h: s.system},
		{method: "GET", path: "/api/brokers", access: admin, summary: "Cluster members, paginated", query: pageParams, h: s.apiBrokers},
		{method: "GET", path: "/api/bans", access: admin, summary: "Bans in force", h: s.bansList},
		{method: "DELETE", path: "/api/bans", access: admin, summary: "Lift a ban", query: []param{{name: "ip", desc: "address or prefix"}, {name: "client_id", desc: "client ID"}}, h: s.banLift},
		{method: "GET", path: "/api/openapi.json", summary: "This document", h: s.openapi},
		{method: "GET", path: "/metrics", summary: "Prometheus metrics", h: s.metrics.handler().ServeHTTP},
		{method: "GET", path: "/healthz", summary: "The process answers", h: s.healthz},
		{method: "GET", path: "/readyz", summary: "The broker is serving", h: s.readyz},
	}
}

var pathParam = regexp.MustCompile(`\{([a-z]+)(\.\.\.)?\}`)

// openapi is GET /api/openapi.json, made from the route table.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	paths := map[string]map[string]any{}
	for _, rt := range s.table() {
		path := pathParam.ReplaceAllString(rt.path, "{$1}")
		op := map[string]any{"summary": rt.summary, "operationId": strings.ToLower(rt.method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "", ".json", "").Replace(rt.path)}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		for _, p := range rt.query {
			params = append(params, map[string]any{"name": p.name, "in": "query", "required": p.required, "description": p.desc, "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body != "" {
			op["requestBody"] = map[string]any{"description": rt.body, "content": map[string]any{"application/json": map[string]any{}, "application/octet-stream": map[string]any{}}}
		}
		responses := map[string]any{"200": map[string]string{"description": "OK"}, "400": map[string]string{"description": `{"ok":false,"err":"..."}`}}
		switch rt.access {
		case admin:
			op["security"] = []map[string][]string{{"bearer": {}}}
			responses["401"] = map[string]string{"description": "no valid admin bearer token"}
		case sysTok:
			responses["401"] = map[string]string{"description": "token error"}
		}
		if rt.access != public {
			responses["429"] = map[string]string{"description": "rate limit (-sysl)"}
		}
		op["responses"] = responses
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(rt.method)] = op
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]string{"title": "Coolpy7 HTTP API", "version": "1"},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer": map[string]string{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			"basic":  map[string]string{"type": "http", "scheme": "basic"},
		}},
	})
}

// query is the request's query; checkQuery already refused a malformed one.
func query(r *http.Request) url.Values {
	q, _ := parseQuery(r.URL.RawQuery)
	return q
}
