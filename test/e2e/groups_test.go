package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/broker"
	"github.com/coolpy7/coolpy7/config"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// startServer runs a broker the test stops itself (to restart it on the
// same data directory); stop is idempotent and also runs at cleanup.
func startServer(t *testing.T, cfg config.Config) (s *broker.Server, stop func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.SysInterval = 0
	s, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// counter is a 3.1.1 member that counts what it receives by payload.
type counter struct {
	*client3
	n   atomic.Int64
	mu  sync.Mutex
	got map[string]int
}

func newCounter(t *testing.T, addr, id string) *counter {
	t.Helper()
	k := &counter{got: map[string]int{}}
	k.client3, _ = connect3(t, addr, id, true, func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			k.mu.Lock()
			k.got[string(m.Payload())]++
			k.mu.Unlock()
			k.n.Add(1)
		})
	})
	return k
}

func (c *client3) id() string {
	r := c.OptionsReader()
	return r.ClientID()
}

func (k *counter) payloads() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]int, len(k.got))
	for p, n := range k.got {
		out[p] = n
	}
	return out
}

// waitTotal waits until the members together received n messages.
func waitTotal(t *testing.T, ks []*counter, n int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var sum int64
		for _, k := range ks {
			sum += k.n.Load()
		}
		if sum == n {
			return
		}
		if sum > n || time.Now().After(deadline) {
			t.Fatalf("members received %d messages, want %d", sum, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Each strategy spreads or pins 10,000 QoS 1 messages over 4 members as it
// claims. One broker, one group per strategy (the per-group override).
func TestSharedStrategies(t *testing.T) {
	const members, total = 4, 10000
	addr := startBroker(t, func(c *config.Config) {
		// Room for the whole run in one member's queue, so that no member
		// is skipped for being full and each strategy shows its own choice.
		c.MaxQueued = total
		c.SharedStrategies = map[string]string{}
		for _, s := range config.Strategies {
			c.SharedStrategies[s] = s
		}
	})
	for _, strategy := range config.Strategies {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			var ks []*counter
			for i := range members {
				k := newCounter(t, addr, uniqueID(strategy+"-m"+fmt.Sprint(i)))
				k.mustSub("$share/"+strategy+"/dist/"+strategy+"/#", 1)
				ks = append(ks, k)
			}
			// 8 publishers on 16 topics: the hash strategies need several of
			// each to show they pin.
			const pubs, topics = 8, 16
			var wg sync.WaitGroup
			for p := range pubs {
				pc, _ := connect3(t, addr, uniqueID(strategy+"-p"), true)
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last mqtt.Token
					for i := p; i < total; i += pubs {
						topic := fmt.Sprintf("dist/%s/%d", strategy, i%topics)
						last = pc.Publish(topic, 1, false, fmt.Sprintf("p%d t%d #%d", p, i%topics, i))
					}
					last.WaitTimeout(30 * time.Second)
				}()
			}
			wg.Wait()
			waitTotal(t, ks, total, 30*time.Second)

			counts := make([]int, members)
			byPub := map[string]map[int]bool{}   // publisher -> members that got its messages
			byTopic := map[string]map[int]bool{} // topic -> members
			for m, k := range ks {
				for payload, n := range k.payloads() {
					if n != 1 {
						t.Fatalf("%q delivered %d times to member %d", payload, n, m)
					}
					counts[m]++
					f := strings.Fields(payload)
					if byPub[f[0]] == nil {
						byPub[f[0]] = map[int]bool{}
					}
					byPub[f[0]][m] = true
					if byTopic[f[1]] == nil {
						byTopic[f[1]] = map[int]bool{}
					}
					byTopic[f[1]][m] = true
				}
			}
			t.Logf("%s: per member %v", strategy, counts)
			used := 0
			for _, c := range counts {
				if c > 0 {
					used++
				}
			}
			even := total / members
			switch strategy {
			case "round_robin":
				for m, c := range counts {
					if c != even {
						t.Errorf("member %d got %d, want exactly %d", m, c, even)
					}
				}
			case "random":
				// Binomial(10000, 1/4): sd 43; 300 is 7 sd.
				for m, c := range counts {
					if c < even-300 || c > even+300 {
						t.Errorf("member %d got %d, want %d ± 300", m, c, even)
					}
				}
			case "sticky":
				if used != 1 {
					t.Errorf("sticky spread over %d members: %v", used, counts)
				}
			case "hash_clientid", "hash_topic":
				by := byPub
				if strategy == "hash_topic" {
					by = byTopic
				}
				for key, ms := range by {
					if len(ms) != 1 {
						t.Errorf("%s went to %d members", key, len(ms))
					}
				}
				if used < 2 {
					t.Errorf("%s used %d members: %v", strategy, used, counts)
				}
			}
		})
	}
}

// A member that dies holding unacknowledged QoS 1 messages: the other
// member gets them, each once.
func TestSharedFailover(t *testing.T) {
	addr := startBroker(t, nil)
	// The dying member is raw so that it can receive without acknowledging.
	dead := dialHandshake(t, addr, false, uniqueID("fo-dead"))
	dead.send(subscribePkt(false, 1, "$share/fo/jobs/#", 1, nil))
	dead.expectType(0x90, "SUBACK")
	live := newCounter(t, addr, uniqueID("fo-live"))
	live.mustSub("$share/fo/jobs/#", 1)
	pub, _ := connect3(t, addr, uniqueID("fo-pub"), true)
	const n = 20
	for i := range n {
		pub.pub("jobs/x", 1, false, fmt.Sprintf("job %d", i))
	}
	held := 0
	for held < n/2 { // round robin: every other message
		p := dead.next("a job for the member that will die")
		if p.Type() != tPUBLISH {
			t.Fatalf("want PUBLISH, got %v", p)
		}
		held++
	}
	waitTotal(t, []*counter{live}, n/2, waitTimeout)
	_ = dead.c.Close()
	waitTotal(t, []*counter{live}, n, waitTimeout)
	got := live.payloads()
	for i := range n {
		if got[fmt.Sprintf("job %d", i)] != 1 {
			t.Fatalf("job %d reached the live member %d times: %v", i, got[fmt.Sprintf("job %d", i)], got)
		}
	}
}

// The original's form: subscribe and publish to "$share/{group}". Publishes
// with nobody subscribed (the original's issue #6 panic) leave the broker
// serving.
func TestOriginalShareAndNobody(t *testing.T) {
	addr := startBroker(t, nil)
	pub, _ := connect3(t, addr, uniqueID("os-pub"), true)
	pub.pub("$share/nobody", 1, false, "x")
	pub.pub("$queue/nobody", 1, false, "x")
	pub.pub("$share/nobody", 0, false, "x")
	assertServes(t, addr)

	a, b := newCounter(t, addr, uniqueID("os-a")), newCounter(t, addr, uniqueID("os-b"))
	a.mustSub("$share/g1", 1)
	b.mustSub("$share/g1", 1)
	// A retained message is not sent to shared subscriptions.
	pub.pub("$share/g1", 1, true, "retained")
	waitTotal(t, []*counter{a, b}, 1, waitTimeout)
	late := newCounter(t, addr, uniqueID("os-late"))
	late.mustSub("$share/g2", 1)
	pub.pub("$share/g2", 1, true, "retained2")
	waitTotal(t, []*counter{late}, 1, waitTimeout)
	late2 := newCounter(t, addr, uniqueID("os-late2"))
	late2.mustSub("$share/g2", 1)
	late2.none("a retained message on a shared subscription")
	if late2.n.Load() != 0 {
		t.Fatal("retained message sent to a shared subscription")
	}

	for i := range 100 {
		pub.pub("$share/g1", 1, false, fmt.Sprint(i))
	}
	waitTotal(t, []*counter{a, b}, 101, waitTimeout)
	if a.n.Load() != 51 && a.n.Load() != 50 {
		t.Errorf("round robin over 2: %d and %d", a.n.Load(), b.n.Load())
	}
}

// $queue: messages published with nobody subscribed wait in the store,
// survive a restart, and go to the subscriber who arrives, each to one
// member; once acknowledged they leave the store.
func TestQueueSurvivesRestart(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	s, stop := startServer(t, cfg)
	pub, _ := connect3(t, s.Addr(), uniqueID("q-pub"), true)
	const n = 30
	for i := range n {
		pub.pub("$queue/jobs", 1, false, fmt.Sprintf("job %d", i))
	}
	pub.Disconnect(50)
	stop()

	s, _ = startServer(t, cfg)
	a := newCounter(t, s.Addr(), uniqueID("q-a"))
	a.mustSub("$queue/jobs", 1)
	waitTotal(t, []*counter{a}, n, waitTimeout)
	for i := range n {
		if a.payloads()[fmt.Sprintf("job %d", i)] != 1 {
			t.Fatalf("job %d: %v", i, a.payloads())
		}
	}
	// Two members now: each new message goes to exactly one of them.
	b := newCounter(t, s.Addr(), uniqueID("q-b"))
	b.mustSub("$queue/jobs", 1)
	pub, _ = connect3(t, s.Addr(), uniqueID("q-pub2"), true)
	for i := range n {
		pub.pub("$queue/jobs", 1, false, fmt.Sprintf("more %d", i))
	}
	waitTotal(t, []*counter{a, b}, 2*n, waitTimeout)
	if a.n.Load() == n || b.n.Load() == 0 {
		t.Errorf("second member got nothing: %d and %d", a.n.Load(), b.n.Load())
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		gs := s.SharedGroups()
		if len(gs) == 1 && gs[0].Queue && gs[0].Queued == 0 && len(gs[0].Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged messages still queued: %+v", gs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A $queue member that dies without acknowledging gives its messages back
// to the queue; another member gets them.
func TestQueueFailover(t *testing.T) {
	addr := startBroker(t, nil)
	dead := dialHandshake(t, addr, false, uniqueID("qf-dead"))
	dead.send(subscribePkt(false, 1, "$queue/work", 1, nil))
	dead.expectType(0x90, "SUBACK")
	pub, _ := connect3(t, addr, uniqueID("qf-pub"), true)
	const n = 5
	for i := range n {
		pub.pub("$queue/work", 1, false, fmt.Sprint(i))
	}
	for range n {
		dead.next("a queued job")
	}
	live := newCounter(t, addr, uniqueID("qf-live"))
	live.mustSub("$queue/work", 1)
	live.none("a job still held by the first member")
	_ = dead.c.Close()
	waitTotal(t, []*counter{live}, n, waitTimeout)
}

// Delayed messages arrive on time (±200 ms), survive a restart, and a v5
// client is told when the delay or the count is past the bounds.
func TestDelayedPublish(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DelayedMax = 60
	cfg.DelayedMaxCount = 3
	s, stop := startServer(t, cfg)
	sub := connect5(t, s.Addr(), cp5(uniqueID("d-sub")))
	sub.mustSub(paho.SubscribeOptions{Topic: "later/#", QoS: 1})
	pub := connect5(t, s.Addr(), cp5(uniqueID("d-pub")))

	start := time.Now()
	pub.publish(&paho.Publish{Topic: "$delayed/1/later/a", QoS: 1, Payload: []byte("a")})
	m := sub.next("the delayed message")
	if el := time.Since(start); m.Topic != "later/a" || el < 800*time.Millisecond || el > 1200*time.Millisecond {
		t.Fatalf("got %q after %v, want later/a after 1s ± 200ms", m.Topic, el)
	}

	// Restart: a message due 2 s after publishing arrives then, although
	// the broker was stopped in between.
	start = time.Now()
	pub.publish(&paho.Publish{Topic: "$delayed/2/later/r", QoS: 1, Payload: []byte("r")})
	stop()
	s, _ = startServer(t, cfg)
	sub = connect5(t, s.Addr(), cp5(uniqueID("d-sub2")))
	sub.mustSub(paho.SubscribeOptions{Topic: "later/#", QoS: 1})
	m = sub.next("the delayed message after a restart")
	if el := time.Since(start); string(m.Payload) != "r" || el < 1800*time.Millisecond || el > 2200*time.Millisecond {
		t.Fatalf("got %q after %v, want r after 2s ± 200ms", m.Payload, el)
	}

	pub = connect5(t, s.Addr(), cp5(uniqueID("d-pub2")))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, tc := range []struct {
		topic string
		code  byte
	}{
		{"$delayed/61/later/b", 0x97}, // past delayed_max
		{"$delayed/x/later/b", 0x90},
		{"$delayed/5", 0x90},
		{"$delayed/-1/later/b", 0x90},
	} {
		pr, err := pub.Publish(ctx, &paho.Publish{Topic: tc.topic, QoS: 1, Payload: []byte("b")})
		if pr == nil || pr.ReasonCode != tc.code {
			t.Errorf("%s: PUBACK %+v (%v), want reason %#x", tc.topic, pr, err, tc.code)
		}
	}
	for range 3 {
		pub.publish(&paho.Publish{Topic: "$delayed/30/later/c", QoS: 1, Payload: []byte("c")})
	}
	pr, err := pub.Publish(ctx, &paho.Publish{Topic: "$delayed/30/later/c", QoS: 1, Payload: []byte("d")})
	if pr == nil || pr.ReasonCode != 0x97 {
		t.Errorf("fourth delayed message past delayed_max_count: PUBACK %+v (%v), want 0x97", pr, err)
	}
	sub.none("a refused or not yet due delayed message")
}

// $SYS shows the groups, their strategy, members and queue depth.
func TestSharedSys(t *testing.T) {
	addr := startBroker(t, func(c *config.Config) {
		c.SharedStrategies = map[string]string{"sysg": "sticky"}
	})
	a, _ := connect3(t, addr, uniqueID("sys-a"), true)
	a.mustSub("$share/sysg/sys/#", 1)
	b, _ := connect3(t, addr, uniqueID("sys-b"), true)
	b.mustSub("$queue/sysq", 1)
	b.Disconnect(50) // clean session: the group has no member left
	settle()
	pub, _ := connect3(t, addr, uniqueID("sys-pub"), true)
	pub.pub("$queue/sysq", 1, false, "waits")
	pub.pub("$queue/sysq", 1, false, "waits too")
	c, _ := connect3(t, addr, uniqueID("sys-c"), false)
	c.mustSub("$queue/sysq2", 1)
	c.Disconnect(50) // persistent: stays a member, offline
	settle()
	pub.pub("$queue/sysq2", 1, false, "for an offline member")
	watch, _ := connect3(t, addr, uniqueID("sys-watch"), true)
	watch.mustSub("$SYS/broker/shared/groups", 0)
	var groups []broker.SharedGroup
	deadline := time.Now().Add(3 * time.Second)
	for {
		m := watch.next("$SYS/broker/shared/groups")
		if err := json.Unmarshal([]byte(m.Payload), &groups); err != nil {
			t.Fatalf("%q: %v", m.Payload, err)
		}
		if len(groups) == 3 && groups[2].Queued == 1 || time.Now().After(deadline) {
			break
		}
	}
	want := []broker.SharedGroup{
		{Name: "sysg", Filter: "sys/#", Strategy: "sticky", Members: []string{a.id()}, Online: 1},
		{Name: "sysq", Filter: "$queue/sysq", Strategy: "round_robin", Queue: true, Members: []string{}, Queued: 2},
		{Name: "sysq2", Filter: "$queue/sysq2", Strategy: "round_robin", Queue: true, Members: []string{c.id()}, Online: 0, Queued: 1},
	}
	if fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Fatalf("$SYS/broker/shared/groups = %+v, want %+v", groups, want)
	}
}

const crashDirEnv = "COOLPY7_E2E_CRASH_DIR"

// $queue and $delayed messages acknowledged before the broker process is
// killed (SIGKILL, no shutdown) are there when it starts again. The broker
// that dies is this test binary run again as a child.
func TestGroupsSurviveCrash(t *testing.T) {
	cfg := config.Default()
	if dir := os.Getenv(crashDirEnv); dir != "" {
		cfg.DataDir = dir
		s, _ := startServer(t, cfg)
		fmt.Println("addr", s.Addr())
		select {} // until killed
	}
	cfg.DataDir = t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupsSurviveCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+cfg.DataDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	addr := ""
	for addr == "" && sc.Scan() {
		addr, _ = strings.CutPrefix(sc.Text(), "addr ")
	}
	if addr == "" {
		t.Fatal("the child broker did not start")
	}
	pub, _ := connect3(t, addr, uniqueID("crash-pub"), true)
	const n = 50
	for i := range n {
		pub.pub("$queue/crash", 1, false, fmt.Sprint(i))
	}
	start := time.Now()
	pub.pub("$delayed/2/crash/delayed", 1, false, "later")
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	s, _ := startServer(t, cfg)
	sub := newCounter(t, s.Addr(), uniqueID("crash-sub"))
	sub.mustSub("crash/delayed", 1)
	sub.mustSub("$queue/crash", 1)
	waitTotal(t, []*counter{sub}, n+1, waitTimeout)
	if el := time.Since(start); el < 1800*time.Millisecond || el > 2200*time.Millisecond {
		t.Errorf("delayed message after %v, want 2s ± 200ms", el)
	}
	got := sub.payloads()
	if got["later"] != 1 {
		t.Fatalf("delayed message: %v", got)
	}
	for i := range n {
		if got[fmt.Sprint(i)] != 1 {
			t.Fatalf("message %d: %v", i, got)
		}
	}
}
