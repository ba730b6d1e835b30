package broker

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/packets"
)

// aclServer is benchServer's broker with an ACL file and the publish flood
// rule on, so every PUBLISH goes through the guard.
func aclServer(t testing.TB, n int) (*Server, any, []byte, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "acl")
	rules := "allow sub bench/+\nallow pub bench/%c\nallow pub bench/x\ndeny pub bench/secret\n"
	for i := range 1000 {
		rules += fmt.Sprintf("user u%d\nallow pubsub u%d/#\n", i, i)
	}
	if err := os.WriteFile(p, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = "" // in memory: parallel tests must not share ./data
	cfg.Listen = ""
	cfg.SysInterval = 0
	cfg.ACLFile = p
	cfg.PublishLimitMs = 0
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeSecurity)
	for i := 0; i < n; i++ {
		st := open(s, &fakeConn{discard: true})
		s.Data(st, encode(packets.V311, connectPkt(fmt.Sprintf("sub%d", i)), subscribePkt(1, "bench/+", 0)))
	}
	pub := open(s, &fakeConn{discard: true})
	s.Data(pub, encode(packets.V311, connectPkt("publisher")))
	if pub.(*client).guard == nil {
		t.Fatal("the publisher has no guard: the ACL is not applied")
	}
	allowed := encode(packets.V311, &packets.Packet{Type: packets.Publish, Topic: []byte("bench/x"), Payload: make([]byte, 64)})
	denied := encode(packets.V311, &packets.Packet{Type: packets.Publish, Topic: []byte("bench/secret"), Payload: make([]byte, 64)})
	return s, pub, allowed, denied
}

// TestPublishACLAllocs: the ACL check keeps an inbound QoS 0 PUBLISH free
// of allocations, allowed or denied, and denials are counted.
func TestPublishACLAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	s, pub, allowed, denied := aclServer(t, 10)
	if n := testing.AllocsPerRun(1000, func() { s.Data(pub, allowed) }); n != 0 {
		t.Errorf("allowed PUBLISH: %v allocations", n)
	}
	before := s.stats.pubDenied.Load()
	if n := testing.AllocsPerRun(1000, func() { s.Data(pub, denied) }); n != 0 {
		t.Errorf("denied PUBLISH: %v allocations", n)
	}
	if s.stats.pubDenied.Load()-before < 1000 {
		t.Errorf("denials counted: %d", s.stats.pubDenied.Load()-before)
	}
}

// BenchmarkPublishQoS0ACL is BenchmarkPublishQoS0 with an ACL file of
// 1000 users' sections and a deny rule: the price of the check.
func BenchmarkPublishQoS0ACL(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s, pub, msg, _ := aclServer(b, n)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Data(pub, msg)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// TestSecurityConfigErrors: a broken auth configuration is an error from
// New that names the problem, not a broker that lets everyone in.
func TestSecurityConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("allow pub a/#/b\n"), 0o600)
	for name, mod := range map[string]func(*config.Config){
		"missing password file": func(c *config.Config) { c.PasswordFile = filepath.Join(dir, "none") },
		"bad ACL file":          func(c *config.Config) { c.ACLFile = bad },
		"missing JWT key file":  func(c *config.Config) { c.JWTPublicKey = filepath.Join(dir, "none.pem") },
		"webhook and extend":    func(c *config.Config) { c.WebhookURL = "http://127.0.0.1:1"; c.AuthMode = 2 },
		"long extend token":     func(c *config.Config) { c.AuthMode = 2; c.ExtendToken = "much too long a token" },
	} {
		cfg := config.Default()
		cfg.DataDir = "" // in memory: parallel tests must not share ./data
		cfg.Listen = ""
		mod(&cfg)
		if _, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
