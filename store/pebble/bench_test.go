package pebble

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/coolpy7/coolpy7/store"
)

var benchPayload = []byte(strings.Repeat("x", 100))

func benchOpen(b testing.TB, o store.Options) *Store {
	o.SweepInterval = -1
	s, err := Open(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// runWriters splits n operations over w goroutines, each on its own
// session.
func runWriters(b *testing.B, w int, op func(id string, i int) error) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("c", g)
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				if err := op(id, i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAppendDurable is Append and a wait for its Commit, as the broker
// does before it sends PUBACK, from 1, 16 and 128 concurrent publishers.
// fsyncs/op shows the group commit: below 1, writers shared fsyncs.
func BenchmarkAppendDurable(b *testing.B) {
	for _, w := range []int{1, 16, 128} {
		b.Run(fmt.Sprint("writers=", w), func(b *testing.B) {
			s := benchOpen(b, store.Options{})
			defer s.Close()
			m := &store.Message{Topic: "sensors/1/temp", Payload: benchPayload, QoS: 1}
			b.ResetTimer()
			runWriters(b, w, func(id string, _ int) error {
				if _, _, err := s.Queues().Append(id, m); err != nil {
					return err
				}
				return s.Commit().Wait(context.Background())
			})
			b.StopTimer()
			b.ReportMetric(float64(s.Stats().Syncs)/float64(b.N), "fsyncs/op")
		})
	}
}

// BenchmarkEngineSyncCommit is the alternative design measured against the
// committer: each writer commits its own batch with Sync and blocks on it,
// leaving the grouping to the engine's log writer. It cannot serve an
// event loop (the caller blocks), so it is only the yardstick.
func BenchmarkEngineSyncCommit(b *testing.B) {
	for _, w := range []int{1, 16, 128} {
		b.Run(fmt.Sprint("writers=", w), func(b *testing.B) {
			db, err := pdb.Open(b.TempDir(), engineOptions(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			v := appendQueued(nil, 0, 0, &store.Message{Topic: "sensors/1/temp", Payload: benchPayload, QoS: 1})
			b.ResetTimer()
			runWriters(b, w, func(id string, i int) error {
				return db.Set(queueKey(prefix(kindQueue, id), uint64(i)), v, pdb.Sync)
			})
		})
	}
}

// BenchmarkAppendInterval is Append under Interval(10ms): no wait.
func BenchmarkAppendInterval(b *testing.B) {
	for _, w := range []int{1, 16} {
		b.Run(fmt.Sprint("writers=", w), func(b *testing.B) {
			s := benchOpen(b, store.Options{Durability: store.Interval(10 * time.Millisecond)})
			defer s.Close()
			m := &store.Message{Topic: "sensors/1/temp", Payload: benchPayload, QoS: 1}
			b.ResetTimer()
			runWriters(b, w, func(id string, _ int) error {
				_, _, err := s.Queues().Append(id, m)
				return err
			})
		})
	}
}

// BenchmarkRead reads a 10,000-message queue 100 at a time, as a returning
// client's session would; an op is one message.
func BenchmarkRead(b *testing.B) {
	s := benchOpen(b, store.Options{Durability: store.Interval(time.Second)})
	defer s.Close()
	m := &store.Message{Topic: "sensors/1/temp", Payload: benchPayload, QoS: 1}
	for i := 0; i < 10000; i++ {
		if _, _, err := s.Queues().Append("c", m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var after uint64
	for read := 0; read < b.N; {
		got, err := s.Queues().Read("c", after, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			after = 0
			continue
		}
		after = got[len(got)-1].Seq
		read += len(got)
	}
}

// TestScale queues 1M messages for 10,000 sessions under Durable from 64
// concurrent publishers, then reopens the store. It is opt-in (minutes of
// disk I/O): COOLPY7_STORE_SCALE=1 go test -run TestScale -v ./store/pebble
func TestScale(t *testing.T) {
	if os.Getenv("COOLPY7_STORE_SCALE") == "" {
		t.Skip("set COOLPY7_STORE_SCALE=1 to run")
	}
	const sessions, total, writers = 10000, 1000000, 64
	dir := t.TempDir()
	s, err := Open(dir, store.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < sessions; i++ {
		rec := &store.SessionRecord{Expiry: 3600, Disconnected: time.Now(), Subs: []store.Sub{
			{Filter: fmt.Sprintf("sensors/%d/#", i), QoS: 1}, {Filter: "alerts/+", QoS: 2},
		}}
		if err := s.Sessions().Save(fmt.Sprintf("client-%05d", i), rec); err != nil {
			t.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	var rssMu sync.Mutex
	var rss []string
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Random payloads: the engine compresses, and sensor readings
			// are not a run of one byte.
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			payload := make([]byte, 100)
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				for j := range payload {
					payload[j] = byte(rng.Uint32())
				}
				id := fmt.Sprintf("client-%05d", i%sessions)
				m := &store.Message{Topic: fmt.Sprintf("sensors/%d/temp", i%sessions), Payload: payload, QoS: 1}
				if _, _, err := s.Queues().Append(id, m); err != nil {
					t.Error(err)
					return
				}
				if err := s.Commit().Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if i%100000 == 0 {
					rssMu.Lock()
					rss = append(rss, fmt.Sprintf("%dk:%dMB", i/1000, rssMB()))
					rssMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := s.Stats()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	tables := s.db.Metrics().Table.Local.LiveSize
	t.Logf("%d messages in %v: %.0f msg/s durable, %.4f fsyncs/msg", total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds(), float64(st.Syncs)/float64(st.Writes))
	t.Logf("RSS while writing: %s", strings.Join(rss, " "))
	t.Logf("on disk: %d bytes of tables = %.1f B/msg (random payload 100 B, topic ~16 B); all files, log included, %d bytes",
		tables, float64(tables)/total, s.Stats().DiskBytes)
	if st.Queued != total {
		t.Fatalf("Stats.Queued %d", st.Queued)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	s, err = Open(dir, store.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened := time.Since(start)
	n := 0
	if err := s.Sessions().Range(func(string, *store.SessionRecord) bool { n++; return true }); err != nil || n != sessions {
		t.Fatalf("%d sessions after reopen (%v)", n, err)
	}
	t.Logf("reopen %v, then %d session records loaded in %v; RSS after %d MB", opened.Round(time.Millisecond),
		n, (time.Since(start) - opened).Round(time.Millisecond), rssMB())
	start = time.Now()
	got, err := s.Queues().Read("client-00042", 0, 0)
	if err != nil || len(got) != total/sessions {
		t.Fatalf("a returning client reads %d messages (%v)", len(got), err)
	}
	t.Logf("a returning client's %d messages read in %v", len(got), time.Since(start).Round(time.Microsecond))
}

func rssMB() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return -1
}
