package persist

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coolpy7/coolpy7/packets"
)

// tableBytes is the size of the store's tables in dir: the data on disk
// without the write-ahead log, whose files Pebble recycles at a fixed size.
func tableBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".sst") {
			if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// A v5 session ends when its expiry interval runs out: its queue is gone
// (the client finds no session) and the disk space it took is reclaimed.
// The expiry is set short only once the queue is full, so that a slow
// machine cannot end the session while it is being filled.
func TestSessionExpiryReclaimsDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir, "-mq", "100000")
	sub, _ := connect5(t, b.addr, &paho.Connect{ClientID: "expiring", KeepAlive: 30, CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600)}})
	sub.subscribe(t, "exp/s", 1)
	sub.disconnect()
	// The DISCONNECT may be handled on another event loop than the first
	// PUBLISHes, which would find the session connected and go into flight.
	waitConnected(t, b.addr, 0)

	const n, size = 30000, 1000
	pub, _ := connect3(t, b.addr, "filler", true)
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, size)
	toks := make([]mqtt.Token, 0, n)
	for range n {
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		toks = append(toks, pub.Publish("exp/s", 1, false, append([]byte(nil), payload...)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	if q := sysValue(t, b.addr, "$SYS/broker/store/queued"); q != n {
		t.Fatalf("store/queued = %d, want %d", q, n)
	}
	full := tableBytes(t, dir)
	if full < n*size/4 {
		t.Fatalf("only %d bytes of tables for %d bytes queued", full, n*size)
	}
	// The client comes back to shorten its expiry to 1 s and leaves: the
	// session ends a second later, and the sweeper then flushes and
	// compacts what its queue took.
	sub, _ = connect5(t, b.addr, &paho.Connect{ClientID: "expiring", KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(1)}})
	sub.disconnect()
	deadline := time.Now().Add(20 * time.Second)
	for tableBytes(t, dir) > full/20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	after := tableBytes(t, dir)
	t.Logf("tables %d -> %d bytes after the session expired", full, after)
	if after > full/20 {
		t.Fatalf("tables %d -> %d bytes: the expired session's space was not reclaimed", full, after)
	}
	if q := sysValue(t, b.addr, "$SYS/broker/store/queued"); q != 0 {
		t.Fatalf("store/queued = %d after the session expired", q)
	}
	_, ca := connect5(t, b.addr, &paho.Connect{ClientID: "expiring", KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(1)}})
	if ca.SessionPresent {
		t.Fatal("the session outlived its expiry interval")
	}
}

// A v5 message expiry ends a message waiting for an offline session, and
// does so across a restart.
func TestMessageExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir)
	cp := &paho.Connect{ClientID: "msg-exp", KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(600)}}
	sub, _ := connect5(t, b.addr, cp)
	sub.subscribe(t, "exp/m", 1)
	sub.disconnect()
	pub, _ := connect5(t, b.addr, &paho.Connect{ClientID: "msg-exp-pub", KeepAlive: 30, CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "exp/m", QoS: 1, Payload: []byte("short"), Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(1)}})
	pub.publish(t, &paho.Publish{Topic: "exp/m", QoS: 1, Payload: []byte("long"), Properties: &paho.PublishProperties{MessageExpiry: paho.Uint32(600)}})
	pub.publish(t, &paho.Publish{Topic: "exp/m", QoS: 1, Payload: []byte("forever")})
	pub.disconnect()
	b.stop()
	time.Sleep(1500 * time.Millisecond)
	b = start(t, dir)
	sub, ca := connect5(t, b.addr, cp)
	if !ca.SessionPresent {
		t.Fatal("session not present after the restart")
	}
	for _, want := range []string{"long", "forever"} {
		select {
		case p := <-sub.msgs:
			if string(p.Payload) != want {
				t.Fatalf("got %q, want %q (the expired message must not come)", p.Payload, want)
			}
			if want == "long" && (p.Properties == nil || p.Properties.MessageExpiry == nil || *p.Properties.MessageExpiry > 600 || *p.Properties.MessageExpiry < 590) {
				t.Fatalf("long message's expiry not carried: %+v", p.Properties)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("no %q", want)
		}
	}
}

// The original's TTL flags: -ot ends queued messages, -rt retained ones,
// -st sessions, whatever the clients asked for.
func TestTTLFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir, "-ot", "1", "-rt", "1", "-st", "5")
	sub, _ := connect3(t, b.addr, "ttl-sub", false)
	sub.subscribe(t, "ttl/#", 1)
	sub.Disconnect(100)
	// A message that finds the subscriber still connected goes into
	// flight, where -ot does not apply (MQTT keeps it until acknowledged).
	waitConnected(t, b.addr, 0)
	pub, _ := connect3(t, b.addr, "ttl-pub", true)
	pub.publish(t, "ttl/q", 1, false, "queued")
	pub.publish(t, "ttl/r", 1, true, "retained")
	time.Sleep(2500 * time.Millisecond) // past -ot and -rt (whole seconds, up to one late), within -st

	sub, present := connect3(t, b.addr, "ttl-sub", false)
	if !present {
		t.Fatal("session gone before -st")
	}
	sub.none(t, 700*time.Millisecond, "a queued message past -ot")
	fresh, _ := connect3(t, b.addr, "ttl-fresh", true)
	fresh.subscribe(t, "ttl/r", 1)
	fresh.none(t, 700*time.Millisecond, "a retained message past -rt")

	pub.publish(t, "ttl/q", 1, false, "live")
	if m := sub.next(t, "a message within -ot"); string(m.Payload()) != "live" {
		t.Fatalf("got %q", m.Payload())
	}
	sub.Disconnect(100)
	time.Sleep(5500 * time.Millisecond) // past -st
	if _, present := connect3(t, b.addr, "ttl-sub", false); present {
		t.Fatal("a v3 persistent session outlived -st")
	}
}

// -wt: a will whose time passed longer ago than -wt while the broker was
// down is not published late; within -wt it is (TestRetainedAndWills...).
func TestWillTTL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir, "-wt", "1")
	watcher, _ := connect3(t, b.addr, "wt-watcher", false)
	watcher.subscribe(t, "wt/#", 1)
	watcher.Disconnect(100)
	c, _ := connect5(t, b.addr, &paho.Connect{ClientID: "wt-dying", KeepAlive: 30,
		Properties:     &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(60)},
		WillMessage:    &paho.WillMessage{Topic: "wt/late", Payload: []byte("late"), QoS: 1},
		WillProperties: &paho.WillProperties{WillDelayInterval: paho.Uint32(1)}})
	c.conn.Close()
	// Not stopped before the broker sees the close: a shutdown publishes
	// the wills of connected clients at once.
	waitConnected(t, b.addr, 0)
	b.stop()
	// The will was due 1 s after the close; the store counts TTLs in whole
	// seconds, never early but up to a second late, so wait until it is
	// 2.5 s past due.
	time.Sleep(3500 * time.Millisecond)

	b = start(t, dir, "-wt", "1")
	watcher, present := connect3(t, b.addr, "wt-watcher", false)
	if !present {
		t.Fatal("watcher's session not present")
	}
	watcher.none(t, time.Second, "a will past -wt")
}

// -it: an inbound QoS 2 packet ID whose PUBREL has not come within -it is
// forgotten, so the same packet ID carries a new message after a restart;
// without -it it is remembered and the resent PUBLISH is not routed again.
func TestPacketIDTTL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		routed bool
	}{{"kept", nil, false}, {"expired", []string{"-it", "1"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := start(t, dir, tc.args...)
			sub, _ := connect3(t, b.addr, "it-sub", false)
			sub.subscribe(t, "it/t", 2)
			sub.Disconnect(100)

			send := func(addr string, dup bool) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				cp := &packets.Packet{Type: packets.Connect}
				cp.Connect.Level = packets.V311
				cp.Connect.ClientID = []byte("it-pub")
				cp.Connect.KeepAlive = 60 // clean session false: persistent
				p := &packets.Packet{Type: packets.Publish, QoS: 2, Dup: dup, PacketID: 7, Topic: []byte("it/t"), Payload: []byte("once")}
				conn.Write(append(packets.Encode(nil, cp, packets.V311), packets.Encode(nil, p, packets.V311)...))
				got := make(chan struct{})
				go readAcks(conn, func(pid uint16) {
					if pid == 7 {
						close(got)
					}
				})
				select {
				case <-got:
				case <-time.After(waitTimeout):
					t.Fatal("no PUBREC")
				}
			}
			send(b.addr, false)
			b.stop()
			time.Sleep(2500 * time.Millisecond) // TTLs are whole seconds, up to one late
			b = start(t, dir, tc.args...)
			send(b.addr, true) // as a publisher that lost the PUBREC sends again

			sub, _ = connect3(t, b.addr, "it-sub", false)
			sub.next(t, "the first delivery")
			if tc.routed {
				sub.next(t, "the second delivery, its packet ID forgotten")
			} else {
				sub.none(t, time.Second, "a duplicate of a remembered QoS 2 packet ID")
			}
		})
	}
}

// A persistent session whose client was connected when the broker was
// killed comes back disconnected: it keeps its subscriptions and queues
// for its client, and its expiry counts from the restart.
func TestConnectedAtCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, dir)
	cp := &paho.Connect{ClientID: "at-crash", KeepAlive: 30, CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3)}}
	sub, _ := connect5(t, b.addr, cp)
	sub.subscribe(t, "crash/connected", 1)
	b.kill()
	sub.conn.Close()

	b = start(t, dir)
	restarted := time.Now()
	pub, _ := connect3(t, b.addr, "at-crash-pub", true)
	pub.publish(t, "crash/connected", 1, false, "while away")
	cp.CleanStart = false
	sub, ca := connect5(t, b.addr, cp)
	if !ca.SessionPresent {
		t.Fatal("session of a client connected at the crash not present after the restart")
	}
	select {
	case p := <-sub.msgs:
		if string(p.Payload) != "while away" {
			t.Fatalf("got %q", p.Payload)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the message queued after the restart did not come")
	}
	sub.disconnect()
	time.Sleep(time.Until(restarted.Add(4500 * time.Millisecond)))
	if _, ca := connect5(t, b.addr, cp); ca.SessionPresent {
		t.Fatal("session outlived its expiry after the restart")
	}
}

// A persistent session resumed with session expiry 0 stops being
// persistent: it gets what was queued for it, and ends with its connection.
func TestResumeWithExpiryZero(t *testing.T) {
	t.Parallel()
	b := start(t, t.TempDir())
	cp := &paho.Connect{ClientID: "to-zero", KeepAlive: 30, CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(600)}}
	sub, _ := connect5(t, b.addr, cp)
	sub.subscribe(t, "zero/t", 1)
	sub.disconnect()
	pub, _ := connect3(t, b.addr, "to-zero-pub", true)
	pub.publish(t, "zero/t", 1, false, "queued")

	cp.CleanStart = false
	cp.Properties.SessionExpiryInterval = paho.Uint32(0)
	sub, ca := connect5(t, b.addr, cp)
	if !ca.SessionPresent {
		t.Fatal("session not resumed")
	}
	select {
	case p := <-sub.msgs:
		if string(p.Payload) != "queued" {
			t.Fatalf("got %q", p.Payload)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the queued message did not come")
	}
	pub.publish(t, "zero/t", 1, false, "live")
	select {
	case p := <-sub.msgs:
		if string(p.Payload) != "live" {
			t.Fatalf("got %q", p.Payload)
		}
	case <-time.After(waitTimeout):
		t.Fatal("a live message did not come")
	}
	sub.disconnect()
	time.Sleep(200 * time.Millisecond)
	if q := sysValue(t, b.addr, "$SYS/broker/store/queued"); q != 0 {
		t.Fatalf("store/queued = %d", q)
	}
	cp.Properties.SessionExpiryInterval = paho.Uint32(600)
	if _, ca := connect5(t, b.addr, cp); ca.SessionPresent {
		t.Fatal("the session outlived a connection with expiry 0")
	}
}
