package transport_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	nbws "github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/coolpy7/coolpy7/transport"
)

// The benchmarks here open thousands of idle connections and report what
// each costs, so they only run when asked:
//
//	CP7_BENCH_CONNS=15000 go test ./transport -run 'TestIdle|TestLibraries' -v -timeout 30m
//
// TestIdleBrokerMemory runs the broker binary with one listener at a time
// (TCP, WS, TLS, WSS), connects that many MQTT clients that then stay
// silent, and reads the broker's heap (through -pprof, after a GC) and its
// RSS. TestLibraries compares llib's TLS with crypto/tls, and the
// WebSocket listener with nbio's nbhttp, in a bare server without the
// broker: idle memory, and handshake CPU.

// benchConns is the number of connections asked for, or 0.
func benchConns(t *testing.T) int {
	n, _ := strconv.Atoi(os.Getenv("CP7_BENCH_CONNS"))
	if n <= 0 {
		t.Skip("set CP7_BENCH_CONNS to run")
	}
	return n
}

// memSample is a process's memory: live Go heap, heap spans in use (live
// objects and the free space between them), and resident set.
type memSample struct{ live, heap, rss int64 }

// perConn is the growth from a to b per connection, in KB.
func perConn(a, b memSample, n int) (live, heap, rss float64) {
	kb := func(x, y int64) float64 { return float64(y-x) / float64(n) / 1024 }
	return kb(a.live, b.live), kb(a.heap, b.heap), kb(a.rss, b.rss)
}

// procCPU is a process's user+system CPU seconds, from /proc.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// procRSS is a process's resident set in bytes, from /proc.
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// benchClient opens idle MQTT connections of one kind.
type benchClient struct {
	kind string // tcp, ws, tls, wss
	addr string
	tc   *stdtls.Config
}

// open connects, upgrades and handshakes as the kind needs, sends CONNECT
// (keepalive 0: the broker never times the connection out) and waits for
// CONNACK.
func (b benchClient) open(id int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", b.addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if b.kind == "tls" || b.kind == "wss" {
		tc := stdtls.Client(c, b.tc)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	r := bufio.NewReader(c)
	cid := fmt.Sprintf("idle-%d", id)
	vh := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, byte(len(cid))}, cid...)
	pkt := append([]byte{0x10, byte(len(vh))}, vh...)
	want := 4
	if b.kind == "ws" || b.kind == "wss" {
		key := make([]byte, 16)
		_, _ = rand.Read(key)
		req := "GET /mqtt HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Key: " +
			base64.StdEncoding.EncodeToString(key) + "\r\n\r\n"
		if _, err := io.WriteString(c, req); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			c.Close()
			return nil, fmt.Errorf("upgrade: %v %v", resp, err)
		}
		frame := append([]byte{0x82, 0x80 | byte(len(pkt)), 0, 0, 0, 0}, pkt...) // zero mask
		pkt, want = frame, 6
	}
	if _, err := c.Write(pkt); err != nil {
		c.Close()
		return nil, err
	}
	ack := make([]byte, want)
	if _, err := io.ReadFull(r, ack); err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// openAll opens n connections from 32 goroutines and reports how long it
// took.
func (b benchClient) openAll(t *testing.T, n int) ([]net.Conn, time.Duration) {
	t.Helper()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				c, err := b.open(i)
				if err != nil {
					failed.Store(fmt.Errorf("connection %d: %w", i, err))
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		t.Fatal(err)
	}
	return conns, time.Since(start)
}

// TestIdleBrokerMemory measures the broker's memory per idle connection
// over each transport, and its TLS handshake rate.
func TestIdleBrokerMemory(t *testing.T) {
	n := benchConns(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "coolpy7")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/coolpy7").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ca := newCA(t, "bench CA")
	cert, key := ca.server(t, dir)
	tc := &stdtls.Config{RootCAs: ca.pool(), ServerName: "localhost"}

	var tcpLive, tcpRSS float64
	for _, kind := range []string{"tcp", "ws", "tls", "wss"} {
		addr, pprofAddr := freeAddr(t), freeAddr(t)
		flag := map[string]string{"tcp": "-l", "ws": "-ws", "tls": "-tls", "wss": "-wss"}[kind]
		args := []string{"-log", "error", "-sys", "0", "-nt", "60", "-pprof", pprofAddr, "-tlscert", cert, "-tlskey", key}
		if kind != "tcp" {
			args = append(args, "-l", "")
		}
		cmd := exec.Command(bin, append(args, flag, addr)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitListening(t, addr)
		waitListening(t, pprofAddr)
		pid := cmd.Process.Pid
		base := brokerMem(t, pid, pprofAddr)
		cpu0 := procCPU(t, pid)
		conns, took := benchClient{kind, addr, tc}.openAll(t, n)
		cpu := procCPU(t, pid) - cpu0
		time.Sleep(2 * time.Second)
		end := brokerMem(t, pid, pprofAddr)
		live, heap, rss := perConn(base, end, n)
		if kind == "tcp" {
			tcpLive, tcpRSS = live, rss
		}
		t.Logf("%-4s %d idle: live heap %.2f KB/conn (%.1fx TCP), heap in use %.2f, RSS %.2f (%.1fx TCP); opened in %v (%.0f/s), broker CPU %.2fs (%.0f connects per broker CPU-second)",
			kind, n, live, live/tcpLive, heap, rss, rss/tcpRSS, took.Round(time.Millisecond), float64(n)/took.Seconds(), cpu, float64(n)/cpu)
		for _, c := range conns {
			c.Close()
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never listened", addr)
}

// brokerMem reads the broker's heap in use after a GC (pprof's heap
// profile with gc=1 carries runtime.MemStats) and its RSS.
func brokerMem(t *testing.T, pid int, pprofAddr string) memSample {
	t.Helper()
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	stat := func(name string) int64 {
		m := regexp.MustCompile(`# ` + name + ` = (\d+)`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in the heap profile", name)
		}
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return v
	}
	return memSample{live: stat("HeapAlloc"), heap: stat("HeapInuse"), rss: procRSS(t, pid)}
}

// TestLibraries compares, in a bare server without the broker (one that
// answers CONNECT with CONNACK and keeps the connection), what an idle
// connection costs, and for TLS how much server CPU a handshake takes:
//
//   - tcp: the TCP listener, the baseline for
//   - llib: the TLS listener (llib's TLS on the TCP listener's loops), and
//   - ws: the WebSocket listener;
//   - std-tcp: net.Listener connections without goroutines, the baseline
//     for
//   - std: crypto/tls, each handshake on a goroutine of its own that ends
//     after the first record, leaving the connection idle and goroutine-free
//     as an event loop would hold it: the alternative to llib;
//   - nbio-tcp: a bare nbio engine, the baseline for
//   - nbhttp-ws: nbio's nbhttp and its websocket.Upgrader, the library
//     the WebSocket listener does not use (with its read-deadline timer
//     turned off, as the broker has keepalive of its own).
//
// The servers run in a child process (this test binary again), so the
// clients' memory is not counted.
func TestLibraries(t *testing.T) {
	n := benchConns(t)
	ca := newCA(t, "lib CA")
	dir := t.TempDir()
	cert, key := ca.server(t, dir)
	rsaCert, rsaKey := rsaServer(t, ca, dir)
	tc := &stdtls.Config{RootCAs: ca.pool(), ServerName: "localhost"}
	baseline := map[string]string{"llib": "tcp", "ws": "tcp", "std": "std-tcp", "nbhttp-ws": "nbio-tcp"}
	base := map[string]float64{}
	for _, v := range []struct{ variant, kind, cert, key string }{
		{"tcp", "tcp", cert, key}, {"llib", "tls", cert, key}, {"ws", "ws", cert, key},
		{"std-tcp", "tcp", cert, key}, {"std", "tls", cert, key},
		{"llib", "tls", rsaCert, rsaKey}, {"std", "tls", rsaCert, rsaKey},
		{"nbio-tcp", "tcp", cert, key}, {"nbhttp-ws", "ws", cert, key},
	} {
		rsa := v.cert == rsaCert
		count := n
		if rsa {
			count = min(n, 3000) // RSA is for the handshake rate only
		}
		s := startLibServer(t, v.variant, v.cert, v.key)
		m0 := s.mem(t)
		cpu0 := procCPU(t, s.pid)
		conns, took := benchClient{v.kind, s.addr, tc}.openAll(t, count)
		cpu := procCPU(t, s.pid) - cpu0
		time.Sleep(time.Second)
		m1 := s.mem(t)
		live, heap, rss := perConn(m0, m1, count)
		over := live - base[baseline[v.variant]]
		switch {
		case v.kind == "tcp":
			base[v.variant] = live
			t.Logf("%-9s %d idle: live heap %.2f KB/conn, heap in use %.2f, RSS %.2f", v.variant, count, live, heap, rss)
		case v.kind == "ws":
			t.Logf("%-9s %d idle: live heap %.2f KB/conn (%.2f over %s), heap in use %.2f, RSS %.2f", v.variant, count, live, over, baseline[v.variant], heap, rss)
		default:
			certName := "ECDSA P-256"
			if rsa {
				certName = "RSA 2048"
			}
			t.Logf("%-9s %s, %d idle: live heap %.2f KB/conn (TLS %.2f), heap in use %.2f, RSS %.2f; server CPU %.0f µs/handshake; %.0f handshakes/s with the clients on the same cores",
				v.variant, certName, count, live, over, heap, rss, cpu/float64(count)*1e6, float64(count)/took.Seconds())
		}
		for _, c := range conns {
			c.Close()
		}
		s.stop()
	}
}

// rsaServer writes an RSA 2048 server certificate and key.
func rsaServer(t *testing.T, ca *testCA, dir string) (string, string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der := ca.issue(t, "rsa server", k.Public(), func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.DNSNames = []string{"localhost"}
	})
	cf, kf := filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "rsa.key")
	writePEM(t, cf, "CERTIFICATE", der)
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, kf, "PRIVATE KEY", kd)
	return cf, kf
}

// libServer is a child process running one server variant.
type libServer struct {
	cmd  *exec.Cmd
	pid  int
	addr string
	in   io.WriteCloser
	out  *bufio.Reader
}

func startLibServer(t *testing.T, variant, cert, key string) *libServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLibServerChild$")
	cmd.Env = append(os.Environ(), "CP7_LIB_SERVER="+variant, "CP7_LIB_CERT="+cert, "CP7_LIB_KEY="+key)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &libServer{cmd: cmd, pid: cmd.Process.Pid, in: in, out: bufio.NewReader(out)}
	line, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	s.addr = strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	return s
}

// mem asks the child to collect garbage and report its heap in use.
func (s *libServer) mem(t *testing.T) memSample {
	t.Helper()
	if _, err := io.WriteString(s.in, "mem\n"); err != nil {
		t.Fatal(err)
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var m memSample
	if _, err := fmt.Sscan(line, &m.live, &m.heap); err != nil {
		t.Fatalf("child said %q", line)
	}
	m.rss = procRSS(t, s.pid)
	return m
}

func (s *libServer) stop() {
	s.in.Close()
	_ = s.cmd.Wait()
}

// TestLibServerChild is the child side of TestLibraries.
func TestLibServerChild(t *testing.T) {
	variant := os.Getenv("CP7_LIB_SERVER")
	if variant == "" {
		t.Skip("run by TestLibraries")
	}
	var mu sync.Mutex
	var held []any // what keeps each connection alive
	keep := func(v any) {
		mu.Lock()
		held = append(held, v)
		mu.Unlock()
	}
	h := &holder{keep: keep}
	var addr string
	switch variant {
	case "nbio-tcp":
		// A bare nbio engine, so that what nbhttp adds is measured
		// against the loop it runs on.
		g := nbio.NewEngine(nbio.Config{Network: "tcp", Addrs: []string{"127.0.0.1:0"},
			NPoller: runtime.GOMAXPROCS(0), ReadBufferSize: 64 << 10})
		g.OnOpen(func(c *nbio.Conn) { keep(c) })
		g.OnData(func(c *nbio.Conn, _ []byte) { _, _ = c.Write([]byte{0x20, 2, 0, 0}) })
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		defer g.Stop()
		addr = g.Addrs[0]
	case "tcp", "llib", "ws":
		var l transport.Listener
		switch variant {
		case "llib":
			st, err := transport.LoadServerTLS(transport.TLSOptions{CertFile: os.Getenv("CP7_LIB_CERT"), KeyFile: os.Getenv("CP7_LIB_KEY")})
			if err != nil {
				t.Fatal(err)
			}
			l = transport.NewTLS("127.0.0.1:0", st, h)
		case "ws":
			l = transport.NewWebSocket("127.0.0.1:0", transport.WSOptions{}, nil, h)
		default:
			l = transport.NewTCP("127.0.0.1:0", h)
		}
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		defer l.Stop()
		addr = l.Addr()
	case "nbhttp-ws":
		u := nbws.NewUpgrader()
		u.Subprotocols = []string{"mqtt"}
		u.KeepaliveTime = 0
		u.CheckOrigin = func(*http.Request) bool { return true }
		u.OnMessage(func(c *nbws.Conn, _ nbws.MessageType, _ []byte) {
			_ = c.WriteMessage(nbws.BinaryMessage, []byte{0x20, 2, 0, 0})
		})
		e := nbhttp.NewEngine(nbhttp.Config{
			Network: "tcp",
			Addrs:   []string{"127.0.0.1:0"},
			NPoller: runtime.GOMAXPROCS(0),
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c, err := u.Upgrade(w, r, nil); err == nil {
					keep(c)
				}
			}),
		})
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		defer e.Stop()
		addr = e.Addrs[0]
	case "std-tcp", "std":
		cert, err := stdtls.LoadX509KeyPair(os.Getenv("CP7_LIB_CERT"), os.Getenv("CP7_LIB_KEY"))
		if err != nil {
			t.Fatal(err)
		}
		conf := &stdtls.Config{Certificates: []stdtls.Certificate{cert}, SessionTicketsDisabled: true}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr = ln.Addr().String()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					var conn net.Conn = c
					if variant == "std" {
						conn = stdtls.Server(c, conf)
					}
					// Read the CONNECT, answer CONNACK, and leave the
					// connection idle with no goroutine.
					buf := make([]byte, 512)
					if _, err := conn.Read(buf); err != nil {
						c.Close()
						return
					}
					_, _ = conn.Write([]byte{0x20, 2, 0, 0})
					keep(conn)
				}()
			}
		}()
	}
	fmt.Printf("addr %s\n", addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(ms.HeapAlloc, ms.HeapInuse)
	}
	mu.Lock()
	runtime.KeepAlive(held)
	mu.Unlock()
}

// holder is a Handler that answers CONNECT with CONNACK and otherwise
// only keeps its connections.
type holder struct{ keep func(any) }

func (h *holder) Open(c transport.Conn) any { h.keep(c); return c }
func (h *holder) Data(state any, _ []byte) {
	_, _ = state.(transport.Conn).Write([]byte{0x20, 2, 0, 0})
}
func (h *holder) Written(any, int) {}
func (h *holder) Close(any, error) {}
