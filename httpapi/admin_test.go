package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/coolpy7/coolpy7/auth/limit"
	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
)

func TestAdminLogin(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{`{"username":"admin","password":"nope"}`, `{"username":"root","password":"` + adminPW + `"}`, `{"username":"admin"}`} {
		if r := do(t, "POST", e.base+"/api/login", "", "application/json", []byte(body)); r.code != 401 {
			t.Errorf("%s: %d %s", body, r.code, r.body)
		}
	}
	if r := do(t, "POST", e.base+"/api/login", "", "application/json", []byte(`{"username":"admin","password":`)); r.code != 400 {
		t.Errorf("bad json: %d", r.code)
	}
	// The original admin UI's path and field name.
	r := do(t, "POST", e.base+"/login/account", "", "application/json", []byte(`{"userName":"admin","password":"`+adminPW+`"}`))
	var out struct{ Status, Token string }
	r.json(t, &out)
	if r.code != 200 || out.Status != "ok" || out.Token == "" {
		t.Fatalf("%d %s", r.code, r.body)
	}
	for name, authz := range map[string]string{
		"none": "", "basic": basic("admin", adminPW), "forged": "Bearer " + token(t, "guess", "admin", time.Now().Add(time.Hour)),
		"truncated": "Bearer " + out.Token[:len(out.Token)-3],
	} {
		if r := do(t, "GET", e.base+"/api/stats", authz, "", nil); r.code != 401 {
			t.Errorf("%s: %d", name, r.code)
		}
	}
	if r := do(t, "GET", e.base+"/api/stats", "Bearer "+out.Token, "", nil); r.code != 200 {
		t.Errorf("good token: %d %s", r.code, r.body)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.SysToken = "sys-secret" })
	adm := e.login(t)
	get := func(path string, v any) {
		t.Helper()
		r := do(t, "GET", e.base+path, adm, "", nil)
		if r.code != 200 {
			t.Fatalf("GET %s: %d %s", path, r.code, r.body)
		}
		r.json(t, v)
	}
	c1 := dial(t, e.mqtt, "dev-1")
	c1.subscribe(t, "public/a", 1)
	c1.subscribe(t, "public/+/b", 0)
	c2 := dial(t, e.mqtt, "dev-2")
	c2.subscribe(t, "public/a", 0)
	dial(t, e.mqtt, "other")

	// Clients: list, filter, paginate, one.
	type page struct {
		Success        bool
		Current, Total int
		PageSize       int `json:"pageSize"`
		Data           json.RawMessage
	}
	var p page
	get("/api/clients", &p)
	var list []broker.ClientInfo
	json.Unmarshal(p.Data, &list)
	if p.Total != 3 || len(list) != 3 || list[0].ID != "dev-1" || !list[0].Connected || list[0].Subscriptions != 2 || list[0].Protocol != "mqtt3.1.1" {
		t.Fatalf("clients: %+v %s", p, p.Data)
	}
	get("/api/clients?client_id=dev-&current=2&pageSize=1&status=connected", &p)
	json.Unmarshal(p.Data, &list)
	if p.Total != 2 || len(list) != 1 || list[0].ID != "dev-2" || p.Current != 2 || p.PageSize != 1 {
		t.Fatalf("filtered page: %+v %s", p, p.Data)
	}
	get("/api/clients?status=offline", &p)
	if p.Total != 0 {
		t.Fatalf("offline: %+v", p)
	}
	get("/api/clients?ip=127.0.0.1", &p)
	if p.Total != 3 {
		t.Fatalf("by ip: %+v", p)
	}
	var one broker.ClientInfo
	get("/api/clients/dev-1", &one)
	if one.ID != "dev-1" || one.Remote == "" {
		t.Fatalf("one: %+v", one)
	}
	if r := do(t, "GET", e.base+"/api/clients/nobody", adm, "", nil); r.code != 404 {
		t.Fatalf("unknown client: %d", r.code)
	}
	if r := do(t, "GET", e.base+"/api/clients?status=asleep", adm, "", nil); r.code != 400 {
		t.Fatalf("bad status: %d", r.code)
	}
	if r := do(t, "GET", e.base+"/api/clients?pageSize=0", adm, "", nil); r.code != 400 {
		t.Fatalf("bad page size: %d", r.code)
	}

	// Subscriptions and topics.
	get("/api/clients/dev-1/subscriptions", &p)
	var subs []broker.SubscriptionInfo
	json.Unmarshal(p.Data, &subs)
	if len(subs) != 2 || subs[0].Filter != "public/a" || subs[0].QoS != 1 || subs[1].Filter != "public/+/b" {
		t.Fatalf("subscriptions: %s", p.Data)
	}
	get("/api/topics", &p)
	var tops []broker.TopicInfo
	json.Unmarshal(p.Data, &tops)
	if len(tops) != 2 || tops[0] != (broker.TopicInfo{Filter: "public/+/b", Subscribers: 1}) || tops[1] != (broker.TopicInfo{Filter: "public/a", Subscribers: 2}) {
		t.Fatalf("topics: %s", p.Data)
	}

	// Shared groups, with their members.
	c1.subscribe(t, "$share/workers/public/jobs", 1)
	c2.subscribe(t, "$share/workers/public/jobs", 1)
	get("/api/groups", &p)
	var groups []broker.SharedGroup
	json.Unmarshal(p.Data, &groups)
	if p.Total != 1 || len(groups) != 1 || groups[0].Name != "workers" || groups[0].Filter != "public/jobs" ||
		len(groups[0].Members) != 2 || groups[0].Online != 2 || groups[0].Strategy != "round_robin" {
		t.Fatalf("groups: %+v %s", p, p.Data)
	}

	// Retained: list, read, delete.
	for _, tp := range []string{"public/r/1", "public/r/2", "public/other"} {
		if r := do(t, "POST", e.base+"/pub?retain=true&qos=1&topic="+tp, basic("bob", "bobpw"), "", []byte("v-"+tp)); r.code != 200 {
			t.Fatalf("retain %s: %d %s", tp, r.code, r.body)
		}
	}
	get("/api/retained?topic=public/r/%2B", &p)
	var rets []retainedJSON
	json.Unmarshal(p.Data, &rets)
	if p.Total != 2 || rets[0].Topic != "public/r/1" || rets[0].Payload != "di1wdWJsaWMvci8x" || rets[0].QoS != 1 {
		t.Fatalf("retained list: %+v %s", p, p.Data)
	}
	var ret retainedJSON
	get("/api/retained/public/r/2", &ret)
	if ret.Topic != "public/r/2" || ret.Size != len("v-public/r/2") {
		t.Fatalf("retained get: %+v", ret)
	}
	if r := do(t, "DELETE", e.base+"/api/retained/public/r/2", adm, "", nil); r.code != 200 {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", e.base+"/api/retained/public/r/2", adm, "", nil); r.code != 404 {
		t.Fatalf("deleted still there: %d", r.code)
	}
	if r := do(t, "DELETE", e.base+"/api/retained/public/r/2", adm, "", nil); r.code != 404 {
		t.Fatalf("delete twice: %d", r.code)
	}
	if r := do(t, "GET", e.base+"/api/retained?topic=a/%23/b", adm, "", nil); r.code != 400 {
		t.Fatalf("bad filter: %d", r.code)
	}

	// Runtime, config (secrets redacted), stats, system, brokers.
	var rt broker.Runtime
	get("/api/runtime", &rt)
	if rt.Version != broker.Version || rt.Goroutines == 0 || len(rt.Listeners) == 0 {
		t.Fatalf("runtime: %+v", rt)
	}
	r := do(t, "GET", e.base+"/api/config", adm, "", nil)
	if r.code != 200 || bytes.Contains(r.body, []byte(adminPW)) || bytes.Contains(r.body, []byte("sys-secret")) ||
		!bytes.Contains(r.body, []byte(`"admin_password":"***"`)) || !bytes.Contains(r.body, []byte(`"http_listen":"127.0.0.1:0"`)) {
		t.Fatalf("config: %d %s", r.code, r.body)
	}
	var st statsJSON
	get("/api/stats", &st)
	if st.Connected != 3 || st.Subscriptions != 5 || st.Retained != 2 || st.MessagesIn[1] != 3 {
		t.Fatalf("stats: %+v", st)
	}
	var sys map[string]int64
	get("/api/system", &sys)
	if sys["connections_count"] != 3 || sys["messages_retained"] != 2 {
		t.Fatalf("system: %v", sys)
	}
	get("/api/brokers?current=1&pageSize=10", &p)
	if p.Total != 1 || !strings.Contains(string(p.Data), `"is_local":true`) {
		t.Fatalf("brokers: %+v %s", p, p.Data)
	}

	// The original's /sys and /brokers with ?token=.
	r = do(t, "GET", e.base+"/sys?token=sys-secret", "", "", nil)
	var osys struct {
		Connections struct{ Count, Max int64 }
		Messages    struct{ Sent, Received, Retained int64 }
	}
	r.json(t, &osys)
	if r.code != 200 || osys.Connections.Count != 3 || osys.Messages.Retained != 2 || osys.Messages.Received != 3 {
		t.Fatalf("sys: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", e.base+"/sys?token=wrong", "", "", nil); r.code != 401 {
		t.Fatalf("sys wrong token: %d", r.code)
	}
	if r := do(t, "GET", e.base+"/sys", adm, "", nil); r.code != 200 {
		t.Fatalf("sys with admin token: %d", r.code)
	}
	if r := do(t, "GET", e.base+"/brokers?token=sys-secret", "", "", nil); r.code != 200 || !bytes.HasPrefix(r.body, []byte("[{")) {
		t.Fatalf("brokers: %d %s", r.code, r.body)
	}

	// Bans: list and lift.
	e.bans.Add(limit.Ban{ClientID: "evil", Reason: "test"})
	e.bans.Add(limit.Ban{IP: netip.MustParsePrefix("10.0.0.0/8")})
	get("/api/bans", &p)
	if p.Total != 2 || !strings.Contains(string(p.Data), `"client_id":"evil"`) || !strings.Contains(string(p.Data), `"ip":"10.0.0.0/8"`) {
		t.Fatalf("bans: %s", p.Data)
	}
	if r := do(t, "DELETE", e.base+"/api/bans?client_id=evil", adm, "", nil); r.code != 200 {
		t.Fatalf("lift: %d %s", r.code, r.body)
	}
	if r := do(t, "DELETE", e.base+"/api/bans?ip=10.0.0.0/8", adm, "", nil); r.code != 200 {
		t.Fatalf("lift ip: %d %s", r.code, r.body)
	}
	if r := do(t, "DELETE", e.base+"/api/bans?client_id=evil", adm, "", nil); r.code != 404 {
		t.Fatalf("lift twice: %d", r.code)
	}
	if r := do(t, "DELETE", e.base+"/api/bans?client_id=a&ip=1.2.3.4", adm, "", nil); r.code != 400 {
		t.Fatalf("lift both: %d", r.code)
	}
	if l, _ := e.bans.List(); len(l) != 0 {
		t.Fatalf("bans left: %v", l)
	}

	// Kick a connected client.
	if r := do(t, "POST", e.base+"/api/clients/dev-2/kick", adm, "", nil); r.code != 200 {
		t.Fatalf("kick: %d %s", r.code, r.body)
	}
	select {
	case <-c2.lost:
	case <-time.After(waitTimeout):
		t.Fatal("kicked client still connected")
	}
	if r := do(t, "POST", e.base+"/api/clients/dev-2/kick", adm, "", nil); r.code != 404 {
		t.Fatalf("kick gone client: %d", r.code)
	}
	c1.none(t) // nobody else was hurt
	if ci, _ := e.b.Client("dev-1"); !ci.Connected {
		t.Fatal("dev-1 lost")
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	if r := do(t, "GET", e.base+"/healthz", "", "", nil); r.code != 200 {
		t.Fatalf("healthz %d", r.code)
	}
	if r := do(t, "GET", e.base+"/readyz", "", "", nil); r.code != 200 {
		t.Fatalf("readyz %d", r.code)
	}
	scrape := func() map[string]float64 {
		t.Helper()
		r := do(t, "GET", e.base+"/metrics", "", "", nil)
		var p expfmt.TextParser
		fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		out := map[string]float64{}
		for name, f := range fams {
			for _, m := range f.Metric {
				key := name
				for _, l := range m.Label {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				switch {
				case m.Counter != nil:
					out[key] = m.Counter.GetValue()
				case m.Gauge != nil:
					out[key] = m.Gauge.GetValue()
				case m.Histogram != nil:
					out[key+",count"] = float64(m.Histogram.GetSampleCount())
				}
			}
		}
		return out
	}
	before := scrape()
	for _, name := range []string{"coolpy7_connections", "coolpy7_sessions", "coolpy7_subscriptions", "coolpy7_queued_messages",
		"coolpy7_inflight_messages", "coolpy7_retained_messages", "coolpy7_messages_dropped_total,reason=queue_full",
		"coolpy7_bytes_received_total", "coolpy7_route_latency_seconds,count", "coolpy7_auth_failures_total,listener=http", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	s := dial(t, e.mqtt, "watcher")
	s.subscribe(t, "public/#", 1)
	for i := range 5 {
		if r := do(t, "POST", e.base+"/pub?topic=public/m&qos=1", basic("bob", "bobpw"), "", []byte("m")); r.code != 200 {
			t.Fatalf("%d", r.code)
		}
		s.next(t)
		if i < 4 {
			time.Sleep(120 * time.Millisecond) // a new latency sample each tenth of a second
		}
	}
	do(t, "POST", e.base+"/pub?topic=public/m", basic("bob", "wrong"), "", []byte("m"))
	after := scrape()
	for name, want := range map[string]float64{
		"coolpy7_messages_received_total,qos=1":               5,
		"coolpy7_messages_sent_total,qos=1":                   5,
		"coolpy7_gateway_published_total,listener=http,qos=1": 5,
		"coolpy7_auth_failures_total,listener=http":           1,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s moved by %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]float64{"coolpy7_clients_connected": 1, "coolpy7_subscriptions": 1, "coolpy7_sessions": 1} {
		if after[name] != want {
			t.Errorf("%s = %v, want %v", name, after[name], want)
		}
	}
	if after["coolpy7_bytes_sent_total"] <= before["coolpy7_bytes_sent_total"] {
		t.Error("bytes sent did not move")
	}
	if after["coolpy7_route_latency_seconds,count"] <= before["coolpy7_route_latency_seconds,count"] {
		t.Error("no route latency sample")
	}
	if after["coolpy7_http_request_duration_seconds,code=200,route=/pub,count"] < 5 {
		t.Errorf("http request histogram: %v", after["coolpy7_http_request_duration_seconds,code=200,route=/pub,count"])
	}
}

func TestRateLimitAndCORS(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.HTTPRateLimit = 1
		c.HTTPCORSOrigins = []string{"https://ok.example"}
		c.SysToken = "t"
	})
	limited := 0
	for range 30 {
		if r := do(t, "GET", e.base+"/sys?token=t", "", "", nil); r.code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
	// Publishing is not under -sysl.
	for range 20 {
		if r := do(t, "POST", e.base+"/pub?topic=public/x", basic("bob", "bobpw"), "", []byte("x")); r.code != 200 {
			t.Fatalf("publish limited: %d", r.code)
		}
	}
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", e.base+"/pub", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := pre("https://ok.example"); res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://ok.example" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	if res := pre("https://evil.example"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("evil origin allowed: %v", res.Header)
	}
}

func TestAdminPasswordGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	var log1 bytes.Buffer
	a, err := newAdminAuth(cfg, slog.New(slog.NewTextHandler(&log1, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`password=(\S+)`).FindStringSubmatch(log1.String())
	if m == nil {
		t.Fatalf("password not logged: %s", log1.String())
	}
	pw := m[1]
	file, err := os.ReadFile(filepath.Join(dir, adminFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, []byte(pw)) || !bytes.HasPrefix(file, []byte("admin:$2")) {
		t.Fatalf("file keeps more than a bcrypt hash: %s", file)
	}
	if _, _, ok := a.login("admin", pw); !ok {
		t.Fatal("generated password refused")
	}
	var log2 bytes.Buffer
	b, err := newAdminAuth(cfg, slog.New(slog.NewTextHandler(&log2, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log2.String(), "password") {
		t.Fatalf("printed again: %s", log2.String())
	}
	if _, _, ok := b.login("admin", pw); !ok {
		t.Fatal("password not kept across restarts")
	}
	if _, _, ok := b.login("admin", "coolpy7"); ok {
		t.Fatal("the original's default password works")
	}
	// A configured password wins and nothing is generated.
	cfg.AdminPassword = "chosen"
	cfg.DataDir = t.TempDir()
	var log3 bytes.Buffer
	c, _ := newAdminAuth(cfg, slog.New(slog.NewTextHandler(&log3, nil)))
	if _, _, ok := c.login("admin", "chosen"); !ok || log3.Len() != 0 {
		t.Fatalf("configured password: %v %s", ok, log3.String())
	}
}

// The OpenAPI document and the handlers agree: every route in the table
// is documented, and every documented operation is served (the mux's own
// 404 and 405 are plain text; every handler answers JSON or metrics).
func TestOpenAPIMatchesHandlers(t *testing.T) {
	e := newEnv(t, nil)
	adm := e.login(t)
	r := do(t, "GET", e.base+"/api/openapi.json", "", "", nil)
	var doc struct {
		OpenAPI string
		Paths   map[string]map[string]any
	}
	r.json(t, &doc)
	if r.code != 200 || doc.OpenAPI == "" || len(doc.Paths) == 0 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			url := e.base + regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
			req, _ := http.NewRequest(strings.ToUpper(method), url, strings.NewReader("{}"))
			req.Header.Set("Authorization", adm)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if (res.StatusCode == 404 || res.StatusCode == 405) && strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("%s %s documented but not served: %d", method, path, res.StatusCode)
			}
		}
	}
	for _, rt := range e.h.table() {
		key := rt.method + " " + regexp.MustCompile(`\{([a-z]+)\.\.\.\}`).ReplaceAllString(rt.path, "{$1}")
		if !documented[key] {
			t.Errorf("%s served but not documented", key)
		}
	}
	// And a path that is not in the document is not served.
	if res := do(t, "GET", e.base+"/api/nothing", adm, "", nil); res.code != 404 {
		t.Errorf("undocumented path: %d", res.code)
	}
}
