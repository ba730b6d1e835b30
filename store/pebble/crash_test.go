package pebble_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/pebble"
)

const crashEnv = "COOLPY7_STORE_CRASH_DIR"

// TestCrash kills a process that is appending under Durable at an arbitrary
// moment and checks that every message it was told was durable is there:
// the child prints "id seq" only once the message's Pending completed.
func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{} // the highest durable seq per session
	lines := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, seq, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue // the test binary's own output
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[id] = max(acked[id], n)
		if lines++; lines == 3000 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	_ = cmd.Wait()
	if lines < 3000 {
		t.Fatalf("the child stopped after %d messages", lines)
	}

	s, err := pebble.Open(dir, store.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, top := range acked {
		got, err := s.Queues().Read(id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Everything up to the last acknowledged seq, in order and
		// without gaps: the log survives as a prefix.
		if uint64(len(got)) < top {
			t.Fatalf("%s: %d messages after the crash, %d were acknowledged", id, len(got), top)
		}
		for i, e := range got {
			if e.Seq != uint64(i+1) || string(e.Msg.Payload) != fmt.Sprint(id, ":", e.Seq) {
				t.Fatalf("%s: entry %d is seq %d %q", id, i, e.Seq, e.Msg.Payload)
			}
		}
	}
	t.Logf("%d acknowledged messages over %d sessions survived SIGKILL", lines, len(acked))
}

// crashChild appends until it is killed, printing each message once
// durable. Half the writers wait for their Pending, half use OnDone as an
// event loop would.
func crashChild(dir string) {
	s, err := pebble.Open(dir, store.Options{SweepInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	report := func(id string, seq uint64) {
		mu.Lock()
		fmt.Printf("%s %d\n", id, seq)
		mu.Unlock()
	}
	go func() {
		time.Sleep(60 * time.Second) // the parent is gone: do not linger
		os.Exit(2)
	}()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("c", w)
			// Each writer owns its session, so its n-th message is seq n.
			for n := uint64(1); ; n++ {
				seq, _, err := s.Queues().Append(id, &store.Message{Topic: "t", Payload: fmt.Appendf(nil, "%s:%d", id, n), QoS: 1})
				if err != nil || seq != n {
					fmt.Fprintln(os.Stderr, "append:", seq, err)
					os.Exit(1)
				}
				p := s.Commit()
				if w%2 == 0 {
					if p.Wait(context.Background()) == nil {
						report(id, seq)
					}
					continue
				}
				p.OnDone(func(err error) {
					if err == nil {
						report(id, seq)
					}
				})
				if n%32 == 0 {
					<-p.Done() // bound what is outstanding
				}
			}
		}()
	}
	wg.Wait()
}
