package persist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coolpy7/coolpy7/packets"
)

const messages = 1000

// checkStream reads the messages "m0000".."m<n-1>" from c until every one
// in want has come and nothing more arrives for half a second. Messages
// must come in order; at QoS 2 exactly once, at QoS 1 a repeat is allowed
// (the protocol's at-least-once), never a gap. Messages not in want (not
// acknowledged before a crash) may come or not.
func checkStream(t *testing.T, c *client3, want map[int]bool, n int, qos byte) {
	t.Helper()
	last, got, total := -1, 0, 0
	seen := map[int]bool{}
	for {
		var m mqtt.Message
		if got < len(want) {
			m = c.next(t, fmt.Sprintf("acknowledged message %d of %d (last m%04d)", got+1, len(want), last))
		} else {
			select {
			case m = <-c.msgs:
			case <-time.After(500 * time.Millisecond):
				t.Logf("%d messages delivered, %d of them acknowledged before", total, got)
				return
			}
		}
		var i int
		if _, err := fmt.Sscanf(string(m.Payload()), "m%04d", &i); err != nil || i >= n {
			t.Fatalf("unexpected payload %q", m.Payload())
		}
		if seen[i] {
			if qos == 2 {
				t.Fatalf("QoS 2 message m%04d delivered twice", i)
			}
			continue
		}
		if i < last {
			t.Fatalf("m%04d after m%04d: out of order", i, last)
		}
		seen[i] = true
		last = i
		total++
		if want[i] {
			got++
		}
	}
}

// A persistent subscriber at QoS 1 and 2 disconnects; 1,000 messages are
// published for it; the broker is stopped and started again on the same
// data directory; the subscriber comes back and gets all 1,000, in order,
// exactly once at QoS 2.
func TestRestart(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := start(t, dir)
			id := fmt.Sprintf("restart-sub-%d", qos)
			topic := fmt.Sprintf("restart/%d", qos)
			sub, _ := connect3(t, b.addr, id, false)
			sub.subscribe(t, topic, qos)
			sub.Disconnect(100)

			pub, _ := connect3(t, b.addr, "restart-pub", true)
			toks := make([]mqtt.Token, messages)
			for i := range toks {
				toks[i] = pub.Publish(topic, qos, false, fmt.Sprintf("m%04d", i))
			}
			for i, tok := range toks {
				if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
					t.Fatalf("publish m%04d: %v", i, tok.Error())
				}
			}
			pub.Disconnect(100)
			b.stop()

			b = start(t, dir)
			sub, present := connect3(t, b.addr, id, false)
			if !present {
				t.Fatal("session not present after the restart")
			}
			want := map[int]bool{}
			for i := 0; i < messages; i++ {
				want[i] = true
			}
			checkStream(t, sub, want, messages, qos)
		})
	}
}

// The same, but the broker is killed with SIGKILL while the publisher is
// mid-stream: every message whose PUBACK (QoS 1) or PUBREC (QoS 2) the
// publisher got before the kill is delivered after the restart. The
// subscriber is offline (messages queued), or online but acknowledging
// nothing (messages in flight, to be sent again after the restart).
func TestCrash(t *testing.T) {
	for _, tc := range []struct {
		qos    byte
		online bool
	}{{1, false}, {2, false}, {1, true}, {2, true}} {
		qos := tc.qos
		name := fmt.Sprintf("qos%d/offline", qos)
		if tc.online {
			name = fmt.Sprintf("qos%d/inflight", qos)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := start(t, dir)
			id := fmt.Sprintf("crash-sub-%d-%v", qos, tc.online)
			topic := fmt.Sprintf("crash/%d", qos)
			sub, _ := connect3(t, b.addr, id, false, func(o *mqtt.ClientOptions) { o.SetAutoAckDisabled(true) })
			sub.subscribe(t, topic, qos)
			if !tc.online {
				sub.Disconnect(100)
			}

			// A raw publisher: it records exactly which acknowledgements
			// reached it, with no client library retrying behind its back.
			conn, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cp := &packets.Packet{Type: packets.Connect}
			cp.Connect.Level = packets.V311
			cp.Connect.ClientID = []byte("crash-pub")
			cp.Connect.CleanStart = true
			cp.Connect.KeepAlive = 60
			if _, err := conn.Write(packets.Encode(nil, cp, packets.V311)); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			acked := map[int]bool{}
			var nacked atomic.Int64
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				readAcks(conn, func(pid uint16) {
					mu.Lock()
					acked[int(pid)-1] = true
					mu.Unlock()
					nacked.Add(1)
				})
			}()
			go func() {
				// Publish in bursts of 50 so the broker is mid-stream,
				// with writes waiting for their group commit, when killed.
				for i := 0; i < messages; i++ {
					p := &packets.Packet{Type: packets.Publish, QoS: qos, PacketID: uint16(i + 1),
						Topic: []byte(topic), Payload: fmt.Appendf(nil, "m%04d", i)}
					if _, err := conn.Write(packets.Encode(nil, p, packets.V311)); err != nil {
						return
					}
					for i%50 == 49 && nacked.Load() < int64(i-100) {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			deadline := time.Now().Add(waitTimeout)
			for nacked.Load() < messages/3 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.kill()
			<-readerDone
			sub.Disconnect(0)
			mu.Lock()
			want := acked
			mu.Unlock()
			if len(want) < messages/3 || len(want) == messages {
				t.Fatalf("%d acknowledged before the kill: not mid-stream", len(want))
			}
			t.Logf("%d of %d acknowledged before SIGKILL", len(want), messages)

			b = start(t, dir)
			sub, present := connect3(t, b.addr, id, false)
			if !present {
				t.Fatal("session not present after the crash")
			}
			checkStream(t, sub, want, messages, qos)
		})
	}
}

// readAcks reads PUBACKs and PUBRECs from conn until it closes, calling fn
// with each packet ID.
func readAcks(conn net.Conn, fn func(uint16)) {
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			fh, hn, ferr := packets.ReadFixedHeader(buf)
			if ferr != nil || len(buf) < hn+fh.Remaining {
				break
			}
			if (fh.Type == packets.Puback || fh.Type == packets.Pubrec) && fh.Remaining >= 2 {
				fn(uint16(buf[hn])<<8 | uint16(buf[hn+1]))
			}
			buf = buf[hn+fh.Remaining:]
		}
		if err != nil {
			return
		}
	}
}

// Retained messages, and wills waiting for their delay, survive a restart:
// a will whose delay ran out while the broker was down is published at
// start-up (and queued for a persistent watcher), one still waiting fires
// after the restart when its delay ends.
func TestRetainedAndWillsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir)
	pub, _ := connect3(t, b.addr, "keeper", true)
	pub.publish(t, "kept/a", 1, true, "retained-a")
	pub.publish(t, "kept/b", 0, true, "retained-b")
	pub.publish(t, "kept/c", 1, true, "retained-c")
	pub.publish(t, "kept/c", 1, true, "") // cleared: must not come back
	pub.Disconnect(100)

	watcher, _ := connect3(t, b.addr, "will-watcher", false)
	watcher.subscribe(t, "wills/#", 1)
	watcher.Disconnect(100)

	// Two v5 clients with delayed wills lose their connections without a
	// DISCONNECT.
	for _, w := range []struct {
		id    string
		delay uint32
	}{{"short", 1}, {"long", 4}} {
		c, _ := connect5(t, b.addr, &paho.Connect{ClientID: "dying-" + w.id, KeepAlive: 30,
			Properties:     &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)},
			WillMessage:    &paho.WillMessage{Topic: "wills/" + w.id, Payload: []byte("gone-" + w.id), QoS: 1},
			WillProperties: &paho.WillProperties{WillDelayInterval: paho.Uint32(w.delay)}})
		c.conn.Close()
	}
	// The broker must see both closes first: a shutdown publishes the
	// wills of connected clients at once.
	waitConnected(t, b.addr, 0)
	b.stop()
	stopped := time.Now()
	time.Sleep(1500 * time.Millisecond) // past the short delay, not the long one

	b = start(t, dir)
	watcher, present := connect3(t, b.addr, "will-watcher", false)
	if !present {
		t.Fatal("watcher's session not present after the restart")
	}
	m := watcher.next(t, "the short will, published at start-up")
	if m.Topic() != "wills/short" || string(m.Payload()) != "gone-short" {
		t.Fatalf("got %s %q, want the short will", m.Topic(), m.Payload())
	}
	m = watcher.next(t, "the long will, after its delay")
	if m.Topic() != "wills/long" || string(m.Payload()) != "gone-long" {
		t.Fatalf("got %s %q, want the long will", m.Topic(), m.Payload())
	}
	// Its 4 s ran from the disconnect, not from the restart.
	if since := time.Since(stopped); since < 2*time.Second || since > 6*time.Second {
		t.Fatalf("long will fired %v after the stop, want about 4 s after the disconnect", since)
	}

	sub, _ := connect3(t, b.addr, "reader", true)
	sub.subscribe(t, "kept/#", 1)
	got := map[string]string{}
	for range 2 {
		m := sub.next(t, "retained messages")
		if !m.Retained() {
			t.Fatalf("%s came without the retain flag", m.Topic())
		}
		got[m.Topic()] = string(m.Payload())
	}
	if got["kept/a"] != "retained-a" || got["kept/b"] != "retained-b" {
		t.Fatalf("retained after restart: %v", got)
	}
	sub.none(t, 500*time.Millisecond, "the cleared retained message")
}

// A store the broker cannot read stops it from starting, with a message that
// names the directory and the repair; -repair on a sound store changes
// nothing.
func TestDamagedStoreRefusesToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir)
	pub, _ := connect3(t, b.addr, "before-damage", true)
	pub.publish(t, "kept", 1, true, "x")
	pub.Disconnect(100)
	b.stop()

	out, err := exec.Command(binary, "-repair", "-data", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing to repair") {
		t.Fatalf("-repair on a sound store: %v\n%s", err, out)
	}

	// A damaged manifest is damage Pebble cannot open past (and the
	// repair cannot mend: it says so, see store/pebble).
	manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no manifest in the store")
	}
	for _, m := range manifests {
		if err := os.WriteFile(m, []byte("not a manifest"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Bounded: a broker that starts anyway is killed and fails the test.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err = exec.CommandContext(ctx, binary, "-l", "127.0.0.1:0", "-data", dir).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("broker started on a damaged store (err %v)\n%s", err, out)
	}
	if !strings.Contains(string(out), dir) || !strings.Contains(string(out), "coolpy7 -repair -data") {
		t.Fatalf("refusal does not name the directory and the repair:\n%s", out)
	}
	if strings.Contains(string(out), "listening") {
		t.Fatalf("broker listened on a damaged store:\n%s", out)
	}
}
