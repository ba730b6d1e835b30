package pebble

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/storetest"
)

// TestDiskReclaimed checks that expired messages give their disk space back
// without anyone compacting by hand: the sweep that expires them flushes and
// compacts.
func TestDiskReclaimed(t *testing.T) {
	clock := storetest.NewClock()
	s, err := Open(t.TempDir(), store.Options{SweepInterval: -1, Clock: clock.Now, TTL: store.TTL{Messages: 60}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 1000)
	for i := 0; i < 20000; i++ {
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		if _, _, err := s.Queues().Append(fmt.Sprint("c", i%100), &store.Message{Topic: "t", Payload: payload, QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Queues().Append("keep", &store.Message{Topic: "t", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	// The log's files are a fixed overhead of a memtable or two (the engine
	// recycles them), so what must fall is the rest.
	withoutLog := func() uint64 {
		m := s.db.Metrics()
		return m.DiskSpaceUsage() - m.WAL.PhysicalSize - m.WAL.ObsoletePhysicalSize
	}
	tables, disk := s.db.Metrics().Table.Local.LiveSize, withoutLog()
	clock.Add(50 * time.Second)
	if _, _, err := s.Queues().Append("keep", &store.Message{Topic: "t", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	clock.Add(20 * time.Second) // past the TTL of all but the last message
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	live := s.db.Metrics().Table.Local.LiveSize
	// The replaced tables are deleted in the background.
	for deadline := time.Now().Add(10 * time.Second); withoutLog() > disk/20 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("tables %d -> %d bytes, disk without the log %d -> %d bytes", tables, live, disk, withoutLog())
	if live > tables/20 || withoutLog() > disk/20 {
		t.Fatalf("tables %d -> %d bytes, disk without the log %d -> %d bytes after expiring all but one message",
			tables, live, disk, withoutLog())
	}
	if got, err := s.Queues().Read("keep", 0, 0); err != nil || len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("the live message: %v %v", got, err)
	}
}

// TestPowerCut loses everything not fsynced, as a power cut does, at an
// arbitrary moment while writers run, and checks that every message whose
// Commit completed is there.
func TestPowerCut(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := open("db", store.Options{SweepInterval: -1}, fs)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]uint64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("c", w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq, _, err := s.Queues().Append(id, &store.Message{Topic: "t", Payload: []byte(id), QoS: 1})
				if err == nil {
					err = s.Commit().Wait(context.Background())
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[id] = seq
				mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := acked["c0"]
		mu.Unlock()
		if n >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages acknowledged", n)
		}
	}
	mu.Lock()
	want := maps.Clone(acked)
	mu.Unlock()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{}) // only what was synced
	close(stop)
	wg.Wait()
	_ = s.Close()

	s, err = open("db", store.Options{SweepInterval: -1}, crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, top := range want {
		n, _, err := s.Queues().Len(id)
		if err != nil || uint64(n) < top {
			t.Fatalf("%s: %d messages after the power cut, %d were acknowledged (%v)", id, n, top, err)
		}
	}
}

// TestPowerCutUnsynced is the control: writes nobody committed are lost to a
// power cut (so TestPowerCut does test the fsync), and Interval's timer or
// Sync make them durable.
func TestPowerCutUnsynced(t *testing.T) {
	for _, d := range []store.Durability{store.Durable, store.Interval(5 * time.Millisecond)} {
		t.Run(d.String(), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s, err := open("db", store.Options{SweepInterval: -1, Durability: d}, fs)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := 0; i < 100; i++ {
				if _, _, err := s.Queues().Append("c", &store.Message{Topic: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			left := func() int {
				c, err := open("db", store.Options{SweepInterval: -1}, fs.CrashClone(vfs.CrashCloneCfg{}))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				n, _, err := c.Queues().Len("c")
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if d == store.Durable {
				if n := left(); n == 100 {
					t.Fatal("uncommitted writes survived a power cut: the test cannot tell a sync")
				}
				if err := s.Sync(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				time.Sleep(50 * time.Millisecond)
			}
			if n := left(); n != 100 {
				t.Fatalf("%d of 100 messages after a sync", n)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("Locked", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := Open(dir, store.Options{}); err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("second open: %v", err)
		}
	})
	t.Run("NotAStore", func(t *testing.T) {
		dir := t.TempDir()
		db, err := pdb.Open(dir, engineOptions(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Set([]byte("foreign"), []byte("x"), pdb.Sync)
		_ = db.Close()
		if _, err := Open(dir, store.Options{}); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a Coolpy7 store") {
			t.Fatalf("open of a foreign store: %v", err)
		}
	})
	t.Run("DamagedManifest", func(t *testing.T) {
		dir := t.TempDir()
		fill(t, dir, 5, 10)
		manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
		for _, m := range manifests {
			garble(t, m, 1) // a damaged tail would read as a torn write
		}
		_, err := Open(dir, store.Options{})
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("open of a store with a damaged manifest: %v", err)
		}
		t.Log(err)
		if _, err := Repair(dir, store.Options{}); err == nil || !strings.Contains(err.Error(), "backup") {
			t.Fatalf("repair of a damaged manifest: %v", err)
		}
	})
}

// fill writes n messages to each of sessions queues and closes the store
// with everything in tables.
func fill(t *testing.T, dir string, sessions, n int) {
	t.Helper()
	s, err := Open(dir, store.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	payload := make([]byte, 500)
	for i := 0; i < sessions*n; i++ {
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		if _, _, err := s.Queues().Append(fmt.Sprint("c", i%sessions), &store.Message{Topic: "t", Payload: payload, QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// garble overwrites 64 bytes of file at offset at, or in its middle when at
// is negative.
func garble(t *testing.T, file string, at int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if at < 0 {
		st, _ := f.Stat()
		at = st.Size() / 2
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xAA}, 64), at); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedTable damages a table and checks that reads fail loudly
// rather than come back short, and that Repair salvages the rest into a
// consistent store.
func TestDamagedTable(t *testing.T) {
	dir := t.TempDir()
	const sessions, per = 40, 100
	fill(t, dir, sessions, per)
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no tables")
	}
	for _, f := range tables {
		garble(t, f, -1)
	}

	s, err := Open(dir, store.Options{SweepInterval: -1})
	if err == nil {
		failed := 0
		for i := 0; i < sessions; i++ {
			got, err := s.Queues().Read(fmt.Sprint("c", i), 0, 0)
			switch {
			case err != nil:
				failed++
				if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "repair") {
					t.Fatalf("read error does not name the store or the repair: %v", err)
				}
			case len(got) != per:
				t.Fatalf("c%d: %d messages and no error: silent loss", i, len(got))
			}
		}
		if failed == 0 {
			t.Fatal("no read noticed the damage")
		}
		_ = s.Close()
	} else if !strings.Contains(err.Error(), dir) {
		t.Fatalf("open error does not name the store: %v", err)
	}

	r, err := Repair(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("repair copied %d records, lost %v", r.Copied, r.Lost)
	if len(r.Lost) == 0 || r.Copied == 0 || r.Damaged == "" {
		t.Fatalf("report %+v", r)
	}
	if _, err := os.Stat(r.Damaged); err != nil {
		t.Fatalf("the damaged store was not kept: %v", err)
	}
	s, err = Open(dir, store.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var total int64
	for i := 0; i < sessions; i++ {
		id := fmt.Sprint("c", i)
		got, err := s.Queues().Read(id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, _, err := s.Queues().Len(id)
		if err != nil || n != len(got) {
			t.Fatalf("%s: Len %d, Read %d (%v)", id, n, len(got), err)
		}
		total += int64(n)
		seq, _, err := s.Queues().Append(id, &store.Message{Topic: "t"})
		if err != nil || (len(got) > 0 && seq <= got[len(got)-1].Seq) {
			t.Fatalf("%s: append after repair: seq %d %v", id, seq, err)
		}
		total++
	}
	if st := s.Stats(); st.Queued != total {
		t.Fatalf("Stats.Queued %d, queues hold %d", st.Queued, total)
	}
	if _, err := Repair(dir, store.Options{}); err == nil {
		t.Fatal("repair of an open store succeeded")
	}
}
