package transport_test

import (
	"context"
	stdtls "crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/transport"
)

// TestCertAuth: with cert_auth, a TLS client whose certificate the
// listener verified is in, with its CN as its identity (%u in the ACL); a
// client without a certificate and without credentials is refused (5).
func TestCertAuth(t *testing.T) {
	ca := newCA(t, "cert auth CA")
	dir := t.TempDir()
	cert, key := ca.server(t, dir)
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclFile, []byte("allow pubsub %u/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = "" // in memory: parallel tests must not share ./data
	cfg.Listen = ""
	cfg.TLSListen = "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey = cert, key
	cfg.TLSClientAuth, cfg.TLSClientCA = transport.ClientAuthOptional, ca.write(t, dir)
	cfg.CertAuth = true
	cfg.ACLFile = aclFile
	cfg.SysInterval = 0
	srv, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	url := "tls://" + srv.Addr()

	tc := &stdtls.Config{RootCAs: ca.pool(), Certificates: []stdtls.Certificate{ca.client(t, "sensor-42", nil)}}
	c := mustDial(t, url, "any-id", tc)
	defer c.Disconnect(0)
	tok := c.SubscribeMultiple(map[string]byte{"sensor-42/#": 1, "sensor-43/#": 1}, nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	got := tok.(*mqtt.SubscribeToken).Result()
	if got["sensor-42/#"] != 1 || got["sensor-43/#"] != 0x80 {
		t.Errorf("SUBACK %v: want the CN's own tree granted and another refused", got)
	}

	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("no-cert").SetTLSConfig(&stdtls.Config{RootCAs: ca.pool()}).
		SetAutoReconnect(false).SetConnectTimeout(wait)
	nc := mqtt.NewClient(o)
	ct := nc.Connect()
	if !ct.WaitTimeout(2 * wait) {
		t.Fatal("no CONNACK")
	}
	if rc := ct.(*mqtt.ConnectToken).ReturnCode(); rc != 5 {
		t.Errorf("no certificate, no credentials: return code %d, want 5", rc)
	}
}
