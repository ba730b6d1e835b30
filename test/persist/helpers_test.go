// Package persist tests persistence end to end: the real coolpy7 binary,
// built by the test, run as a child process so that it can be stopped with
// SIGTERM, killed with SIGKILL and started again on the same data
// directory, with real MQTT clients (paho.mqtt.golang for 3.1.1,
// paho.golang for 5.0) on real sockets.
package persist

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const waitTimeout = 10 * time.Second

var (
	binary     string
	buildFlags []string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coolpy7-persist")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "coolpy7")
	args := append(append([]string{"build"}, buildFlags...), "-o", binary, "github.com/coolpy7/coolpy7/cmd/coolpy7")
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building coolpy7:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// broker is one run of the binary.
type broker struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`msg=listening proto=mqtt addr=(\S+)`)

// start runs the broker on a free loopback port with dataDir and args,
// and waits until it listens.
func start(t *testing.T, dataDir string, args ...string) *broker {
	t.Helper()
	// -hl and -cl off: the HTTP and CoAP defaults (:8081, UDP :1883) would
	// clash between brokers run side by side.
	args = append([]string{"-l", "127.0.0.1:0", "-hl", "", "-cl", "", "-data", dataDir, "-sys", "1", "-log", "debug"}, args...)
	b := &broker{t: t, log: &syncBuffer{}, done: make(chan error, 1)}
	b.cmd = exec.Command(binary, args...)
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			b.log.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		b.done <- b.cmd.Wait()
	}()
	select {
	case b.addr = <-addr:
	case err := <-b.done:
		t.Fatalf("broker exited before listening: %v\n%s", err, b.log)
	case <-time.After(waitTimeout):
		b.cmd.Process.Kill()
		t.Fatalf("broker not listening after %v\n%s", waitTimeout, b.log)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			<-b.done
		}
		if strings.Contains(b.log.String(), "DATA RACE") {
			t.Errorf("the broker reported a data race")
		}
		if t.Failed() {
			t.Logf("broker log:\n%s", b.log)
		}
	})
	return b
}

// stop ends the broker with SIGTERM, as an operator would.
func (b *broker) stop() {
	b.t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.done:
		if err != nil {
			b.t.Fatalf("broker exited with %v\n%s", err, b.log)
		}
	case <-time.After(waitTimeout):
		b.cmd.Process.Kill()
		b.t.Fatalf("broker did not stop within %v", waitTimeout)
	}
}

// kill ends the broker with SIGKILL: no shutdown, no final sync.
func (b *broker) kill() {
	b.cmd.Process.Kill()
	<-b.done
}

// client3 is a paho.mqtt.golang 3.1.1 client whose messages all land in
// msgs.
type client3 struct {
	mqtt.Client
	msgs chan mqtt.Message
}

func connect3(t *testing.T, addr, id string, clean bool, mods ...func(*mqtt.ClientOptions)) (*client3, bool) {
	t.Helper()
	c := &client3{msgs: make(chan mqtt.Message, 100000)}
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(waitTimeout).
		SetWriteTimeout(waitTimeout).
		SetOrderMatters(true).
		SetStore(mqtt.NewMemoryStore()).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.msgs <- m })
	for _, m := range mods {
		m(o)
	}
	c.Client = mqtt.NewClient(o)
	tok := c.Connect().(*mqtt.ConnectToken)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("client %q: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnectionOpen() {
			c.Disconnect(0)
		}
	})
	return c, tok.SessionPresent()
}

func (c *client3) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func (c *client3) publish(t *testing.T, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// next waits for a message.
func (c *client3) next(t *testing.T, what string) mqtt.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// none checks no message arrives for d.
func (c *client3) none(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("%s: got %s %q", what, m.Topic(), m.Payload())
	case <-time.After(d):
	}
}

// client5 is a paho.golang 5.0 client whose messages land in msgs.
type client5 struct {
	*paho.Client
	conn net.Conn
	msgs chan *paho.Publish
}

func connect5(t *testing.T, addr string, cp *paho.Connect) (*client5, *paho.Connack) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := &client5{conn: conn, msgs: make(chan *paho.Publish, 100000)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:          conn,
		PacketTimeout: waitTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { c.msgs <- pr.Packet; return true, nil },
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		t.Fatalf("client %q: connect: %v", cp.ClientID, err)
	}
	t.Cleanup(func() { conn.Close() })
	return c, ca
}

func (c *client5) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}}); err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
}

func (c *client5) publish(t *testing.T, p *paho.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Publish(ctx, p); err != nil {
		t.Fatalf("publish %s: %v", p.Topic, err)
	}
}

func (c *client5) disconnect() {
	_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	c.conn.Close()
}

// sysValue reads the broker's $SYS topic as a number, waiting for the next
// publication after any earlier one (retained) has been skipped.
func sysValue(t *testing.T, addr, topic string) int64 {
	t.Helper()
	c, _ := connect3(t, addr, fmt.Sprintf("sys-%d", time.Now().UnixNano()), true)
	defer c.Disconnect(0)
	c.subscribe(t, topic, 0)
	c.next(t, topic) // the retained value, maybe a second old
	m := c.next(t, topic)
	v, err := strconv.ParseInt(string(m.Payload()), 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", topic, m.Payload(), err)
	}
	return v
}

// waitConnected waits until $SYS/broker/clients/connected, which counts the
// reader itself, is want+1: the broker has seen every other close.
func waitConnected(t *testing.T, addr string, want int64) {
	t.Helper()
	c, _ := connect3(t, addr, fmt.Sprintf("sys-%d", time.Now().UnixNano()), true)
	defer c.Disconnect(0)
	c.subscribe(t, "$SYS/broker/clients/connected", 0)
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		m := c.next(t, "$SYS/broker/clients/connected")
		if v, err := strconv.ParseInt(string(m.Payload()), 10, 64); err == nil && v == want+1 {
			return
		}
	}
	t.Fatalf("broker still counts more than %d other connections after %v", want, waitTimeout)
}
