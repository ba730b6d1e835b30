package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/coolpy7/coolpy7/loadgen"
	"github.com/gorilla/websocket"
)

// TestMain lets the test binary serve as cp7bench's worker process, which
// runs re-execute (os.Executable) when they spread over processes.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == loadgen.WorkerArg {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startBroker runs a Coolpy7 broker on a loopback port for one test.
func startBroker(t *testing.T) (host, port string) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.SysInterval = 0
	cfg.DataDir = ""
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := broker.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	host, port, err = net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// runJSON runs cp7bench with args and returns its JSON summary.
func runJSON(t *testing.T, args ...string) *loadgen.Result {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "result-*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var stderr bytes.Buffer
	if code := run(append(args, "--json"), out, &stderr); code != 0 {
		t.Fatalf("cp7bench %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	var res loadgen.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("JSON summary: %v\n%s", err, b)
	}
	t.Logf("cp7bench %s:\n%s", strings.Join(args, " "), stderr.String())
	return &res
}

// checkClients asserts that every client connected and none was lost.
func checkClients(t *testing.T, res *loadgen.Result) {
	t.Helper()
	c := res.Clients
	if c.Connected != int64(c.Target) || c.Failed != 0 || c.Dropped != 0 || len(res.Failures) != 0 {
		t.Fatalf("clients: %+v, failures %v", c, res.Failures)
	}
}

// checkDelivery asserts the end-to-end counts: everything sent arrived,
// exactly once, and every QoS 1/2 publish was acknowledged.
func checkDelivery(t *testing.T, res *loadgen.Result, qos int) {
	t.Helper()
	m := res.Messages
	if m == nil || m.Sent == 0 {
		t.Fatalf("nothing sent: %+v", m)
	}
	if m.Received != m.Expected || m.Lost != 0 || m.Extra != 0 {
		t.Fatalf("sent %d, expected %d deliveries, received %d (lost %d, extra %d)", m.Sent, m.Expected, m.Received, m.Lost, m.Extra)
	}
	if qos > 0 && m.Acked != m.Sent {
		t.Fatalf("QoS %d: sent %d, acked %d", qos, m.Sent, m.Acked)
	}
	if res.Latency == nil || res.Latency.Count != uint64(m.Received) {
		t.Fatalf("latency samples %+v for %d received", res.Latency, m.Received)
	}
	if m.OfferedPerS <= 0 || m.DeliveredPerS <= 0 {
		t.Fatalf("rates: offered %f delivered %f", m.OfferedPerS, m.DeliveredPerS)
	}
}

func TestConn(t *testing.T) {
	h, p := startBroker(t)
	res := runJSON(t, "conn", "-h", h, "-p", p, "-c", "300", "--duration", "0.2", "-R", "3000")
	checkClients(t, res)
	if res.Connect.PerS <= 0 || res.Connect.LatencyMs == nil || res.Connect.LatencyMs.Count != 300 {
		t.Fatalf("connect: %+v", res.Connect)
	}
	// 300 connects at 3000/s take about 0.1 s, not much less.
	if res.Connect.ElapsedS < 0.09 {
		t.Fatalf("-R 3000 connected 300 clients in %.3fs", res.Connect.ElapsedS)
	}
}

func TestP2P(t *testing.T) {
	h, p := startBroker(t)
	for _, qos := range []int{0, 1, 2} {
		t.Run("qos"+strconv.Itoa(qos), func(t *testing.T) {
			res := runJSON(t, "p2p", "-h", h, "-p", p, "-c", "20", "-q", strconv.Itoa(qos),
				"--duration", "1", "--prefix", "p2p"+strconv.Itoa(qos), "-t", "p2p/"+strconv.Itoa(qos)+"/%i")
			checkClients(t, res)
			checkDelivery(t, res, qos)
			if res.Messages.Expected != res.Messages.Sent {
				t.Fatalf("p2p expects %d deliveries for %d sent", res.Messages.Expected, res.Messages.Sent)
			}
		})
	}
}

func TestP2PAtFixedRate(t *testing.T) {
	h, p := startBroker(t)
	// 10 publishers every 10 ms: 1000 msg/s for 1 s.
	res := runJSON(t, "p2p", "-h", h, "-p", p, "-c", "10", "-q", "1", "-I", "10", "--duration", "1")
	checkClients(t, res)
	checkDelivery(t, res, 1)
	if s := res.Messages.Sent; s < 900 || s > 1100 {
		t.Fatalf("sent %d at 1000/s for 1 s", s)
	}
}

func TestProtocolVersions(t *testing.T) {
	h, p := startBroker(t)
	for _, v := range []string{"3", "5"} {
		t.Run("V"+v, func(t *testing.T) {
			res := runJSON(t, "p2p", "-h", h, "-p", p, "-V", v, "-c", "5", "-q", "1", "--duration", "0.5",
				"--prefix", "v"+v, "-t", "v"+v+"/%i")
			checkClients(t, res)
			checkDelivery(t, res, 1)
		})
	}
}

func TestFanout(t *testing.T) {
	h, p := startBroker(t)
	res := runJSON(t, "fanout", "-h", h, "-p", p, "-c", "25", "--pubs", "2", "-I", "5ms", "-q", "1", "--duration", "1")
	checkClients(t, res)
	checkDelivery(t, res, 1)
	if res.Messages.Expected != 25*res.Messages.Sent {
		t.Fatalf("fanout to 25 expects %d deliveries for %d sent", res.Messages.Expected, res.Messages.Sent)
	}
}

func TestFanin(t *testing.T) {
	h, p := startBroker(t)
	res := runJSON(t, "fanin", "-h", h, "-p", p, "-c", "30", "-I", "20ms", "-q", "1", "--duration", "1")
	checkClients(t, res)
	checkDelivery(t, res, 1)
	if res.Clients.Subscribed != 1 || res.Messages.Expected != res.Messages.Sent {
		t.Fatalf("fanin: %d subscribed, expected %d for %d sent", res.Clients.Subscribed, res.Messages.Expected, res.Messages.Sent)
	}
}

// TestSubAndPub runs the two halves as separate commands, as one would
// against a remote broker, and checks that they agree.
func TestSubAndPub(t *testing.T) {
	h, p := startBroker(t)
	var sub *loadgen.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		sub = runJSON(t, "sub", "-h", h, "-p", p, "-c", "4", "-t", "sp/%i", "-q", "1", "--duration", "3")
	})
	time.Sleep(time.Second) // the subscribers are in well before
	pub := runJSON(t, "pub", "-h", h, "-p", p, "-c", "4", "-t", "sp/%i", "-q", "1", "-I", "10ms", "--duration", "1")
	wg.Wait()
	checkClients(t, sub)
	checkClients(t, pub)
	pm, sm := pub.Messages, sub.Messages
	if pm.Sent == 0 || pm.Acked != pm.Sent || pm.AckedPerS <= 0 {
		t.Fatalf("pub: sent %d acked %d (%f/s)", pm.Sent, pm.Acked, pm.AckedPerS)
	}
	if sm.Received != pm.Sent || sub.Latency == nil || sub.Latency.Count != uint64(sm.Received) {
		t.Fatalf("sub received %d of %d sent", sm.Received, pm.Sent)
	}
}

func TestPubFlatOut(t *testing.T) {
	h, p := startBroker(t)
	for _, qos := range []string{"0", "1"} {
		res := runJSON(t, "pub", "-h", h, "-p", p, "-c", "3", "-q", qos, "-I", "0", "--duration", "0.5", "--prefix", "flat"+qos)
		checkClients(t, res)
		m := res.Messages
		if m.Sent == 0 || (qos == "1" && m.Acked != m.Sent) {
			t.Fatalf("QoS %s flat out: sent %d acked %d", qos, m.Sent, m.Acked)
		}
	}
}

// TestWorkerProcesses forces a small run over several processes, as large
// ones are spread, and checks that their counts add up.
func TestWorkerProcesses(t *testing.T) {
	h, p := startBroker(t)
	res := runJSON(t, "p2p", "-h", h, "-p", p, "-c", "12", "-q", "1", "--duration", "1", "--conns-per-proc", "10")
	if res.Client.Procs != 3 {
		t.Fatalf("24 sockets at 10 per process ran in %d processes, want 3", res.Client.Procs)
	}
	checkClients(t, res)
	checkDelivery(t, res, 1)
	if res.Clients.Subscribed != 12 || len(res.Timeline) == 0 {
		t.Fatalf("subscribed %d, %d ticks", res.Clients.Subscribed, len(res.Timeline))
	}
}

func TestBrokerSampling(t *testing.T) {
	h, p := startBroker(t) // in this process, so its pid is ours
	res := runJSON(t, "p2p", "-h", h, "-p", p, "-c", "10", "--duration", "1", "--rss-pid", strconv.Itoa(os.Getpid()))
	b := res.BrokerUsage
	if b == nil || b.Error != "" || b.RSSBaseKB <= 0 || b.RSSEndKB <= 0 || b.CPUSec <= 0 || b.CPUSecPerMillion <= 0 {
		t.Fatalf("broker usage %+v", b)
	}
	if res.Client.CPUSec <= 0 {
		t.Fatalf("client CPU %+v", res.Client)
	}
}

func TestConnectFailuresByReason(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close() // nothing listens there now
	res := runJSON(t, "conn", "-p", port, "-c", "5", "--duration", "0.1")
	if res.Clients.Failed != 5 || res.Failures["dial: connection refused"] != 5 {
		t.Fatalf("clients %+v failures %v", res.Clients, res.Failures)
	}
}

func TestChartFromResults(t *testing.T) {
	h, p := startBroker(t)
	dir := t.TempDir()
	var files []string
	for _, b := range []string{"alpha", "beta"} {
		res := runJSON(t, "p2p", "-h", h, "-p", p, "-c", "5", "--duration", "0.3", "--name", "p2p-qos0", "--broker", b, "--prefix", b)
		raw, _ := json.Marshal(res)
		f := filepath.Join(dir, b+".json")
		if err := os.WriteFile(f, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out := filepath.Join(dir, "out")
	var stdout bytes.Buffer
	tmp, _ := os.CreateTemp(dir, "stdout")
	defer tmp.Close()
	if code := run(append([]string{"chart", "-o", out}, files...), tmp, &stdout); code != 0 {
		t.Fatalf("chart: exit %d: %s", code, stdout.String())
	}
	svg, err := os.ReadFile(filepath.Join(out, "p2p-qos0.svg"))
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("beta")) {
		t.Fatalf("chart: %v\n%s", err, svg)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil || !bytes.Contains(md, []byte("alpha ÷ beta")) || !bytes.Contains(md, []byte("| p2p-qos0 | delivered (msg/s) ↑ |")) {
		t.Fatalf("table: %v\n%s", err, md)
	}
}

func TestUnbuiltPublishModes(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"pub", "--via", "http"}, os.Stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "not built yet") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// TestTLSAndWebSocket puts a TLS terminator and a WebSocket bridge in front
// of the broker, so that the client's TLS and WebSocket wires are tested
// whatever listeners the broker has.
func TestTLSAndWebSocket(t *testing.T) {
	h, p := startBroker(t)
	upstream := net.JoinHostPort(h, p)
	cert := selfSigned(t)

	tlsLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tlsLn.Close() })
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go pipe(t, c, upstream)
		}
	}()

	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	wsSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		bridgeWS(ws, upstream)
	})}
	wsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = wsSrv.Serve(wsLn) }()
	t.Cleanup(func() { wsSrv.Close() })

	_, tlsPort, _ := net.SplitHostPort(tlsLn.Addr().String())
	_, wsPort, _ := net.SplitHostPort(wsLn.Addr().String())
	for name, args := range map[string][]string{
		"tls": {"-p", tlsPort, "--tls"},
		"ws":  {"-p", wsPort, "--ws"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runJSON(t, append([]string{"p2p", "-c", "5", "-q", "1", "--duration", "0.5", "--prefix", name, "-t", name + "/%i"}, args...)...)
			checkClients(t, res)
			checkDelivery(t, res, 1)
		})
	}
}

// pipe relays a terminated TLS connection to the broker.
func pipe(t *testing.T, c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		t.Error(err)
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	_, _ = io.Copy(c, u)
}

// bridgeWS relays WebSocket binary messages to the broker's TCP stream.
func bridgeWS(ws *websocket.Conn, upstream string) {
	defer ws.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := u.Read(buf)
			if n > 0 && ws.WriteMessage(websocket.BinaryMessage, buf[:n]) != nil {
				return
			}
			if err != nil {
				ws.Close()
				return
			}
		}
	}()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if _, err := u.Write(msg); err != nil {
			return
		}
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
